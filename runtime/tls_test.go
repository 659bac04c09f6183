package runtime

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// selfSigned returns a server config for 127.0.0.1 and a client config that
// trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tbops test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// handshakeErrors collects the server's failed handshakes.
type handshakeErrors struct {
	mu   sync.Mutex
	errs []error
	got  chan struct{}
}

func newHandshakeErrors() *handshakeErrors { return &handshakeErrors{got: make(chan struct{}, 16)} }

func (h *handshakeErrors) add(err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
	h.got <- struct{}{}
}

func serveTLS(t *testing.T, cfg ServerConfig) (addr string, srv *http.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv = cfg.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Proto)
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cfg.Serve(srv, ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String(), srv
}

// TestServerHandshakeTimeout: a raw TCP client connects and never sends a
// ClientHello; the server gives up and closes the connection, while a good
// client is served meanwhile.
func TestServerHandshakeTimeout(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	herrs := newHandshakeErrors()
	cfg := ServerConfig{TLSHandshakeTimeout: 2 * time.Second, TLSConfig: srvTLS,
		Logger: slog.New(slog.DiscardHandler), OnHandshakeError: herrs.add}
	addr, _ := serveTLS(t, cfg)

	stalled, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer stalled.Close()

	// A stalled peer does not block others: handshakes run concurrently. (2 s,
	// not less: the good client's own handshake must fit on a loaded machine.)
	client := &http.Client{Transport: ClientConfig{TLSConfig: cliTLS}.NewTransport(), Timeout: 10 * time.Second}
	resp, err := client.Get("https://" + addr + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "hello HTTP/2.0", string(body), "ALPN still negotiates h2")

	// The server closes the stalled connection: a read ends (EOF or reset) well
	// before this generous bound.
	require.NoError(t, stalled.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = stalled.Read(make([]byte, 1))
	require.Error(t, err)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the server, not our 10s read deadline, ended it: %v", err)

	select {
	case <-herrs.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake error reported")
	}
	herrs.mu.Lock()
	defer herrs.mu.Unlock()
	require.Len(t, herrs.errs, 1)
	he := herrs.errs[0]
	assert.ErrorIs(t, he, ErrHandshakeTimeout)
	assert.Contains(t, he.Error(), "timed out after 2s")
	assert.Contains(t, he.Error(), "TB_TLS_HANDSHAKE_TIMEOUT_MS")
	assert.Contains(t, he.Error(), stalled.LocalAddr().String())
}

// TestServerHandshakeStallsMidway sends a ClientHello and then goes silent.
func TestServerHandshakeStallsMidway(t *testing.T) {
	srvTLS, _ := selfSigned(t)
	herrs := newHandshakeErrors()
	cfg := ServerConfig{TLSHandshakeTimeout: 200 * time.Millisecond, TLSConfig: srvTLS,
		Logger: slog.New(slog.DiscardHandler), OnHandshakeError: herrs.add}
	addr, _ := serveTLS(t, cfg)

	raw, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer raw.Close()
	// Capture a real ClientHello by running a client handshake over a pipe.
	cside, sside := net.Pipe()
	go func() {
		_ = tls.Client(cside, &tls.Config{InsecureSkipVerify: true}).Handshake() //nolint:gosec // test: only the ClientHello is used
	}()
	hello := make([]byte, 4096)
	n, err := sside.Read(hello)
	require.NoError(t, err)
	_ = sside.Close()
	_, err = raw.Write(hello[:n])
	require.NoError(t, err)

	require.NoError(t, raw.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.Copy(io.Discard, raw) // the server's flight, then the close
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the server ended it: %v", err)
	select {
	case <-herrs.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake error reported")
	}
	herrs.mu.Lock()
	defer herrs.mu.Unlock()
	assert.ErrorIs(t, herrs.errs[0], ErrHandshakeTimeout)
}

// TestClientHandshakeTimeout: a raw TCP listener accepts and never answers.
func TestClientHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var held []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted and never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	})
	cc := ClientConfig{TLSHandshakeTimeout: 200 * time.Millisecond}

	// HTTP: net/http's own bound, set by NewTransport.
	tr := cc.NewTransport()
	defer tr.CloseIdleConnections()
	assert.Equal(t, 200*time.Millisecond, tr.TLSHandshakeTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ln.Addr().String()+"/", nil)
	require.NoError(t, err)
	_, err = (&http.Client{Transport: tr}).Do(req)
	require.Error(t, err)
	assert.NoError(t, ctx.Err(), "the handshake bound, not the 10s test bound, ended it")
	assert.Contains(t, err.Error(), "TLS handshake timeout")
	var ne net.Error
	require.True(t, errors.As(err, &ne))
	assert.True(t, ne.Timeout())

	// Raw TLS: DialTLS.
	_, err = cc.DialTLS(ctx, "tcp", ln.Addr().String())
	require.Error(t, err)
	assert.NoError(t, ctx.Err())
	assert.ErrorIs(t, err, ErrHandshakeTimeout)
	var he *HandshakeError
	require.True(t, errors.As(err, &he))
	assert.Equal(t, "client", he.Side)
	assert.Contains(t, err.Error(), "client: TLS handshake with "+ln.Addr().String()+" timed out after 200ms")

	// A cancelled caller is the caller's error, not a handshake timeout.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	_, err = cc.DialTLS(cctx, "tcp", ln.Addr().String())
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrHandshakeTimeout)
}

