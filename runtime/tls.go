package runtime

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTLSHandshakeTimeout is runtime.tls_handshake_timeout_ms's default.
const DefaultTLSHandshakeTimeout = 10 * time.Second

// ErrHandshakeTimeout is matched (errors.Is) by a *HandshakeError for a
// handshake that did not finish in time.
var ErrHandshakeTimeout = errors.New("tls handshake timeout")

// HandshakeError is a TLS handshake that failed or did not finish in time.
type HandshakeError struct {
	// Side is "server" (a client connected to us) or "client" (we connected).
	Side string
	// Peer is the remote address.
	Peer string
	// Limit is the bound that applied.
	Limit time.Duration
	// TimedOut is true when the bound was hit.
	TimedOut bool
	// Err is the underlying error.
	Err error
}

// Error names the side, the peer and the bound, and for a timeout the knob
// and variable that set it.
func (e *HandshakeError) Error() string {
	if e.TimedOut {
		return fmt.Sprintf("%s: TLS handshake with %s timed out after %s (runtime.tls_handshake_timeout_ms, env TB_TLS_HANDSHAKE_TIMEOUT_MS)",
			e.Side, e.Peer, e.Limit)
	}
	return fmt.Sprintf("%s: TLS handshake with %s failed: %v", e.Side, e.Peer, e.Err)
}

// Unwrap returns the underlying error.
func (e *HandshakeError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrHandshakeTimeout) true for a timed-out handshake.
func (e *HandshakeError) Is(target error) bool { return target == ErrHandshakeTimeout && e.TimedOut }

// Timeout reports whether the handshake timed out (the net.Error convention).
func (e *HandshakeError) Timeout() bool { return e.TimedOut }

// Temporary is false: a failed handshake is not retried on the same connection.
func (e *HandshakeError) Temporary() bool { return false }

// tlsTimeoutFromEnv applies TB_TLS_HANDSHAKE_TIMEOUT_MS to d.
func tlsTimeoutFromEnv(d time.Duration, getenv func(string) string) (time.Duration, error) {
	if getenv == nil {
		return d, nil
	}
	s := spec("runtime.tls_handshake_timeout_ms")
	raw := getenv(s.Env)
	if raw == "" {
		return d, nil
	}
	ms, err := envValue(s, raw)
	if err != nil {
		return d, err
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTLSHandshakeTimeout
	}
	return d
}

// ServerConfig is the runbook's ServerConfig: how an HTTP server bounds TLS
// handshakes.
type ServerConfig struct {
	// TLSHandshakeTimeout bounds each handshake from accept to finish (0 means
	// DefaultTLSHandshakeTimeout).
	TLSHandshakeTimeout time.Duration
	// HandshakeTimeoutFunc, when set, is called at every accepted connection
	// for the bound of its handshake, instead of TLSHandshakeTimeout, so that a
	// reloaded runtime.tls_handshake_timeout_ms applies from the next
	// connection on: pass a Watcher's current value,
	//
	//	func() time.Duration { return w.Current().Knobs.TLSHandshakeTimeout }
	//
	// A result ≤ 0 means DefaultTLSHandshakeTimeout.
	HandshakeTimeoutFunc func() time.Duration
	// TLSConfig holds the certificates. NextProtos defaults to h2 and http/1.1.
	TLSConfig *tls.Config
	// Logger receives failed handshakes at debug level (default slog.Default()).
	Logger *slog.Logger
	// OnHandshakeError, when set, is called with every failed handshake
	// (a *HandshakeError), e.g. to count them.
	OnHandshakeError func(error)
}

// ApplyEnv returns c with TB_TLS_HANDSHAKE_TIMEOUT_MS applied when set; a bad
// value is an error naming the variable and the allowed range.
func (c ServerConfig) ApplyEnv(getenv func(string) string) (ServerConfig, error) {
	d, err := tlsTimeoutFromEnv(c.TLSHandshakeTimeout, getenv)
	if err != nil {
		return c, err
	}
	c.TLSHandshakeTimeout = d
	return c, nil
}

