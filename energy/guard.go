package energy

import (
	"bytes"
	"context"
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
	"unicode/utf8"

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
	// DefaultMaxBody caps a request body, as the node caps it (1 MiB).
	DefaultMaxBody = rpc.DefaultMaxRequestBytes
	// DefaultMaxBuffered caps the request bytes the guard holds at once, over
	// every request it is reading or forwarding (64 MiB).
	DefaultMaxBuffered = 64 << 20
	// GuardedPrefix is the method prefix the guard applies to.
	GuardedPrefix = "energy."
)

// Reject reasons, the reason label of energy_rpc_rejected_total.
const (
	RejectUnauthorized = "unauthorized"
	RejectRateLimited  = "rate_limited"
)

// GuardOptions configures a Guard. Zero values take the documented defaults;
// negative values are refused by NewGuard.
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
	// MaxBody caps the request body the guard reads and decides on
	// (DefaultMaxBody when 0); a longer body is refused with -32600.
	MaxBody int64
	// MaxBuffered caps the request bytes held at once over all requests
	// (DefaultMaxBuffered when 0), so memory stays bounded however many
	// connections send large bodies: past it a request is answered -32001
	// (HTTP 503, Retry-After 1) without being read further.
	MaxBuffered int64
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives the auth-off warning (slog.Default when nil).
	Logger *slog.Logger
}

// OptionError is an invalid guard or guard-server option: which field, the
// value given, and why it was refused.
type OptionError struct {
	Option string // the field, e.g. "RPS" or "BodyTimeout"
	Value  string
	Reason string
}

// Error names the option, its value and the reason on one line.
func (e *OptionError) Error() string {
	return "energy guard: " + e.Option + " = " + e.Value + ": " + e.Reason
}

// validate refuses negative values (zero means the default).
func (o GuardOptions) validate() error {
	var errs []error
	refuseNegative(&errs, "RPS", o.RPS)
	refuseNegative(&errs, "Window", o.Window)
	refuseNegative(&errs, "TrustedProxyHops", o.TrustedProxyHops)
	refuseNegative(&errs, "MaxClients", o.MaxClients)
	refuseNegative(&errs, "MaxBody", o.MaxBody)
	refuseNegative(&errs, "MaxBuffered", o.MaxBuffered)
	return errors.Join(errs...)
}

// refuseNegative adds an *OptionError to errs when v is below zero.
func refuseNegative[T int | int64 | time.Duration](errs *[]error, name string, v T) {
	if v < 0 {
		*errs = append(*errs, &OptionError{Option: name, Value: fmt.Sprint(v), Reason: "must not be negative (0 takes the default)"})
	}
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
// The guard decides on exactly what the node will execute: it reads the whole
// body (at most MaxBody bytes), walks the whole top-level object (parameters
// are skipped as raw JSON, never decoded), and forwards exactly the bytes it
// checked. A body is refused (-32600 or -32700, never forwarded) unless it is
// one JSON object with exactly one "method" key — keys match in any letter case,
// as encoding/json matches them — whose value is a string of valid UTF-8: so
// batches, non-objects, duplicate or case-variant method keys, invalid UTF-8
// and invalid JSON never reach the node. Requests without a body (GET /metrics)
// pass untouched. A request for a protocol upgrade (WebSocket, h2c) goes on
// without its Upgrade header: calls over a switched protocol would be out of
// the guard's sight.
//
// Order: the rate limit is checked first, then the token, so token guessing is
// rate limited too (every energy request, authorised or not, counts against its
// client's limit). The whole body is validated as JSON only after both.
type Guard struct {
	token   atomic.Pointer[tokenState]
	limit   atomic.Uint64
	slotLen int64
	hops    int
	maxBody int64
	// maxBuffered caps buffered, the request bytes held now over all requests.
	maxBuffered int64
	buffered    atomic.Int64
	now         func() time.Time
	log         *slog.Logger
	lim         *limiter

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

// NewGuard returns a guard; it logs a warning when auth is off. Negative
// options are an error (*OptionError, joined when several are wrong).
func NewGuard(o GuardOptions) (*Guard, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.RPS == 0 {
		o.RPS = DefaultRPS
	}
	if o.Window == 0 {
		o.Window = time.Second
	}
	if o.MaxClients == 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxBuffered == 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g := &Guard{slotLen: max(int64(o.Window)/windowSlots, 1), hops: o.TrustedProxyHops, maxBody: o.MaxBody, maxBuffered: o.MaxBuffered,
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
	return g, nil
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

// Middleware returns next behind the guard. What next receives is a shallow
// copy of the request whose body is exactly the bytes the guard decided on.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fwd, held := g.serve(w, r)
		defer g.buffered.Add(-held) // the body is held until next is done with it
		if fwd != nil {
			next.ServeHTTP(w, fwd)
		}
	})
}

// serve decides one request: it returns the request to forward, or nil after
// answering it, and the body bytes it holds against MaxBuffered (the caller
// releases them). It never panics: a panic in the decision rejects the request
// (fail closed).
func (g *Guard) serve(w http.ResponseWriter, r *http.Request) (fwd *http.Request, held int64) {
	defer func() {
		if p := recover(); p != nil {
			fwd = nil
			g.log.Error("energy guard: internal error; request rejected", "panic", fmt.Sprint(p))
			rpc.WriteError(w, nil, &rpc.Error{Code: rpc.CodeInternal, Message: "energy guard internal error"}, http.StatusInternalServerError)
		}
	}()
	if r.Header.Get("Upgrade") != "" {
		// Calls over a switched protocol (WebSocket, h2c) would be out of the
		// guard's sight: the request goes on as plain HTTP.
		r = r.Clone(r.Context())
		r.Header.Del("Upgrade")
	}
	if r.Body == nil || r.Body == http.NoBody {
		return r, 0 // nothing for the node to execute (GET /metrics and the like)
	}
	br := &budgetReader{r: http.MaxBytesReader(w, r.Body, g.maxBody), g: g}
	body, err := io.ReadAll(br)
	held = br.held
	env := scanEnvelope(body)
	if err != nil {
		g.refuseBody(w, env.id, err)
		return nil, held
	}
	if env.err != nil {
		rpc.WriteError(w, env.id, env.err, http.StatusOK)
		return nil, held
	}
	if strings.HasPrefix(env.method, GuardedPrefix) && !g.admit(w, r, env.id) {
		return nil, held
	}
	// Validated only now, after the limit and the token: the node gets a body it
	// parses exactly as the scan did.
	if !json.Valid(body) {
		rpc.WriteError(w, env.id, &rpc.Error{Code: rpc.CodeParseError, Message: "parse error: the request is not valid JSON"}, http.StatusOK)
		return nil, held
	}
	fwd = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, env.id))
	fwd.Body, fwd.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	fwd.TransferEncoding, fwd.Trailer = nil, nil
	return fwd, held
}

