package energy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/energy"
)

// manualTimers is a GuardServerOptions.AfterFunc whose timers fire only when
// the test says so.
type manualTimers struct {
	mu   sync.Mutex
	next int
	fs   map[int]func()
}

func newManualTimers() *manualTimers { return &manualTimers{fs: map[int]func(){}} }

func (m *manualTimers) AfterFunc(_ time.Duration, f func()) func() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.next
	m.next++
	m.fs[id] = f
	return func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		_, armed := m.fs[id]
		delete(m.fs, id)
		return armed
	}
}

func (m *manualTimers) armed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.fs)
}

// fireAll runs every armed timer and says how many there were.
func (m *manualTimers) fireAll() int {
	m.mu.Lock()
	fs := make([]func(), 0, len(m.fs))
	for _, f := range m.fs {
		fs = append(fs, f)
	}
	clear(m.fs)
	m.mu.Unlock()
	for _, f := range fs {
		f()
	}
	return len(fs)
}

// rpcUpstream is a node that answers every call with an empty result.
func rpcUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":7,"result":{"providers":[]}}`)
	}))
	t.Cleanup(up.Close)
	return up
}

// startGuardServer serves s on a loopback port until the test ends.
func startGuardServer(t *testing.T, g *energy.Guard, upstream string, o energy.GuardServerOptions) (*energy.GuardServer, string) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	s, err := energy.NewGuardServer(g, upstream, o)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return s, ln.Addr().String()
}

func mustGuard(t *testing.T, o energy.GuardOptions) *energy.Guard {
	t.Helper()
	o.Logger = quietLogger()
	g, err := energy.NewGuard(o)
	require.NoError(t, err)
	return g
}

type rpcAnswer struct {
	status int
	id     string
	code   int
	msg    string
}

// call posts body over a fresh connection and decodes the JSON-RPC answer,
// failing the test when the body is not JSON.
func call(t *testing.T, url, body, token string) rpcAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return decodeAnswer(t, resp)
}

func decodeAnswer(t *testing.T, resp *http.Response) rpcAnswer {
	t.Helper()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var env struct {
		ID    json.RawMessage `json:"id"`
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(raw, &env), "HTTP %d: %q", resp.StatusCode, raw)
	a := rpcAnswer{status: resp.StatusCode, id: string(env.ID)}
	if env.Error != nil {
		a.code, a.msg = env.Error.Code, env.Error.Message
	}
	return a
}

// Issue #14 item 3: an unreachable node was answered with HTTP 502 and an
// empty body. Now it is a JSON-RPC error with the request's id.
func TestGuardServerUpstreamUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + ln.Addr().String() + "/"
	require.NoError(t, ln.Close()) // nothing listens there now
	_, addr := startGuardServer(t, mustGuard(t, energy.GuardOptions{Token: "t"}), down, energy.GuardServerOptions{})
	a := call(t, "http://"+addr+"/", `{"jsonrpc":"2.0","id":"q1","method":"energy.market","params":{}}`, "t")
	assert.Equal(t, rpcAnswer{status: http.StatusBadGateway, id: `"q1"`, code: -32603, msg: "the node is unreachable"}, a)
	a = call(t, "http://"+addr+"/", `{"jsonrpc":"2.0","id":tru,"method":"node.status"}`, "")
	assert.Equal(t, "null", a.id, "an invalid id is answered as null")
}

// Issue #14 item 3: a black-holed node held the request for 90 s and more. Now
// UpstreamTimeout ends it with a JSON-RPC error and HTTP 504.
func TestGuardServerUpstreamTimeout(t *testing.T) {
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var held sync.WaitGroup
	go func() { // accepts, reads, never answers
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			held.Add(1)
			go func() { defer held.Done(); _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { hole.Close(); held.Wait() })
	g := mustGuard(t, energy.GuardOptions{})
	_, addr := startGuardServer(t, g, "http://"+hole.Addr().String()+"/", energy.GuardServerOptions{UpstreamTimeout: 200 * time.Millisecond})
	a := call(t, "http://"+addr+"/", `{"jsonrpc":"2.0","id":9,"method":"energy.market"}`, "")
	assert.Equal(t, rpcAnswer{status: http.StatusGatewayTimeout, id: "9", code: -32603, msg: "the node did not answer within 200ms"}, a)
}

// A client that sends its headers and then stalls is answered -32600 (HTTP
// 408, with the id it got as far as) when BodyTimeout passes, and cut off.
func TestGuardServerBodyTimeout(t *testing.T) {
	timers := newManualTimers()
	s, addr := startGuardServer(t, mustGuard(t, energy.GuardOptions{}), rpcUpstream(t).URL, energy.GuardServerOptions{AfterFunc: timers.AfterFunc})
	c := dialSlowBody(t, addr, `{"jsonrpc":"2.0","id":42,`)
	require.Eventually(t, func() bool { return timers.armed() == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 1, timers.fireAll())
	a := readCut(t, c)
	assert.Equal(t, rpcAnswer{status: http.StatusRequestTimeout, id: "42", code: -32600, msg: "request body not received in time"}, a)
	require.Eventually(t, func() bool { return s.OpenConns() == 0 }, 10*time.Second, 5*time.Millisecond)
}

// dialSlowBody opens a connection, sends the headers of a 4 KiB body and its
// first bytes, and leaves the rest unsent.
func dialSlowBody(t testing.TB, addr, start string) net.Conn {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: guard\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"+start)
	require.NoError(t, err)
	return c
}

// readCut reads the guard's answer on a slow connection and checks that the
// guard then closed it.
func readCut(t *testing.T, c net.Conn) rpcAnswer {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second))) // a bound, not a measurement
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	a := decodeAnswer(t, resp)
	_, err = br.ReadByte()
	require.Error(t, err, "the guard keeps a timed-out connection open")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the guard keeps a timed-out connection open")
	return a
}

