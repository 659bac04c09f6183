package energy

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/theblock/tbops/rpc"
)

// Guard environment and defaults (PROTOCOL.md sections 4 and 8).
const (
	RPSEnv = "TB_ENERGY_RPC_RPS"
	// DefaultRPS is the per-client limit when TB_ENERGY_RPC_RPS is unset.
	DefaultRPS = 50
	// DefaultMaxClients caps the clients the limiter tracks.
	DefaultMaxClients = 100_000
	// DefaultMaxScan is how much of a body the guard reads to find the method.
	DefaultMaxScan = 64 << 10
	// GuardedPrefix is the method prefix the guard applies to.
	GuardedPrefix = "energy."
)

// Reject reasons, the reason label of energy_rpc_rejected_total.
const (
	RejectUnauthorized = "unauthorized"
	RejectRateLimited  = "rate_limited"
)

// GuardOptions configures a Guard.
type GuardOptions struct {
	// Token is the bearer token; "" turns auth off (with a warning).
	Token string
	// RPS is the per-client limit per Window (DefaultRPS when 0).
	RPS int
	// Window is the sliding window (1 s when 0).
	Window time.Duration
	// TrustedProxyHops, when > 0, takes the client address from the n-th
	// X-Forwarded-For entry counted from the right (1 = the address the nearest
	// proxy appended). 0 uses the connection's remote address. Only set it when
	// every request comes through that many trusted proxies.
	TrustedProxyHops int
	// MaxClients caps the tracked clients (DefaultMaxClients when 0).
	MaxClients int
	// MaxScan caps the bytes read to find the method (DefaultMaxScan when 0).
	MaxScan int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives the auth-off warning (slog.Default when nil).
	Logger *slog.Logger
}

// GuardOptionsFromEnv reads TB_ENERGY_RPC_TOKEN and TB_ENERGY_RPC_RPS.
func GuardOptionsFromEnv(getenv func(string) string) (GuardOptions, error) {
	o := GuardOptions{Token: getenv(TokenEnv), RPS: DefaultRPS}
	if v := strings.TrimSpace(getenv(RPSEnv)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("%s=%q: want a positive whole number of requests per second", RPSEnv, v)
		}
		o.RPS = n
	}
	return o, nil
}

// Guard is the energy RPC guard: bearer-token auth and a per-client
// sliding-window rate limit for energy.* JSON-RPC methods, decided before any
// business parameter is parsed. It is safe for concurrent use; token and limit
// change at run time with SetToken and SetRPS.
//
// Order: the rate limit is checked first, then the token, so token guessing is
// rate limited too (every energy request, authorised or not, counts against its
// client's limit). Requests that are not HTTP POST, and POSTs whose method does
// not start with "energy.", pass untouched. A POST whose method cannot be found
// within MaxScan bytes — a malformed or truncated body, a batch, params before a
// huge method, a non-string method, or a "method" key given twice in any letter
// case (encoding/json matches keys case-insensitively and keeps the last) — is
// treated as an energy request: the guard fails closed.
type Guard struct {
	token   atomic.Pointer[tokenState]
	limit   atomic.Uint64
	slotLen int64
	hops    int
	maxScan int
	now     func() time.Time
	log     *slog.Logger
	lim     *limiter

	rejected     *prometheus.CounterVec
	limitGauge   prometheus.GaugeFunc
	unauthorized prometheus.Counter
	rateLimited  prometheus.Counter
	nUnauth      atomic.Uint64
	nRate        atomic.Uint64
}

type tokenState struct {
	set bool
	sum [32]byte
}

// NewGuard returns a guard; it logs a warning when auth is off.
func NewGuard(o GuardOptions) *Guard {
	if o.RPS <= 0 {
		o.RPS = DefaultRPS
	}
	if o.Window <= 0 {
		o.Window = time.Second
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.MaxScan <= 0 {
		o.MaxScan = DefaultMaxScan
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g := &Guard{slotLen: max(int64(o.Window)/windowSlots, 1), hops: o.TrustedProxyHops, maxScan: o.MaxScan,
		now: o.Now, log: o.Logger, lim: newLimiter(o.MaxClients)}
	g.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "energy_rpc_rejected_total",
		Help: "Energy RPC requests rejected by the guard, by reason."}, []string{"reason"})
	g.unauthorized = g.rejected.WithLabelValues(RejectUnauthorized)
	g.rateLimited = g.rejected.WithLabelValues(RejectRateLimited)
	// The configured limit, for dashboards (the runbook's aggregator shows
	// energy.rate_limit_rps beside dispute and settlement health).
	g.limitGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "energy_rpc_rate_limit_rps",
		Help: "The energy RPC guard's limit: requests per second per client."}, func() float64 { return float64(g.RPS()) })
	g.limit.Store(uint64(o.RPS))
	g.SetToken(o.Token)
	return g
}