// requestIDKey carries the forwarded request's id (nil when not a valid id),
// so an upstream failure can be answered with it.
type requestIDKey struct{}

// errOverBudget is a body refused because the guard holds MaxBuffered bytes.
var errOverBudget = errors.New("the guard holds its maximum of request bytes")

// budgetReader reserves every byte it reads against the guard's MaxBuffered;
// held is what it reserved, released by the caller when the body is dropped.
type budgetReader struct {
	r    io.Reader
	g    *Guard
	held int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.held += int64(n)
		if b.g.buffered.Add(int64(n)) > b.g.maxBuffered {
			return n, errOverBudget
		}
	}
	return n, err
}

// refuseBody answers a body that could not be read whole.
func (g *Guard) refuseBody(w http.ResponseWriter, id json.RawMessage, err error) {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.Is(err, errOverBudget):
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
		rpc.WriteError(w, id, &rpc.Error{Code: rpc.CodeRateLimited, Message: "the energy guard is busy (too many request bytes in flight); retry shortly",
			Data: json.RawMessage(`{"retry_after_ms":1000}`)}, http.StatusServiceUnavailable)
	case errors.As(err, &mbe):
		rpc.WriteError(w, id, &rpc.Error{Code: rpc.CodeInvalidRequest,
			Message: fmt.Sprintf("request body over %d bytes (the guard's limit)", mbe.Limit)}, http.StatusOK)
	case errors.As(err, &ne) && ne.Timeout():
		w.Header().Set("Connection", "close")
		rpc.WriteError(w, id, &rpc.Error{Code: rpc.CodeInvalidRequest, Message: "request body not received in time"}, http.StatusRequestTimeout)
	default:
		w.Header().Set("Connection", "close")
		rpc.WriteError(w, id, &rpc.Error{Code: rpc.CodeInvalidRequest, Message: "reading the request body: " + err.Error()}, http.StatusBadRequest)
	}
}