// A client that never finishes its headers is cut by HeaderTimeout.
func TestGuardServerHeaderTimeout(t *testing.T) {
	s, addr := startGuardServer(t, mustGuard(t, energy.GuardOptions{}), rpcUpstream(t).URL, energy.GuardServerOptions{HeaderTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: gu")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = io.ReadAll(c)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the guard kept a connection with unfinished headers open")
	require.Eventually(t, func() bool { return s.OpenConns() == 0 }, 10*time.Second, 5*time.Millisecond)
}

// Beyond MaxConns a connection waits until one closes; it is then served.
func TestGuardServerMaxConns(t *testing.T) {
	s, addr := startGuardServer(t, mustGuard(t, energy.GuardOptions{}), rpcUpstream(t).URL, energy.GuardServerOptions{MaxConns: 2})
	a := dialSlowBody(t, addr, "{")
	b := dialSlowBody(t, addr, "{")
	defer b.Close()
	require.Eventually(t, func() bool { return s.OpenConns() == 2 }, 10*time.Second, 5*time.Millisecond)
	answered := make(chan rpcAnswer, 1)
	go func() {
		answered <- call(t, "http://"+addr+"/", `{"jsonrpc":"2.0","id":1,"method":"node.status"}`, "")
	}()
	select {
	case <-answered:
		t.Fatal("a third connection was served while two were open with MaxConns 2")
	default:
	}
	assert.Equal(t, 2, s.OpenConns())
	require.NoError(t, a.Close())
	assert.Equal(t, 0, (<-answered).code)
	assert.LessOrEqual(t, s.OpenConns(), 2)
}

func TestGuardServerMetrics(t *testing.T) {
	g := mustGuard(t, energy.GuardOptions{Token: "t"})
	_, addr := startGuardServer(t, g, rpcUpstream(t).URL, energy.GuardServerOptions{MetricsPath: "/guard/metrics"})
	assert.Equal(t, -33009, call(t, "http://"+addr+"/", marketReq, "").code)
	resp, err := http.Get("http://" + addr + "/guard/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(b), `energy_rpc_rejected_total{reason="unauthorized"} 1`)
	assert.Contains(t, string(b), "energy_rpc_rate_limit_rps 50")
	assert.Contains(t, string(b), "energy_rpc_guard_connections ")
}

func TestNewGuardServerRefusesInvalidOptions(t *testing.T) {
	g := mustGuard(t, energy.GuardOptions{})
	for _, o := range []energy.GuardServerOptions{{HeaderTimeout: -1}, {BodyTimeout: -time.Second}, {IdleTimeout: -1},
		{UpstreamTimeout: -time.Millisecond}, {MaxConns: -1}} {
		s, err := energy.NewGuardServer(g, "http://127.0.0.1:3030/", o)
		assert.Nil(t, s)
		var oe *energy.OptionError
		require.ErrorAs(t, err, &oe, "%+v", o)
		assert.Contains(t, err.Error(), "must not be negative")
	}
	for _, u := range []string{"", "127.0.0.1:3030", "ftp://node/", "http:///x"} {
		_, err := energy.NewGuardServer(g, u, energy.GuardServerOptions{})
		assert.ErrorContains(t, err, "want an http(s) URL", u)
	}
	_, err := energy.NewGuardServer(g, "ftp://admin:hunter2@node/", energy.GuardServerOptions{})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2", "the upstream's password is never printed")
}

// The guard as a bounded reverse proxy: no token, -33009; an ambiguous body
// (a second "method" after 70 000 spaces), -32600 before anything is checked;
// with the token, the node's answer.
func ExampleNewGuardServer() {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":3,"result":{"providers":[]}}`+"\n")
	}))
	defer node.Close()
	guard, err := energy.NewGuard(energy.GuardOptions{Token: "s3cret", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	srv, err := energy.NewGuardServer(guard, node.URL, energy.GuardServerOptions{UpstreamTimeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { stop(); <-served }()

	post := func(body, token string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", string(b))
	}
	post(`{"jsonrpc":"2.0","id":1,"method":"energy.market","params":{}}`, "")
	post(`{"jsonrpc":"2.0","id":2,"method":"node.status",`+strings.Repeat(" ", 70_000)+`"method":"energy.market"}`, "")
	post(`{"jsonrpc":"2.0","id":3,"method":"energy.market","params":{}}`, "s3cret")
	// Output:
	// 200 {"jsonrpc":"2.0","id":1,"error":{"code":-33009,"message":"unauthorized"}}
	// 200 {"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"field \"method\" is given more than once (keys match in any letter case)"}}
	// 200 {"jsonrpc":"2.0","id":3,"result":{"providers":[]}}
}