func TestDialTLSSucceeds(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	addr, _ := serveTLS(t, ServerConfig{TLSConfig: srvTLS, Logger: slog.New(slog.DiscardHandler)})
	c, err := ClientConfig{TLSConfig: cliTLS}.DialTLS(context.Background(), "tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	assert.True(t, c.ConnectionState().HandshakeComplete)
	// Verification against the certificate's IP SAN passed: DialTLS set
	// ServerName from the address (without it crypto/tls refuses to verify).
	assert.Len(t, c.ConnectionState().PeerCertificates, 1)
}

func TestTLSApplyEnvAndDefaults(t *testing.T) {
	sc, err := ServerConfig{}.ApplyEnv(envOf(map[string]string{"TB_TLS_HANDSHAKE_TIMEOUT_MS": "1500"}))
	require.NoError(t, err)
	assert.Equal(t, 1500*time.Millisecond, sc.TLSHandshakeTimeout)
	srv := sc.NewServer(http.NotFoundHandler())
	assert.Equal(t, 1500*time.Millisecond, srv.ReadHeaderTimeout, "ListenAndServeTLS is bounded too")
	assert.Equal(t, []string{"h2", "http/1.1"}, srv.TLSConfig.NextProtos)

	cc, err := ClientConfig{TLSHandshakeTimeout: time.Second}.ApplyEnv(envOf(nil))
	require.NoError(t, err)
	assert.Equal(t, time.Second, cc.TLSHandshakeTimeout, "unset env leaves the value")
	assert.Equal(t, DefaultTLSHandshakeTimeout, ClientConfig{}.NewTransport().TLSHandshakeTimeout)

	_, err = ClientConfig{}.ApplyEnv(envOf(map[string]string{"TB_TLS_HANDSHAKE_TIMEOUT_MS": "10s"}))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), `TB_TLS_HANDSHAKE_TIMEOUT_MS="10s"`)
	_, err = ServerConfig{}.ApplyEnv(envOf(map[string]string{"TB_TLS_HANDSHAKE_TIMEOUT_MS": "5"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "allowed 100..300000 ms")

	k := DefaultKnobs()
	k.TLSHandshakeTimeout = 3 * time.Second
	assert.Equal(t, 3*time.Second, k.ServerConfig(nil).TLSHandshakeTimeout)
	assert.Equal(t, 3*time.Second, k.ClientConfig(nil).TLSHandshakeTimeout)
}

func TestHandshakeListenerCloseAbortsPending(t *testing.T) {
	srvTLS, _ := selfSigned(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := ServerConfig{TLSHandshakeTimeout: time.Minute, TLSConfig: srvTLS}.NewListener(inner)
	raw, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	require.NoError(t, ln.Close()) // returns only once the pending handshake ended
	assert.ErrorIs(t, <-accepted, net.ErrClosed)
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = raw.Read(make([]byte, 1))
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the pending handshake was aborted: %v", err)
}

// waitHandshakeErrors waits (bounded) for n failed handshakes and returns them.
func (h *handshakeErrors) wait(t *testing.T, n int) []*HandshakeError {
	t.Helper()
	for range n {
		select {
		case <-h.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("fewer than %d handshake errors reported", n)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*HandshakeError
	for _, err := range h.errs {
		var he *HandshakeError
		require.ErrorAs(t, err, &he)
		out = append(out, he)
	}
	return out
}

// stall connects and sends nothing, then waits (bounded) for the server to
// end the connection: a slow handshake cut by the server.
func stall(t *testing.T, addr string) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer raw.Close()
	require.NoError(t, raw.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = raw.Read(make([]byte, 1))
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server, not our 10s read deadline, ended it: %v", err)
}

// TestListenerTimeoutFollowsReload is #13.7's reproduction: NewListener used to
// copy the handshake timeout once, so a reloaded tls_handshake_timeout_ms
// never applied. The listener reads the watcher's value at every connection:
// after the file goes from 5 minutes to 100 ms, a stalled handshake is cut at
// 100 ms.
func TestListenerTimeoutFollowsReload(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	p := writeFile(t, t.TempDir(), "node.toml", "[runtime]\ntls_handshake_timeout_ms = 300000\n")
	load := func(path string) (NodeConfig, error) {
		c, _, _, err := LoadNodeConfig(path, nil)
		return c, err
	}
	w, err := NewWatcher(p, load, WithDebounce(10*time.Millisecond), WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	defer w.Close()
	changes := w.Subscribe()

	herrs := newHandshakeErrors()
	cfg := ServerConfig{TLSConfig: srvTLS, Logger: slog.New(slog.DiscardHandler), OnHandshakeError: herrs.add,
		HandshakeTimeoutFunc: func() time.Duration { return w.Current().Knobs.TLSHandshakeTimeout }}
	addr, srv := serveTLS(t, cfg)
	assert.Equal(t, 5*time.Minute, srv.ReadHeaderTimeout, "the value in force when the server was built")

	replace(t, p, "[runtime]\ntls_handshake_timeout_ms = 100\n")
	require.Equal(t, ReloadOK, next(t, changes).Result)
	stall(t, addr)
	he := herrs.wait(t, 1)
	require.Len(t, he, 1)
	assert.True(t, he[0].TimedOut)
	assert.Equal(t, 100*time.Millisecond, he[0].Limit, "the reloaded timeout bounds the next handshake")

	// A good client still completes its handshake under the new bound.
	c, err := ClientConfig{TLSConfig: cliTLS}.DialTLS(context.Background(), "tcp", addr)
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

// The listener counts failed handshakes by reason and exports them as
// tls_handshake_failures_total, the collector style of every tbops type.
func TestListenerCountsFailures(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	herrs := newHandshakeErrors()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := ServerConfig{TLSHandshakeTimeout: 100 * time.Millisecond, TLSConfig: srvTLS,
		Logger: slog.New(slog.DiscardHandler), OnHandshakeError: herrs.add}.NewListener(inner)
	defer ln.Close()
	go func() { // accept and close what completes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	addr := ln.Addr().String()

	stall(t, addr) // a timeout
	plain, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(plain, "GET / HTTP/1.0\r\n\r\n") // not TLS: an error
	require.NoError(t, err)
	defer plain.Close()
	good, err := ClientConfig{TLSConfig: cliTLS}.DialTLS(context.Background(), "tcp", addr) // not counted
	require.NoError(t, err)
	require.NoError(t, good.Close())
	herrs.wait(t, 2)

	timeouts, failed := ln.HandshakeFailures()
	assert.Equal(t, []uint64{1, 1}, []uint64{timeouts, failed})
	require.NoError(t, testutil.CollectAndCompare(ln.Collector(prometheus.Labels{"listener": "rpc"}), strings.NewReader(`
# HELP tls_handshake_failures_total Server-side TLS handshakes that failed, by reason: timeout (runtime.tls_handshake_timeout_ms) or error.
# TYPE tls_handshake_failures_total counter
tls_handshake_failures_total{listener="rpc",reason="error"} 1
tls_handshake_failures_total{listener="rpc",reason="timeout"} 1
`)))
}