// admit applies the rate limit, then the token, to an energy request; it
// answers and returns false when the request is rejected.
func (g *Guard) admit(w http.ResponseWriter, r *http.Request, id json.RawMessage) bool {
	if ok, wait := g.Allow(g.clientAddr(r)); !ok {
		g.rateLimited.Inc()
		g.nRate.Add(1)
		ms := max(wait.Milliseconds(), 1)
		w.Header().Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10))
		data := strconv.AppendInt([]byte(`{"retry_after_ms":`), ms, 10)
		data = append(data, '}')
		rpc.WriteError(w, id, &rpc.Error{Code: CodeRateLimited, Message: "rate limited", Data: data}, http.StatusTooManyRequests)
		return false
	}
	if st := g.token.Load(); st.set && !bearerMatches(r.Header.Get("Authorization"), &st.sum) {
		g.unauthorized.Inc()
		g.nUnauth.Add(1)
		rpc.WriteError(w, id, &rpc.Error{Code: CodeUnauthorized, Message: "unauthorized"}, http.StatusOK)
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

// envelope is what scanEnvelope found in a request body.
type envelope struct {
	// method is the one "method" value, when err is nil.
	method string
	// id is the last "id" value (the one encoding/json keeps) when it is a
	// valid JSON-RPC id — a string, number or null — else nil (answered as null).
	id json.RawMessage
	// err says why the guard refuses the body; nil when the body is one object
	// with exactly one string method.
	err *rpc.Error
}

// scanEnvelope walks the whole top-level object of b without recursion,
// skipping every value as raw JSON, and records the method and the id. Keys
// match case-insensitively with Unicode folding, as encoding/json matches them
// to struct fields (the last one wins there; here a second one is refused).
// On valid JSON the walk is exact; invalid JSON the walk accepts is refused
// later by json.Valid.
func scanEnvelope(b []byte) envelope {
	var env envelope
	parseErr := func(what string) envelope {
		env.err = &rpc.Error{Code: rpc.CodeParseError, Message: "parse error: " + what}
		return env
	}
	i := skipWS(b, 0)
	switch {
	case i == len(b):
		env.err = &rpc.Error{Code: rpc.CodeInvalidRequest, Message: "empty request body"}
		return env
	case b[i] == '[':
		env.err = &rpc.Error{Code: rpc.CodeInvalidRequest, Message: "batch requests are not supported"}
		return env
	case b[i] != '{':
		env.err = &rpc.Error{Code: rpc.CodeInvalidRequest, Message: "the request must be a JSON object"}
		return env
	}
	methods := 0
	var methodErr *rpc.Error
	i = skipWS(b, i+1)
	for i < len(b) && b[i] != '}' {
		if b[i] != '"' {
			return parseErr("want a quoted key at byte " + strconv.Itoa(i))
		}
		ke, ok := stringEnd(b, i)
		if !ok {
			return parseErr("unterminated key")
		}
		key := b[i:ke]
		if !utf8.Valid(key) {
			env.err = &rpc.Error{Code: rpc.CodeInvalidRequest, Message: "a key is not valid UTF-8"}
			return env
		}
		field, ok := envelopeField(key)
		if !ok {
			return parseErr("invalid key " + string(key))
		}
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return parseErr("want ':' after key " + string(key))
		}
		i = skipWS(b, i+1)
		ve, ok := skipValue(b, i)
		if !ok {
			return parseErr("truncated value of " + string(key))
		}
		switch field {
		case "method":
			methods++
			env.method, methodErr = methodValue(b[i:ve])
		case "id":
			env.id = validID(b[i:ve])
		}
		i = skipWS(b, ve)
		if i >= len(b) || b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return parseErr("want ',' or '}' at byte " + strconv.Itoa(i))
		}
		if i = skipWS(b, i+1); i < len(b) && b[i] == '}' {
			return parseErr("trailing comma")
		}
	}
	if i >= len(b) {
		return parseErr("the request object is not closed")
	}
	if skipWS(b, i+1) != len(b) {
		return parseErr("data after the request object")
	}
	switch {
	case methods == 0:
		env.err = &rpc.Error{Code: rpc.CodeInvalidRequest, Message: `field "method" is missing`}
	case methods > 1:
		env.err = &rpc.Error{Code: rpc.CodeInvalidRequest,
			Message: `field "method" is given more than once (keys match in any letter case)`}
	default:
		env.err = methodErr
	}
	return env
}

// envelopeField says which field the quoted key q names as encoding/json
// matches keys to fields (case-insensitively, with Unicode folding, after
// unescaping): "method", "id", or "" for any other; ok is false when q is not a
// valid string. Keys without escapes are matched without allocating.
func envelopeField(q []byte) (field string, ok bool) {
	name := q[1 : len(q)-1]
	if bytes.IndexByte(q, '\\') >= 0 {
		s, ok := unquote(q)
		if !ok {
			return "", false
		}
		name = []byte(s)
	}
	for _, f := range [...]string{"method", "id"} {
		if bytes.EqualFold(name, []byte(f)) {
			return f, true
		}
	}
	return "", true
}

// methodValue decodes the raw method value: a string of valid UTF-8 (the node
// would see invalid bytes as U+FFFD, so they are refused rather than guessed).
func methodValue(raw []byte) (string, *rpc.Error) {
	if raw[0] != '"' {
		return "", &rpc.Error{Code: rpc.CodeInvalidRequest, Message: `field "method" must be a string`}
	}
	if !utf8.Valid(raw) {
		return "", &rpc.Error{Code: rpc.CodeInvalidRequest, Message: `field "method" is not valid UTF-8`}
	}
	m, ok := unquote(raw)
	if !ok {
		return "", &rpc.Error{Code: rpc.CodeParseError, Message: `parse error: invalid string in field "method"`}
	}
	return m, nil
}

// validID returns raw when it is a JSON-RPC id (a string, number or null) that
// is valid JSON, else nil.
func validID(raw []byte) json.RawMessage {
	switch c := raw[0]; {
	case c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 'n':
		if json.Valid(raw) && utf8.Valid(raw) {
			return json.RawMessage(raw)
		}
	}
	return nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the end of the quoted string at b[i] (just past its closing
// quote); ok is false when it is not closed within b. A quote closes the string
// when an even number of backslashes precede it.
func stringEnd(b []byte, i int) (int, bool) {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		j += k
		n := 0
		for n < j-i-1 && b[j-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return j + 1, true
		}
		j++
	}
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
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, ok := stringEnd(b, j)
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
				return j, j > i
			}
		}
		return 0, false
	}
}
