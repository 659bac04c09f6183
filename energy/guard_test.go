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
	g := energy.NewGuard(o)
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
	g := energy.NewGuard(energy.GuardOptions{Token: "t", RPS: 7})
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
	energy.NewGuard(energy.GuardOptions{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
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
		`{"jsonrpc":"2.0","id":1,"method":"node.status","Method":"energy.market"}`,
		`{"jsonrpc":"2.0","id":1,"method":"node.status","params":{"x":"}"},"method":"energy.market"}`,
		`{"jsonrpc":"2.0","id":1,"params":{"a":[1,2,{"b":"c"}]},"method":"energy.credits"}`,
		`[{"jsonrpc":"2.0","id":1,"method":"energy.market"}]`,
		`{"jsonrpc":"2.0","id":1,"method":123}`,
		`{"jsonrpc":"2.0","id":1,"meth`,
		`not json`,
		``,
		`{"params":"` + strings.Repeat("x", 100<<10) + `","method":"node.status"}`,
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
	}
	for _, body := range passes {
		a := post(t, h, body, "", "10.0.0.9:1")
		assert.Equal(t, 0, a.code, body)
	}
	assert.Equal(t, len(passes), up.count())
	// GET (not JSON-RPC) passes
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, 200, rec.Code)
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