func (c ServerConfig) tlsConfig() *tls.Config {
	var cfg *tls.Config
	if c.TLSConfig != nil {
		cfg = c.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	return cfg
}

// NewServer builds an *http.Server for h with the TLS configuration. Serve it
// with c.Serve (or srv.Serve(c.NewListener(ln))): that bounds every handshake by
// exactly TLSHandshakeTimeout. net/http has no handshake timeout of its own; it
// bounds handshakes by the smallest of ReadHeaderTimeout, ReadTimeout and
// WriteTimeout, so NewServer also sets ReadHeaderTimeout to the handshake
// timeout — then even srv.ListenAndServeTLS is bounded, and slow request
// headers (slowloris) are too.
func (c ServerConfig) NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         c.tlsConfig(),
		ReadHeaderTimeout: c.timeout(),
		ErrorLog:          slog.NewLogLogger(c.logger().Handler(), slog.LevelDebug),
	}
}

// timeout is the handshake bound for a connection accepted now.
func (c ServerConfig) timeout() time.Duration {
	if c.HandshakeTimeoutFunc != nil {
		return orDefault(c.HandshakeTimeoutFunc())
	}
	return orDefault(c.TLSHandshakeTimeout)
}

func (c ServerConfig) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Serve serves srv on the plain listener inner, doing TLS with srv.TLSConfig
// (c.TLSConfig when srv has none) and bounding every handshake.
func (c ServerConfig) Serve(srv *http.Server, inner net.Listener) error {
	if srv.TLSConfig != nil {
		c.TLSConfig = srv.TLSConfig
	}
	return srv.Serve(c.NewListener(inner))
}

// MetricTLSHandshakeFailures is the counter Listener.Collector exports:
// tls_handshake_failures_total{reason="timeout"|"error"}.
const MetricTLSHandshakeFailures = "tls_handshake_failures_total"

// Reasons a server-side handshake failed, the values of
// tls_handshake_failures_total's reason label.
const (
	ReasonTimeout = "timeout"
	ReasonError   = "error"
)

// NewListener wraps a plain listener: Accept returns *tls.Conn whose handshake
// has already finished. Each handshake runs in its own goroutine, bounded from
// the moment the connection was accepted by the timeout in force then
// (HandshakeTimeoutFunc, else TLSHandshakeTimeout), so a peer that connects and
// never sends a ClientHello (or stalls half-way) neither blocks other
// connections nor holds a socket past the timeout. Closing the listener
// aborts pending handshakes.
func (c ServerConfig) NewListener(inner net.Listener) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{inner: inner, cfg: c.tlsConfig(), timeout: c.timeout, logger: c.logger(), onErr: c.OnHandshakeError,
		ctx: ctx, cancel: cancel, conns: make(chan net.Conn), errc: make(chan error)}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Listener is a TLS listener that bounds every handshake (ServerConfig.NewListener)
// and counts the handshakes that failed. It is a net.Listener.
type Listener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout func() time.Duration // the bound for a connection accepted now
	logger  *slog.Logger
	onErr   func(error)

	timeouts, failures atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	conns  chan net.Conn
	errc   chan error
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			select {
			case l.errc <- err:
			case <-l.ctx.Done():
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // http.Server backs off on temporary errors before calling Accept again
		}
		l.wg.Add(1)
		go l.handshake(raw, l.timeout())
	}
}

func (l *Listener) handshake(raw net.Conn, limit time.Duration) {
	defer l.wg.Done()
	tc := tls.Server(raw, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, limit)
	err := tc.HandshakeContext(ctx)
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		_ = raw.Close()
		if l.ctx.Err() != nil {
			return // the listener closed
		}
		if timedOut {
			l.timeouts.Add(1)
		} else {
			l.failures.Add(1)
		}
		he := &HandshakeError{Side: "server", Peer: raw.RemoteAddr().String(), Limit: limit, TimedOut: timedOut, Err: err}
		l.logger.Debug("tls handshake failed", "err", he)
		if l.onErr != nil {
			l.onErr(he)
		}
		return
	}
	select {
	case l.conns <- tc:
	case <-l.ctx.Done():
		_ = tc.Close()
	}
}