// SetToken replaces the bearer token; "" turns auth off (and logs a warning).
func (g *Guard) SetToken(token string) {
	st := &tokenState{}
	if token != "" {
		st.set, st.sum = true, sha256.Sum256([]byte(token))
	} else {
		g.log.Warn("energy RPC auth is off: " + TokenEnv + " is unset; any client may call energy.* methods")
	}
	g.token.Store(st)
}

// AuthEnabled says whether a token is set.
func (g *Guard) AuthEnabled() bool { return g.token.Load().set }

// SetRPS replaces the per-client limit.
func (g *Guard) SetRPS(rps int) error {
	if rps <= 0 {
		return fmt.Errorf("energy guard: rps %d: want a positive number", rps)
	}
	g.limit.Store(uint64(rps))
	return nil
}

// RPS is the current per-client limit.
func (g *Guard) RPS() int { return int(g.limit.Load()) }

// Reload re-reads TB_ENERGY_RPC_TOKEN and TB_ENERGY_RPC_RPS; on an invalid value
// nothing changes.
func (g *Guard) Reload(getenv func(string) string) error {
	o, err := GuardOptionsFromEnv(getenv)
	if err != nil {
		return err
	}
	_ = g.SetRPS(o.RPS)
	g.SetToken(o.Token)
	return nil
}

// Clients is the number of clients the limiter tracks now.
func (g *Guard) Clients() int { return g.lim.clients() }

// Rejected returns how many requests were rejected for reason.
func (g *Guard) Rejected(reason string) uint64 {
	switch reason {
	case RejectUnauthorized:
		return g.nUnauth.Load()
	case RejectRateLimited:
		return g.nRate.Load()
	}
	return 0
}

// Describe implements prometheus.Collector (energy_rpc_rejected_total and
// energy_rpc_rate_limit_rps).
func (g *Guard) Describe(ch chan<- *prometheus.Desc) {
	g.rejected.Describe(ch)
	g.limitGauge.Describe(ch)
}

// Collect implements prometheus.Collector.
func (g *Guard) Collect(ch chan<- prometheus.Metric) {
	g.rejected.Collect(ch)
	g.limitGauge.Collect(ch)
}

// Allow applies the rate limit to one request of client now; it returns the
// wait before the client would be admitted when it is not.
func (g *Guard) Allow(client netip.Addr) (bool, time.Duration) {
	return g.lim.allow(client.Unmap(), g.now().UnixNano(), g.slotLen, g.limit.Load())
}

// Middleware returns next behind the guard.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.serve(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// serve decides one request; it returns true to forward it. It never panics:
// a panic in the decision rejects the request (fail closed).
func (g *Guard) serve(w http.ResponseWriter, r *http.Request) (forward bool) {
	defer func() {
		if p := recover(); p != nil {
			forward = false
			g.log.Error("energy guard: internal error; request rejected", "panic", fmt.Sprint(p))
			rpc.WriteError(w, nil, &rpc.Error{Code: rpc.CodeInternal, Message: "energy guard internal error"}, http.StatusInternalServerError)
		}
	}()
	if r.Method != http.MethodPost {
		return true
	}
	sc, err := g.peek(r)
	if err != nil {
		rpc.WriteError(w, nil, &rpc.Error{Code: rpc.CodeParseError, Message: "reading the request body: " + err.Error()}, http.StatusBadRequest)
		return false
	}
	if sc.found && !sc.dup && !strings.HasPrefix(sc.method, GuardedPrefix) {
		return true
	}
	ok, wait := g.Allow(g.clientAddr(r))
	if !ok {
		g.rateLimited.Inc()
		g.nRate.Add(1)
		ms := max(wait.Milliseconds(), 1)
		w.Header().Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10))
		data := strconv.AppendInt([]byte(`{"retry_after_ms":`), ms, 10)
		data = append(data, '}')
		rpc.WriteError(w, sc.id, &rpc.Error{Code: CodeRateLimited, Message: "rate limited", Data: data}, http.StatusTooManyRequests)
		return false
	}
	if st := g.token.Load(); st.set && !bearerMatches(r.Header.Get("Authorization"), &st.sum) {
		g.unauthorized.Inc()
		g.nUnauth.Add(1)
		rpc.WriteError(w, sc.id, &rpc.Error{Code: CodeUnauthorized, Message: "unauthorized"}, http.StatusOK)
		return false
	}
	return true
}

