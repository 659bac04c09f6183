package energy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/energy"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// upstream records the bodies it was forwarded.
type upstream struct {
	mu     sync.Mutex
	bodies []string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.bodies = append(u.bodies, string(b))
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
}

func (u *upstream) count() int { u.mu.Lock(); defer u.mu.Unlock(); return len(u.bodies) }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newGuard(t *testing.T, o energy.GuardOptions) (*energy.Guard, *upstream, http.Handler, *clock) {
	t.Helper()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	o.Now = clk.Now
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	g, err := energy.NewGuard(o)
	require.NoError(t, err)
	up := &upstream{}
	return g, up, g.Middleware(up), clk
}

type answer struct {
	status int
	header http.Header
	code   int
	data   map[string]any
	id     json.RawMessage
}

func post(t *testing.T, h http.Handler, body, token, remote string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if remote != "" {
		req.RemoteAddr = remote
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var env struct {
		ID    json.RawMessage `json:"id"`
		Error *struct {
			Code int            `json:"code"`
			Data map[string]any `json:"data"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), rec.Body.String())
	a := answer{status: rec.Code, header: rec.Header(), id: env.ID}
	if env.Error != nil {
		a.code, a.data = env.Error.Code, env.Error.Data
	}
	return a
}

const marketReq = `{"jsonrpc":"2.0","id":7,"method":"energy.market","params":{}}`

func TestGuardAuth(t *testing.T) {
	g, up, h, _ := newGuard(t, energy.GuardOptions{Token: "s3cret"})
	a := post(t, h, marketReq, "", "10.0.0.1:1000")
	assert.Equal(t, -33009, a.code)
	assert.Equal(t, http.StatusOK, a.status)
	assert.JSONEq(t, "7", string(a.id))
	a = post(t, h, marketReq, "wrong", "10.0.0.1:1000")
	assert.Equal(t, -33009, a.code)
	assert.Equal(t, 0, up.count(), "a rejected request must never be forwarded")
	a = post(t, h, marketReq, "s3cret", "10.0.0.1:1000")
	assert.Equal(t, 0, a.code)
	assert.Equal(t, 1, up.count())
	assert.Equal(t, marketReq, up.bodies[0], "the upstream gets the whole body")
	// non-energy methods pass without a token
	a = post(t, h, `{"jsonrpc":"2.0","id":1,"method":"node.status"}`, "", "10.0.0.1:1000")
	assert.Equal(t, 0, a.code)
	assert.Equal(t, uint64(2), g.Rejected(energy.RejectUnauthorized))
	assert.InDelta(t, 2, rejectedMetric(t, g, "unauthorized"), 0)

	// token changes at run time
	g.SetToken("new")
	assert.Equal(t, -33009, post(t, h, marketReq, "s3cret", "10.0.0.1:1000").code)
	assert.Equal(t, 0, post(t, h, marketReq, "new", "10.0.0.1:1000").code)
	g.SetToken("")
	assert.False(t, g.AuthEnabled())
	assert.Equal(t, 0, post(t, h, marketReq, "", "10.0.0.1:1000").code)
}

func rejectedMetric(t *testing.T, g *energy.Guard, reason string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(g))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "energy_rpc_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series for reason %s", reason)
	return 0
}

// The configured limit is exported for dashboards and follows SetRPS.
func TestGuardExportsItsLimit(t *testing.T) {
	g, err := energy.NewGuard(energy.GuardOptions{Token: "t", RPS: 7, Logger: quietLogger()})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(g))
	limit := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "energy_rpc_rate_limit_rps" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no energy_rpc_rate_limit_rps")
		return 0
	}
	assert.Equal(t, 7.0, limit())
	require.NoError(t, g.SetRPS(20))
	assert.Equal(t, 20.0, limit())
}

func TestGuardAuthOffWarns(t *testing.T) {
	var buf strings.Builder
	_, err := energy.NewGuard(energy.GuardOptions{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	require.NoError(t, err)
	assert.Contains(t, buf.String(), "TB_ENERGY_RPC_TOKEN is unset")
}

func TestGuardRateLimit(t *testing.T) {
	g, up, h, clk := newGuard(t, energy.GuardOptions{RPS: 5})
	for i := 0; i < 5; i++ {
		require.Equal(t, 0, post(t, h, marketReq, "", "10.0.0.1:1").code, i)
	}
	a := post(t, h, marketReq, "", "10.0.0.1:1")
	assert.Equal(t, -33010, a.code)
	assert.Equal(t, http.StatusTooManyRequests, a.status)
	ms := a.data["retry_after_ms"].(float64)
	assert.Greater(t, ms, 0.0)
	assert.LessOrEqual(t, ms, 1125.0, "at most a window plus one slot")
	assert.Equal(t, strconv.Itoa(int(math.Ceil(ms/1000))), a.header.Get("Retry-After"))
	assert.Equal(t, 5, up.count())
	// another client is not affected; non-energy methods pass
	assert.Equal(t, 0, post(t, h, marketReq, "", "10.0.0.2:1").code)
	assert.Equal(t, 0, post(t, h, `{"method":"node.status","id":1,"jsonrpc":"2.0"}`, "", "10.0.0.1:1").code)
	// after the advertised delay the client is admitted again
	clk.Advance(time.Duration(ms) * time.Millisecond)
	assert.Equal(t, 0, post(t, h, marketReq, "", "10.0.0.1:1").code)
	// the limit changes at run time
	require.NoError(t, g.SetRPS(100))
	assert.Equal(t, 0, post(t, h, marketReq, "", "10.0.0.1:1").code)
	assert.Error(t, g.SetRPS(0))
	assert.Equal(t, uint64(1), g.Rejected(energy.RejectRateLimited))
}

func TestGuardForwardedFor(t *testing.T) {
	_, _, h, _ := newGuard(t, energy.GuardOptions{RPS: 1, TrustedProxyHops: 1})
	send := func(xff string) int {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(marketReq))
		req.RemoteAddr = "192.0.2.1:5555" // the proxy
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	assert.Equal(t, 200, send("1.1.1.1, 203.0.113.5"))
	assert.Equal(t, 200, send("9.9.9.9, 203.0.113.6"), "a spoofed left entry does not matter")
	assert.Equal(t, 429, send("8.8.8.8, 203.0.113.5"))
	assert.Equal(t, 200, send(""), "no header: the proxy's address")
	assert.Equal(t, 429, send("garbage"), "unparsable entry: the proxy's address")
}

func TestGuardMethodScan(t *testing.T) {
	_, up, h, _ := newGuard(t, energy.GuardOptions{Token: "t"})
	guarded := []string{
		`{"jsonrpc":"2.0","id":1,"method":"energy\u002esubmit_reading","params":{}}`,
		`{"jsonrpc":"2.0","id":1,"METHOD":"energy.market"}`,
		`{"jsonrpc":"2.0","id":1,"params":{"a":[1,2,{"b":"c"}]},"method":"energy.credits"}`,
		`{"jsonrpc":"2.0","id":1,"params":{"method":"node.status"},"method":"energy.market"}`,
		`{"params":"` + strings.Repeat("x", 100<<10) + `","method":"energy.market"}`,
	}
	for _, body := range guarded {
		a := post(t, h, body, "", "10.0.0.9:1")
		assert.Equal(t, -33009, a.code, "%.80s", body)
	}
	assert.Equal(t, 0, up.count())
	passes := []string{
		`{"jsonrpc":"2.0","id":1,"method":"node.status"}`,
		`{"jsonrpc":"2.0","id":1,"params":{"method":"energy.market"},"method":"ledger.inspect"}`,
		` { "method" : "treasury.x" , "id" : "a" } `,
		`{"jsonrpc":"2.0","id":1,"method":"energyx.market"}`,
		// the whole body is decided, however long: no fail-closed guess needed
		`{"params":"` + strings.Repeat("x", 100<<10) + `","method":"node.status"}`,
	}
	for _, body := range passes {
		a := post(t, h, body, "", "10.0.0.9:1")
		assert.Equal(t, 0, a.code, "%.80s", body)
	}
	assert.Equal(t, len(passes), up.count())
	// A request without a body (GET /metrics) passes; one with a body is
	// decided on it whatever its HTTP method.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, 200, rec.Code)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", strings.NewReader(marketReq)))
	assert.Contains(t, rec.Body.String(), "-33009")
	assert.Equal(t, len(passes)+1, up.count())
}

// A WebSocket or h2c upgrade would carry calls the guard never sees: the
// request reaches the node as plain HTTP.
func TestGuardStripsProtocolUpgrades(t *testing.T) {
	g, err := energy.NewGuard(energy.GuardOptions{Logger: quietLogger()})
	require.NoError(t, err)
	var seen []string
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = append(seen, r.Header.Get("Upgrade")) }))
	for _, up := range []string{"websocket", "h2c"} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(marketReq))
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", up)
		h.ServeHTTP(httptest.NewRecorder(), req)
		assert.Equal(t, up, req.Header.Get("Upgrade"), "the caller's request is not changed")
	}
	assert.Equal(t, []string{"", ""}, seen)
}

// Issue #14 item 1: a non-energy method, 64 KiB of whitespace, then an energy
// method (which encoding/json keeps) got through with no token and no limit:
// 200 of 200 admitted where 50 are allowed. Fails on main. (60 requests of each
// kind are enough to cross the limit of 50.)
func TestGuardLongBodyBypass(t *testing.T) {
	g, up, h, _ := newGuard(t, energy.GuardOptions{Token: "s3cret", RPS: 50})
	pad := strings.Repeat(" ", 64<<10)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"node.status",` + pad + `"method":"energy.market","params":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"node.status",` + pad + `"method":"energy.submit_reading","params":{"provider_id":"p"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"node.status",` + pad + `"Method":"energy.market"}`,
	} {
		for i := 0; i < 60; i++ {
			a := post(t, h, body, "", "10.0.0.1:1")
			require.Equal(t, -32600, a.code, "request %d: %.60s", i, body)
			require.JSONEq(t, "1", string(a.id))
		}
	}
	assert.Equal(t, 0, up.count(), "an ambiguous body must never reach the node")
	// The refused requests never got as far as the limiter or the token.
	assert.Equal(t, uint64(0), g.Rejected(energy.RejectUnauthorized)+g.Rejected(energy.RejectRateLimited))
	// With the token, one method after the same padding is served, and limited.
	body := `{"jsonrpc":"2.0","id":1,` + pad + `"method":"energy.market","params":{}}`
	admitted := 0
	for i := 0; i < 60; i++ {
		if post(t, h, body, "s3cret", "10.0.0.2:1").code == 0 {
			admitted++
		}
	}
	assert.Equal(t, 50, admitted)
	assert.Equal(t, 50, up.count())
}

// Envelopes the node could read another way than a plain walk are refused,
// never forwarded, whoever sends them. Fails on main for the invalid-UTF-8
// method (issue #14 item 9a) and the cases main guarded and then forwarded.
func TestGuardRefusesAmbiguousEnvelopes(t *testing.T) {
	_, up, h, _ := newGuard(t, energy.GuardOptions{Token: "t"})
	for body, code := range map[string]int{
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"METHOD\":\"\xb9\"}":                             -32600, // invalid UTF-8, U+FFFD to encoding/json
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"energy.\xff\"}":                      -32600,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"\xffmethod\":\"x\",\"method\":\"node.status\"}": -32600,
		`{"jsonrpc":"2.0","id":1,"method":"node.status","Method":"energy.market"}`:       -32600,
		`{"jsonrpc":"2.0","id":1,"method":"node.status","method":"node.status"}`:         -32600,
		`{"jsonrpc":"2.0","id":1,"method":"node.status","me\u0074hod":"energy.market"}`:  -32600,
		`[{"jsonrpc":"2.0","id":1,"method":"energy.market"}]`:                            -32600,
		`"energy.market"`:                       -32600,
		`{"jsonrpc":"2.0","id":1,"method":123}`: -32600,
		`{"jsonrpc":"2.0","id":1}`:              -32600,
		``:                                      -32600,
		`{"jsonrpc":"2.0","id":1,"meth`:         -32700,
		`{"jsonrpc":"2.0","id":1,"method":"node.status"} {"method":"energy.market"}`: -32700,
		`{"jsonrpc":"2.0","id":1,"method":"node.status" "x":1}`:                      -32700,
		`{"jsonrpc":"2.0","id":1,"method":"node.status",}`:                           -32700,
		`{"jsonrpc":"2.0","id":1,"method":"node.status","params":{"a":tru}}`:         -32700, // invalid JSON inside params
		`not json`: -32600,
	} {
		a := post(t, h, body, "", "10.0.0.9:1")
		assert.Equal(t, code, a.code, "%q", body)
	}
	assert.Equal(t, 0, up.count(), "nothing ambiguous is forwarded")
}

// Issue #14 item 3: the id was echoed unchecked ({"id":tru,...} came back as
// invalid JSON). Only a valid string, number or null id is echoed; the one
// echoed is the last, as encoding/json keeps it. Fails on main.
func TestGuardEchoesOnlyValidIDs(t *testing.T) {
	_, _, h, _ := newGuard(t, energy.GuardOptions{Token: "t"})
	for body, want := range map[string]string{
		`{"jsonrpc":"2.0","id":tru,"method":"energy.market"}`:       "null",
		`{"jsonrpc":"2.0","id":{"a":1},"method":"energy.market"}`:   "null",
		`{"jsonrpc":"2.0","id":[1],"method":"energy.market"}`:       "null",
		`{"jsonrpc":"2.0","id":01,"method":"energy.market"}`:        "null",
		`{"jsonrpc":"2.0","id":"a\"b","method":"energy.market"}`:    `"a\"b"`,
		`{"jsonrpc":"2.0","id":-1.5e3,"method":"energy.market"}`:    "-1.5e3",
		`{"jsonrpc":"2.0","id":null,"method":"energy.market"}`:      "null",
		`{"jsonrpc":"2.0","id":1,"ID":2,"method":"energy.market"}`:  "2",
		`{"jsonrpc":"2.0","id":1,"method":"energy.market","x":tru}`: "1",
	} {
		a := post(t, h, body, "", "10.0.0.9:1") // post fails the test on a body that is not JSON
		assert.JSONEq(t, want, string(a.id), body)
		assert.NotZero(t, a.code, body)
	}
}

func TestGuardBodyLimit(t *testing.T) {
	_, up, h, _ := newGuard(t, energy.GuardOptions{Token: "t", MaxBody: 1024})
	body := `{"jsonrpc":"2.0","id":"big","method":"node.status","params":{"x":"` + strings.Repeat("x", 2000) + `"}}`
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
	var env struct {
		ID    string `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), rec.Body.String())
	assert.Equal(t, -32600, env.Error.Code)
	assert.Contains(t, env.Error.Message, "over 1024 bytes")
	assert.Equal(t, "big", env.ID)
	assert.Equal(t, 0, up.count())
}

// The node gets exactly the bytes the guard decided on, with their length, even
// when the client sent them chunked.
func TestGuardForwardsTheCheckedBytes(t *testing.T) {
	var gotLen int64
	var got []byte
	g, err := energy.NewGuard(energy.GuardOptions{Logger: quietLogger()})
	require.NoError(t, err)
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotLen = r.ContentLength
		got, _ = io.ReadAll(r.Body)
	}))
	req := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader(marketReq[:10]), strings.NewReader(marketReq[10:])))
	require.Equal(t, int64(-1), req.ContentLength, "the length is unknown, as with chunked encoding")
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.Equal(t, marketReq, string(got))
	assert.Equal(t, int64(len(marketReq)), gotLen)
}

// Invalid options are an error at construction, never a silent default; zero
// values keep their documented defaults. Fails to compile on main, where
// NewGuard returned no error and turned RPS -1 into 50.
func TestNewGuardRefusesInvalidOptions(t *testing.T) {
	for _, o := range []energy.GuardOptions{{RPS: -1}, {Window: -time.Second}, {TrustedProxyHops: -1}, {MaxClients: -5}, {MaxBody: -1}} {
		o.Logger = quietLogger()
		g, err := energy.NewGuard(o)
		assert.Nil(t, g)
		var oe *energy.OptionError
		require.ErrorAs(t, err, &oe, "%+v", o)
		assert.Contains(t, err.Error(), "must not be negative")
	}
	_, err := energy.NewGuard(energy.GuardOptions{RPS: -1, MaxBody: -1, Logger: quietLogger()})
	assert.ErrorContains(t, err, "RPS = -1")
	assert.ErrorContains(t, err, "MaxBody = -1")
	g, err := energy.NewGuard(energy.GuardOptions{Logger: quietLogger()})
	require.NoError(t, err)
	assert.Equal(t, energy.DefaultRPS, g.RPS())
}

func TestGuardBoundedClients(t *testing.T) {
	g, _, h, _ := newGuard(t, energy.GuardOptions{MaxClients: 640, RPS: 1})
	for i := 0; i < 5000; i++ {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(marketReq))
		req.RemoteAddr = "[2001:db8::" + itoa16(i) + "]:1"
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	assert.LessOrEqual(t, g.Clients(), 640)
	assert.Greater(t, g.Clients(), 0)
}

func itoa16(i int) string {
	return strings.TrimLeft(strings.ToLower(strings.TrimSpace(hex4(i))), "0") + "1"
}

func hex4(i int) string {
	const d = "0123456789abcdef"
	return string([]byte{d[(i>>12)&15], d[(i>>8)&15], d[(i>>4)&15], d[i&15]})
}

func TestGuardConcurrentReload(t *testing.T) {
	g, _, h, _ := newGuard(t, energy.GuardOptions{Token: "a", RPS: 1000})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(marketReq))
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		}()
	}
	for j := 0; j < 50; j++ {
		require.NoError(t, g.Reload(func(k string) string {
			if k == energy.RPSEnv {
				return "20"
			}
			return "b"
		}))
	}
	wg.Wait()
	assert.Equal(t, 20, g.RPS())
	assert.Error(t, g.Reload(func(k string) string {
		if k == energy.RPSEnv {
			return "fast"
		}
		return ""
	}))
	assert.Equal(t, 20, g.RPS(), "an invalid reload changes nothing")
	assert.True(t, g.AuthEnabled())
}

// Memory stays bounded however many clients send large bodies: the guard holds
// at most MaxBuffered request bytes at once, and refuses past that with a
// retryable -32001 (HTTP 503) until what it holds is done.
func TestGuardBoundsBufferedBytes(t *testing.T) {
	g, err := energy.NewGuard(energy.GuardOptions{MaxBuffered: 1000, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	body := func(n int) string {
		return `{"jsonrpc":"2.0","id":7,"method":"node.status","params":{"pad":"` + strings.Repeat("x", n) + `"}}`
	}
	first := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body(800))))
		first <- rec
	}()
	<-entered // the first request's 860 bytes are held while the node answers

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body(400))))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	var resp struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp), rec.Body.String())
	assert.Equal(t, -32001, resp.Error.Code)

	close(release)
	assert.Equal(t, http.StatusOK, (<-first).Code)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body(400))))
	assert.Equal(t, http.StatusOK, rec.Code, "released once the first request was done: %s", rec.Body.String())

	_, err = energy.NewGuard(energy.GuardOptions{MaxBuffered: -1})
	assert.ErrorContains(t, err, "MaxBuffered")
}