// Accept waits for the next connection whose handshake finished.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close closes the inner listener, aborts pending handshakes and waits for
// their goroutines.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.cancel()
		l.err = l.inner.Close()
		l.wg.Wait()
	})
	return l.err
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// HandshakeFailures returns how many handshakes timed out and how many failed
// otherwise (a peer that is not speaking TLS, no shared cipher, a bad
// certificate), since the listener started. Handshakes aborted by Close are
// not counted.
func (l *Listener) HandshakeFailures() (timeouts, failed uint64) {
	return l.timeouts.Load(), l.failures.Load()
}

// Collector exports tls_handshake_failures_total{reason="timeout"|"error"},
// both series from zero, with constLabels on each (nil for none; use them to
// tell several listeners apart, e.g. {"listener": "rpc"}). Register it with a
// prometheus.Registerer; it reads HandshakeFailures at each scrape.
func (l *Listener) Collector(constLabels prometheus.Labels) prometheus.Collector {
	return &countCollector{
		desc: prometheus.NewDesc(MetricTLSHandshakeFailures,
			"Server-side TLS handshakes that failed, by reason: timeout (runtime.tls_handshake_timeout_ms) or error.",
			[]string{"reason"}, constLabels),
		values: []string{ReasonTimeout, ReasonError},
		counts: func() []uint64 {
			t, f := l.HandshakeFailures()
			return []uint64{t, f}
		},
	}
}

// ClientConfig is the runbook's ClientConfig: how an HTTP client bounds TLS
// handshakes.
type ClientConfig struct {
	// TLSHandshakeTimeout bounds each handshake (0 means DefaultTLSHandshakeTimeout).
	TLSHandshakeTimeout time.Duration
	// TLSConfig holds roots and client certificates (nil: system roots).
	TLSConfig *tls.Config
	// DialTimeout bounds the TCP connect (0: 30 s, as http.DefaultTransport).
	DialTimeout time.Duration
}

// ApplyEnv returns c with TB_TLS_HANDSHAKE_TIMEOUT_MS applied when set.
func (c ClientConfig) ApplyEnv(getenv func(string) string) (ClientConfig, error) {
	d, err := tlsTimeoutFromEnv(c.TLSHandshakeTimeout, getenv)
	if err != nil {
		return c, err
	}
	c.TLSHandshakeTimeout = d
	return c, nil
}

func (c ClientConfig) dialer() *net.Dialer {
	d := c.DialTimeout
	if d <= 0 {
		d = 30 * time.Second
	}
	return &net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}
}

// NewTransport returns a copy of http.DefaultTransport (proxy from the
// environment, HTTP/2, keep-alives) with the TLS configuration and the handshake
// bound. A handshake that takes too long fails the request with net/http's
// "net/http: TLS handshake timeout", a net.Error whose Timeout() is true.
func (c ClientConfig) NewTransport() *http.Transport {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	t.DialContext = c.dialer().DialContext
	t.TLSHandshakeTimeout = orDefault(c.TLSHandshakeTimeout)
	if c.TLSConfig != nil {
		t.TLSClientConfig = c.TLSConfig.Clone()
	}
	return t
}

// DialTLS connects to addr and completes a TLS handshake within
// TLSHandshakeTimeout, for clients that are not HTTP (the runbook's
// TlsConnectorBuilder::handshake_timeout). A handshake that takes too long is a
// *HandshakeError matching ErrHandshakeTimeout.
func (c ClientConfig) DialTLS(ctx context.Context, network, addr string) (*tls.Conn, error) {
	raw, err := c.dialer().DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSConfig != nil {
		cfg = c.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	timeout := orDefault(c.TLSHandshakeTimeout)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = raw.Close()
		timedOut := errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &HandshakeError{Side: "client", Peer: addr, Limit: timeout, TimedOut: timedOut, Err: err}
	}
	return tc, nil
}

// ServerConfig returns a ServerConfig with the knobs' handshake timeout.
func (k Knobs) ServerConfig(tlsConfig *tls.Config) ServerConfig {
	return ServerConfig{TLSHandshakeTimeout: k.TLSHandshakeTimeout, TLSConfig: tlsConfig}
}

// ClientConfig returns a ClientConfig with the knobs' handshake timeout.
func (k Knobs) ClientConfig(tlsConfig *tls.Config) ClientConfig {
	return ClientConfig{TLSHandshakeTimeout: k.TLSHandshakeTimeout, TLSConfig: tlsConfig}
}
