package energy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/rpc"
)

// Guard server defaults (the flags of tbops energy guard default to them).
const (
	DefaultHeaderTimeout   = 5 * time.Second
	DefaultBodyTimeout     = 10 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	DefaultUpstreamTimeout = 10 * time.Second
	DefaultMaxConns        = 10_000
)

// Fixed bounds of the guard server.
const (
	// guardMaxHeaderBytes caps request headers: JSON-RPC needs few, and every
	// open connection may hold this much.
	guardMaxHeaderBytes = 32 << 10
	// guardWriteSlack is how long writing an answer may take beyond the body
	// and upstream timeouts (a client that does not read is cut after it).
	guardWriteSlack = 10 * time.Second
	// guardShutdownGrace is how long Serve waits for requests in flight.
	guardShutdownGrace = 5 * time.Second
)

// GuardServerOptions bounds a GuardServer. Zero values take the defaults
// above; negative ones are refused by NewGuardServer.
type GuardServerOptions struct {
	// HeaderTimeout bounds reading a request's headers (DefaultHeaderTimeout).
	HeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body, counted from the end of its
	// headers (DefaultBodyTimeout). A client still sending after it gets -32600
	// with HTTP 408 and its connection is closed.
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// UpstreamTimeout bounds one forwarded exchange with the node: connect,
	// request and the whole answer (DefaultUpstreamTimeout).
	UpstreamTimeout time.Duration
	// MaxConns caps the client connections open at once (DefaultMaxConns);
	// further connections wait in the kernel's accept queue. Each one may hold
	// an upstream connection, so keep 2·MaxConns under the process's file
	// limit; the bodies they send are bounded in all by the guard's MaxBuffered.
	MaxConns int
	// MetricsPath, when set, serves the guard's metrics there instead of
	// forwarding the path: energy_rpc_rejected_total, energy_rpc_rate_limit_rps
	// and energy_rpc_guard_connections.
	MetricsPath string
	// Logger receives upstream failures and server errors (slog.Default when nil).
	Logger *slog.Logger
	// AfterFunc runs f once d has passed and returns a function that cancels
	// it; it times BodyTimeout (time.AfterFunc when nil). Tests pass one that
	// fires on demand.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

func (o GuardServerOptions) validate() error {
	var errs []error
	refuseNegative(&errs, "HeaderTimeout", o.HeaderTimeout)
	refuseNegative(&errs, "BodyTimeout", o.BodyTimeout)
	refuseNegative(&errs, "IdleTimeout", o.IdleTimeout)
	refuseNegative(&errs, "UpstreamTimeout", o.UpstreamTimeout)
	refuseNegative(&errs, "MaxConns", o.MaxConns)
	return errors.Join(errs...)
}

// GuardServer is a Guard in front of a node as a bounded reverse proxy: the
// headers, the body, idle keep-alives, the number of open connections and
// every upstream exchange have a time or size limit, and every failure it
// answers itself is a JSON-RPC error carrying the request's id (when that id is
// a valid string, number or null):
//
//	rejected by the guard    -33009 HTTP 200, -33010 HTTP 429 (see Guard)
//	body over MaxBody        -32600 HTTP 200 (as the node answers it)
//	bad envelope             -32600 or -32700 HTTP 200 (as the node answers it)
//	body not in time         -32600 HTTP 408, connection closed
//	node unreachable         -32603 HTTP 502
//	node not in time         -32603 HTTP 504
//
// A GuardServer is an http.Handler (without the connection bounds, which
// belong to Serve).
type GuardServer struct {
	upstream *url.URL
	o        GuardServerOptions
	handler  http.Handler
	open     atomic.Int64
}

// NewGuardServer puts g in front of the node at upstream (an http or https
// URL).
func NewGuardServer(g *Guard, upstream string, o GuardServerOptions) (*GuardServer, error) {
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &OptionError{Option: "upstream", Value: tbops.RedactURL(upstream), Reason: "want an http(s) URL"}
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.HeaderTimeout = cmp.Or(o.HeaderTimeout, DefaultHeaderTimeout)
	o.BodyTimeout = cmp.Or(o.BodyTimeout, DefaultBodyTimeout)
	o.IdleTimeout = cmp.Or(o.IdleTimeout, DefaultIdleTimeout)
	o.UpstreamTimeout = cmp.Or(o.UpstreamTimeout, DefaultUpstreamTimeout)
	o.MaxConns = cmp.Or(o.MaxConns, DefaultMaxConns)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AfterFunc == nil {
		o.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	s := &GuardServer{upstream: u, o: o}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = &http.Transport{
		Proxy:                 nil, // never an HTTP_PROXY from the environment
		DialContext:           (&net.Dialer{Timeout: o.UpstreamTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   o.UpstreamTimeout,
		ResponseHeaderTimeout: o.UpstreamTimeout,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       o.IdleTimeout,
	}
	proxy.ErrorHandler = s.upstreamFailed
	proxy.ErrorLog = slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)
	mux := http.NewServeMux()
	if o.MetricsPath != "" {
		reg := prometheus.NewRegistry()
		if err := reg.Register(g); err != nil {
			return nil, fmt.Errorf("energy guard: metrics: %w", err)
		}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "energy_rpc_guard_connections",
			Help: "Client connections the energy RPC guard holds open."}, func() float64 { return float64(s.OpenConns()) }))
		mux.Handle(o.MetricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	mux.Handle("/", g.Middleware(s.withUpstreamTimeout(proxy)))
	s.handler = mux
	return s, nil
}

// OpenConns is the number of client connections Serve holds open now.
func (s *GuardServer) OpenConns() int { return int(s.open.Load()) }

// ServeHTTP answers one request: the guard, then the node, with the body read
// bounded by BodyTimeout.
func (s *GuardServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		t := s.armBodyTimer(w)
		defer t.disarm()
		r = r.WithContext(r.Context()) // a copy: the server keeps its own view of the body
		r.Body = &timedBody{ReadCloser: r.Body, t: t}
	}
	s.handler.ServeHTTP(w, r)
}

// Serve answers the connections of ln, at most MaxConns at once, until ctx is
// done; then it stops accepting, lets requests in flight finish (for up to 5 s)
// and returns nil. It closes ln. Call it once.
func (s *GuardServer) Serve(ctx context.Context, ln net.Listener) error {
	errLog := slog.NewLogLogger(s.o.Logger.Handler(), slog.LevelWarn)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.o.HeaderTimeout,
		// No ReadTimeout: it would also run while the node answers, and cancel
		// the request when it passes. The body has its own timer (ServeHTTP).
		WriteTimeout:   s.o.BodyTimeout + s.o.UpstreamTimeout + guardWriteSlack,
		IdleTimeout:    s.o.IdleTimeout,
		MaxHeaderBytes: guardMaxHeaderBytes,
		ErrorLog:       errLog,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(newCapListener(ln, s.o.MaxConns, &s.open)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), guardShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

// withUpstreamTimeout bounds the whole exchange with the node.
func (s *GuardServer) withUpstreamTimeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.o.UpstreamTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// upstreamFailed answers a request the node did not answer.
func (s *GuardServer) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	id, _ := r.Context().Value(requestIDKey{}).(json.RawMessage)
	var ne net.Error
	switch {
	case errors.Is(r.Context().Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		s.o.Logger.Warn("energy guard: the node did not answer in time", "upstream", tbops.RedactURL(s.upstream.String()),
			"timeout", s.o.UpstreamTimeout.String())
		rpc.WriteError(w, id, &rpc.Error{Code: rpc.CodeInternal,
			Message: "the node did not answer within " + s.o.UpstreamTimeout.String()}, http.StatusGatewayTimeout)
	case r.Context().Err() != nil:
		// The client went away: nobody to answer.
	default:
		s.o.Logger.Warn("energy guard: the node is unreachable", "upstream", tbops.RedactURL(s.upstream.String()),
			"err", tbops.RedactText(err.Error()))
		rpc.WriteError(w, id, &rpc.Error{Code: rpc.CodeInternal, Message: "the node is unreachable"}, http.StatusBadGateway)
	}
}

// bodyTimer cuts a body read that outlasts BodyTimeout by moving the
// connection's read deadline to the past, which fails the pending read. It is
// disarmed when the body ends or the handler returns, whichever comes first,
// so it never touches a connection it no longer owns.
type bodyTimer struct {
	mu   sync.Mutex
	done bool
	rc   *http.ResponseController
	stop func() bool
}

func (s *GuardServer) armBodyTimer(w http.ResponseWriter) *bodyTimer {
	t := &bodyTimer{rc: http.NewResponseController(w)}
	t.stop = s.o.AfterFunc(s.o.BodyTimeout, t.fire)
	return t
}

func (t *bodyTimer) fire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.done {
		t.done = true
		_ = t.rc.SetReadDeadline(time.Unix(1, 0))
	}
}

func (t *bodyTimer) disarm() {
	t.mu.Lock()
	t.done = true
	t.mu.Unlock()
	t.stop()
}

// timedBody disarms its timer when the body ends (or fails).
type timedBody struct {
	io.ReadCloser
	t *bodyTimer
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.t.disarm()
	}
	return n, err
}

// capListener holds at most max connections open: Accept waits for a slot, so
// connections beyond the cap wait in the kernel's queue, costing no descriptor.
type capListener struct {
	net.Listener
	slots chan struct{}
	open  *atomic.Int64
	done  chan struct{}
	once  sync.Once
}

func newCapListener(ln net.Listener, max int, open *atomic.Int64) *capListener {
	return &capListener{Listener: ln, slots: make(chan struct{}, max), open: open, done: make(chan struct{})}
}

func (l *capListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.open.Add(1)
	return &capConn{Conn: c, l: l}, nil
}

func (l *capListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// capConn gives its slot back once, on the first Close.
type capConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		<-c.l.slots
	})
	return err
}