// bearerMatches compares the bearer token in constant time (over SHA-256 digests,
// so not even the length leaks).
func bearerMatches(header string, want *[32]byte) bool {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(header[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// clientAddr is the limiter key: the remote IP, or the configured trusted hop of
// X-Forwarded-For (falling back to the remote IP when the header is short or
// the entry is not an IP).
func (g *Guard) clientAddr(r *http.Request) netip.Addr {
	if g.hops > 0 {
		if a, ok := forwardedHop(r.Header.Values("X-Forwarded-For"), g.hops); ok {
			return a
		}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap()
	}
	return netip.IPv6Unspecified() // unknown peers share one bucket
}

func forwardedHop(values []string, hops int) (netip.Addr, bool) {
	// Entries are appended left to right across headers; walk from the right.
	seen := 0
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			j := strings.LastIndexByte(v, ',')
			entry := strings.TrimSpace(v[j+1:])
			if j < 0 {
				v = ""
			} else {
				v = v[:j]
			}
			seen++
			if seen == hops {
				a, err := netip.ParseAddr(entry)
				if err != nil {
					if ap, err2 := netip.ParseAddrPort(entry); err2 == nil {
						return ap.Addr().Unmap(), true
					}
					return netip.Addr{}, false
				}
				return a.Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}

// peek reads as much of the body as it takes to find the method (at most
// maxScan bytes) and puts what it read back in front of the rest.
func (g *Guard) peek(r *http.Request) (scanResult, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return scanResult{}, nil
	}
	buf := make([]byte, 0, min(512, g.maxScan))
	var sc scanResult
	var rerr error
	for {
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		eof := errors.Is(err, io.EOF)
		if err != nil && !eof {
			rerr = err
			break
		}
		if len(buf) < cap(buf) && !eof {
			continue
		}
		// Scan only when the buffer is full or the body ended, doubling the
		// buffer each time: linear work in the bytes read.
		sc = scanEnvelope(buf)
		if sc.decided() || eof || len(buf) >= g.maxScan {
			break
		}
		nb := make([]byte, len(buf), min(2*cap(buf), g.maxScan))
		copy(nb, buf)
		buf = nb
	}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if rerr != nil {
		var mbe *http.MaxBytesError
		if errors.As(rerr, &mbe) {
			return scanResult{}, nil // the handler behind answers over-long bodies
		}
		return scanResult{}, rerr
	}
	return sc, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// scanResult is what a bounded scan of a request envelope found.
type scanResult struct {
	method string
	found  bool
	// dup: a second "method" key (any case) — ambiguous, treated as guarded.
	dup bool
	// complete: the top-level object was closed within the scanned bytes.
	complete bool
	// id is the raw id value when it came before the point the scan stopped.
	id json.RawMessage
	// bad: not a JSON object envelope.
	bad bool
}

// decided says whether more bytes could change the guard's decision: an energy
// method is final at once (guarded whatever follows); any other method only once
// the object is closed (a later duplicate "method" could still come).
func (s scanResult) decided() bool {
	switch {
	case s.bad || s.dup || s.complete:
		return true
	case s.found && strings.HasPrefix(s.method, GuardedPrefix):
		return true
	}
	return false
}

// scanEnvelope walks the top-level object of b (possibly a prefix of the body)
// without recursion or allocation beyond the method string, recording the
// method and id. It stops at the first energy method, and at the end of b.
func scanEnvelope(b []byte) scanResult {
	var res scanResult
	i := skipWS(b, 0)
	if i >= len(b) {
		return res
	}
	if b[i] != '{' {
		res.bad = true
		return res
	}
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return res
		}
		if b[i] == '}' {
			res.complete = true
			return res
		}
		if b[i] != '"' {
			res.bad = true
			return res
		}
		ks, ke, ok := scanString(b, i)
		if !ok {
			return res // truncated key
		}
		key, kok := unquote(b[ks:ke])
		i = skipWS(b, ke)
		if i >= len(b) {
			return res
		}
		if b[i] != ':' || !kok {
			res.bad = true
			return res
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return res
		}
		switch {
		case strings.EqualFold(key, "method"):
			if res.found {
				res.dup = true
				return res
			}
			if b[i] != '"' {
				res.bad = true // not a string: the handler behind rejects it
				return res
			}
			vs, ve, ok := scanString(b, i)
			if !ok {
				return res
			}
			m, mok := unquote(b[vs:ve])
			if !mok {
				res.bad = true
				return res
			}
			res.method, res.found = m, true
			if strings.HasPrefix(m, GuardedPrefix) {
				return res
			}
			i = ve
		default:
			end, ok := skipValue(b, i)
			if !ok {
				return res
			}
			if strings.EqualFold(key, "id") && res.id == nil {
				res.id = json.RawMessage(b[i:end])
			}
			i = end
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return res
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			res.complete = true
			return res
		default:
			res.bad = true
			return res
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the span [start, end) of the quoted string at b[i] (quotes
// included); ok is false when it is not closed within b.
func scanString(b []byte, i int) (int, int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return i, j + 1, true
		}
	}
	return 0, 0, false
}

// unquote decodes a quoted JSON string; the common escape-free case does not
// allocate beyond the string itself.
func unquote(q []byte) (string, bool) {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q[1 : len(q)-1]), true
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", false
	}
	return s, true
}

// skipValue returns the end of the JSON value at b[i]; ok is false when the
// value is not complete within b.
func skipValue(b []byte, i int) (int, bool) {
	switch b[i] {
	case '"':
		_, e, ok := scanString(b, i)
		return e, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				_, e, ok := scanString(b, j)
				if !ok {
					return 0, false
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	default:
		for j := i; j < len(b); j++ {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j, true
			}
		}
		return 0, false
	}
}
