// Package rpc is the JSON-RPC 2.0 over HTTP transport shared by tbops's typed
// clients, and the server helpers the simulated node and the energy guard use.
//
// Client rules (PROTOCOL.md section 1, DESIGN.md "Reliability rules"):
//   - params are always a JSON object ({} when empty); no batching;
//   - every call has one deadline (WithTimeout, default 5 s) that covers all of
//     it: the client-side rate limit, every attempt, every backoff and every
//     Retry-After wait; each attempt gets what is left of it;
//   - only Read (an idempotent call) is retried, with jittered exponential
//     backoff; Call (a write such as a rollback or a submit) is sent once;
//   - a rate-limit answer (HTTP 429, -32001, -33010) is retried by Read after the
//     delay the server asked for (Retry-After or error.data.retry_after_ms) if
//     that delay is at most RetryPolicy.MaxWait and fits in what is left of the
//     deadline; otherwise Read returns the rate-limit error at once, with the
//     delay (RetryAfter), instead of waiting;
//   - Call never follows a redirect (the write is not sent on); Read follows at
//     most MaxRedirects, and only to the same scheme and host;
//   - the body is always parsed, whatever the HTTP status, and is capped
//     (MaxResponseBytes, default 16 MiB);
//   - every error is a *CallError naming the method, the URL (its password
//     hidden), the HTTP status and the number of attempts; a call that ran out
//     of its deadline matches context.DeadlineExceeded and ErrUnavailable.
package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/theblock/tbops"
)

// Defaults.
const (
	DefaultTimeout             = 5 * time.Second
	DefaultMaxResponseBytes    = 16 << 20
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// DefaultMaxRetryWait is the longest Read waits before one retry, unless
	// RetryPolicy.MaxWait says otherwise.
	DefaultMaxRetryWait = 10 * time.Second
	// MaxRedirects is how many redirects Read follows, all to the endpoint's own
	// scheme and host. Call follows none.
	MaxRedirects = 3
)

// RetryPolicy says how Read retries: at most Attempts requests in all, sleeping a
// random duration in [0, min(Max, Base·2^n)) before retry n ("full jitter"), or
// the delay the server asked for when that is longer.
type RetryPolicy struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
	// MaxWait bounds each wait before a retry, the server's delay included
	// (DefaultMaxRetryWait when 0). A server that asks for longer gets no retry:
	// Read returns its error at once, with the delay it asked for.
	MaxWait time.Duration
}

// DefaultRetry is the policy of a new client.
var DefaultRetry = RetryPolicy{Attempts: 3, Base: 100 * time.Millisecond, Max: 2 * time.Second, MaxWait: DefaultMaxRetryWait}

// Client calls one JSON-RPC endpoint. It is safe for concurrent use.
type Client struct {
	url         string // used for requests, password included
	shownURL    string // used in URL() and errors, password hidden
	httpClient  *http.Client
	readHTTP    *http.Client // follows same-host redirects
	callHTTP    *http.Client // follows none
	token       string
	timeout     time.Duration
	maxResponse int64
	retry       RetryPolicy
	limiter     *rate.Limiter
	jitter      func() float64
	userAgent   string
	tlsTimeout  time.Duration
	now         func() time.Time
	wall        func() time.Time // places deadlines: real time except in tests
	sleep       func(ctx context.Context, d time.Duration) error
	badRetries  bool
	nextID      atomic.Int64
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends "Authorization: Bearer token" on every call.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithTimeout sets the deadline of each call (default 5 s): one deadline that
// covers everything the call does, the client-side rate limit, every attempt,
// backoff and Retry-After wait included. Each attempt gets what is left of it.
// A caller's context deadline that comes earlier wins.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithRetry sets the retry policy of Read.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithMaxResponseBytes caps the size of a response body.
func WithMaxResponseBytes(n int64) Option { return func(c *Client) { c.maxResponse = n } }

// WithHTTPClient sends requests through hc instead of a client built from the
// TLS handshake timeout. The client works on shallow copies of hc with its own
// redirect rules (CheckRedirect); hc itself is not changed.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.httpClient = hc } }

// WithTLSHandshakeTimeout bounds the TLS handshake (TB_TLS_HANDSHAKE_TIMEOUT_MS).
func WithTLSHandshakeTimeout(d time.Duration) Option { return func(c *Client) { c.tlsTimeout = d } }

// WithRateLimit paces calls on the client side to r per second with the burst b.
func WithRateLimit(r rate.Limit, b int) Option {
	return func(c *Client) { c.limiter = rate.NewLimiter(r, b) }
}

// WithJitter replaces the random source of backoff jitter (values in [0, 1)).
func WithJitter(f func() float64) Option { return func(c *Client) { c.jitter = f } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRetries sets how many requests Read may send in all (attempts, ≥ 1;
// 1 means no retry), keeping the rest of the RetryPolicy. Every tbops client
// counts attempts this way.
func WithRetries(attempts int) Option {
	return func(c *Client) {
		c.retry.Attempts = attempts
		c.badRetries = attempts < 1
	}
}

// WithClock sets the clock that dates a Retry-After and that Client.Now reads
// (default time.Now), for callers that stamp what they read with one clock. A
// call's deadline and its waits always run on real time: a fake clock set in
// the past never makes a call time out at once.
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// withClock replaces every clock, the deadline's included, and the sleep
// between attempts (tests fake them all).
func withClock(now func() time.Time, sleep func(context.Context, time.Duration) error) Option {
	return func(c *Client) { c.now, c.wall, c.sleep = now, now, sleep }
}

// NewClient returns a client for the endpoint URL.
func NewClient(endpoint string, opts ...Option) (*Client, error) {
	if endpoint == "" {
		return nil, errors.New("rpc: empty endpoint URL")
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rpc: endpoint %q: want an http:// or https:// URL with a host", tbops.RedactURL(endpoint))
	}
	c := &Client{
		url:         endpoint,
		shownURL:    tbops.RedactURL(endpoint),
		timeout:     DefaultTimeout,
		maxResponse: DefaultMaxResponseBytes,
		retry:       DefaultRetry,
		jitter:      rand.Float64,
		userAgent:   "tbops",
		tlsTimeout:  DefaultTLSHandshakeTimeout,
		now:         time.Now,
		wall:        time.Now,
		sleep:       sleep,
	}
	for _, o := range opts {
		o(c)
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("rpc: WithTimeout(%s): want a positive duration", c.timeout)
	}
	if c.badRetries {
		return nil, fmt.Errorf("rpc: WithRetries(%d): want at least 1 attempt", c.retry.Attempts)
	}
	if c.httpClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSHandshakeTimeout = c.tlsTimeout
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		c.httpClient = &http.Client{Transport: t}
	}
	c.readHTTP = withRedirects(c.httpClient, sameOrigin)
	c.callHTTP = withRedirects(c.httpClient, func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse })
	if c.retry.Attempts < 1 {
		c.retry.Attempts = 1
	}
	if c.retry.MaxWait <= 0 {
		c.retry.MaxWait = DefaultMaxRetryWait
	}
	return c, nil
}

// URL returns the endpoint, its password (if any) hidden.
func (c *Client) URL() string { return c.shownURL }

// Now is the client's clock (WithClock).
func (c *Client) Now() time.Time { return c.now() }

// Call sends a call that may change state (a rollback, a submit) exactly once,
// and never on to where a redirect points. params may be nil; result may be nil
// to discard the result.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	return c.do(ctx, true, method, params, result)
}

// Read sends an idempotent read, retried under the client's RetryPolicy.
func (c *Client) Read(ctx context.Context, method string, params, result any) error {
	return c.do(ctx, false, method, params, result)
}

func (c *Client) do(ctx context.Context, write bool, method string, params, result any) error {
	fail := func(n int, status int, after time.Duration, err error) error {
		return &CallError{Method: method, URL: c.shownURL, HTTPStatus: status, RetryAfter: after, Attempts: n, Err: err}
	}
	body, err := c.encode(method, params)
	if err != nil {
		return fail(0, 0, 0, err)
	}
	attempts := c.retry.Attempts
	if write {
		attempts = 1
	}
	timedOut := fmt.Errorf("%w: no answer within %s: %w", ErrUnavailable, c.timeout, context.DeadlineExceeded)
	ctx, cancel := context.WithDeadlineCause(ctx, c.wall().Add(c.timeout), timedOut)
	defer cancel()
	for n := 1; ; n++ {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return fail(n-1, 0, 0, fmt.Errorf("waiting for the client-side rate limit: %w", err))
			}
		}
		raw, status, after, err := c.attempt(ctx, write, body)
		if err == nil {
			if result == nil {
				return nil
			}
			if err := json.Unmarshal(raw, result); err != nil {
				return fail(n, status, 0, fmt.Errorf("%w: decoding the result: %v", ErrMalformed, err))
			}
			return nil
		}
		if n >= attempts || !retryable(ctx, err) {
			return fail(n, status, after, err)
		}
		wait := c.backoff(n, after)
		if !c.fits(ctx, wait) {
			return fail(n, status, after, err) // return the answer now rather than wait past a bound
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return fail(n, status, after, fmt.Errorf("%w; the last attempt: %w", serr, err))
		}
	}
}

// fits says whether Read may wait d before retrying: at most MaxWait, and
// leaving some of the call's deadline for the retry itself.
func (c *Client) fits(ctx context.Context, d time.Duration) bool {
	dl, _ := ctx.Deadline() // do always sets one
	return d <= c.retry.MaxWait && d < dl.Sub(c.wall())
}

// sleep waits d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

func (c *Client) encode(method string, params any) ([]byte, error) {
	if method == "" {
		return nil, errors.New("empty method name")
	}
	p := json.RawMessage("{}")
	if params != nil {
		raw, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("encoding params: %w", err)
		}
		if len(raw) == 0 || raw[0] != '{' {
			if string(raw) != "null" {
				return nil, fmt.Errorf("params must be a JSON object, got %.40s", raw)
			}
		} else {
			p = raw
		}
	}
	return json.Marshal(request{JSONRPC: "2.0", ID: c.nextID.Add(1), Method: method, Params: p})
}

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      int64           `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
}

// attempt sends one request and returns the raw result, the HTTP status and the
// delay the server asked for.
func (c *Client) attempt(ctx context.Context, write bool, body []byte) (json.RawMessage, int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, 0, err // NewClient checked the URL: never happens
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := c.readHTTP
	if write {
		hc = c.callHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, statusOf(resp), 0, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if loc, isRedirect := redirectTarget(resp); isRedirect {
		// Every redirect of a Call gets here, and those of a Read that net/http
		// does not follow (300, 305).
		if write {
			return nil, resp.StatusCode, 0, fmt.Errorf("%w: Location %s; the write was not sent on", ErrRedirect, loc)
		}
		return nil, resp.StatusCode, 0, fmt.Errorf("%w: Location %s", ErrRedirect, loc)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponse+1))
	if err != nil {
		if cause := interrupted(ctx); cause != nil {
			return nil, resp.StatusCode, 0, fmt.Errorf("reading the body: %w", cause)
		}
		return nil, resp.StatusCode, 0, fmt.Errorf("%w: reading the body: %v", ErrUnavailable, err)
	}
	if int64(len(raw)) > c.maxResponse {
		return nil, resp.StatusCode, 0, fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, c.maxResponse)
	}
	after := parseRetryAfter(resp.Header.Get("Retry-After"), c.now())

	var r response
	if err := decodeEnvelope(raw, &r); err != nil {
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			return nil, resp.StatusCode, after, fmt.Errorf("%w: the body is not JSON-RPC", ErrRateLimited)
		case resp.StatusCode >= 500:
			return nil, resp.StatusCode, after, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, resp.StatusCode, after, err
	}
	if r.Error != nil {
		if d := r.Error.RetryAfter(); d > after {
			after = d
		}
		if gatewayDown(resp.StatusCode) {
			// A proxy in front of the node (the energy guard, a load balancer)
			// answers 502/503/504 with a JSON-RPC body when the node is down or
			// slow: that is the node being unavailable, which a read retries.
			return nil, resp.StatusCode, after, fmt.Errorf("%w: %w", ErrUnavailable, r.Error)
		}
		return nil, resp.StatusCode, after, r.Error
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, after, fmt.Errorf("%w: a result with a non-200 status", ErrMalformed)
	}
	return r.Result, resp.StatusCode, 0, nil
}

// gatewayDown says whether an HTTP status is a gateway's "the server behind me
// is down or slow".
func gatewayDown(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// transportError says why no response came: the call's deadline or the
// caller's cancellation, a redirect that was refused, or the network.
func (c *Client) transportError(ctx context.Context, err error) error {
	if cause := interrupted(ctx); cause != nil {
		return cause
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop its copy of the URL: the CallError names it
	}
	if errors.Is(err, ErrRedirect) {
		return err
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, tbops.RedactText(err.Error()))
}

// interrupted returns why ctx ended (the call's deadline, or the caller's
// cancellation or deadline), or nil while it runs.
func interrupted(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return context.Cause(ctx)
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// withRedirects returns a shallow copy of hc that follows redirects by check,
// leaving hc (maybe the caller's) untouched.
func withRedirects(hc *http.Client, check func(*http.Request, []*http.Request) error) *http.Client {
	cp := *hc
	cp.CheckRedirect = check
	return &cp
}

// sameOrigin lets a read follow at most MaxRedirects redirects, each to the
// endpoint's own scheme and host and keeping the POST (307 and 308; 301, 302 and
// 303 would turn it into a GET without the request).
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	loc := tbops.RedactURL(req.URL.String())
	switch {
	case len(via) > MaxRedirects:
		return fmt.Errorf("%w: more than %d redirects, the last to %s", ErrRedirect, MaxRedirects, loc)
	case req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host):
		return fmt.Errorf("%w: Location %s is not on %s://%s", ErrRedirect, loc, first.Scheme, first.Host)
	case req.Method != via[0].Method:
		return fmt.Errorf("%w: HTTP %d to %s would resend the %s as a %s", ErrRedirect, req.Response.StatusCode, loc, via[0].Method, req.Method)
	}
	return nil
}

// redirectTarget returns the Location of a redirect answer, resolved and with
// its password hidden.
func redirectTarget(resp *http.Response) (string, bool) {
	if resp.StatusCode < 300 || resp.StatusCode > 399 || resp.Header.Get("Location") == "" {
		return "", false
	}
	loc, err := resp.Location()
	if err != nil {
		return strconv.Quote(tbops.RedactText(resp.Header.Get("Location"))), true
	}
	return tbops.RedactURL(loc.String()), true
}

// decodeEnvelope parses a response envelope and says plainly what is wrong with a
// body that is not one.
func decodeEnvelope(raw []byte, r *response) error {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0:
		return fmt.Errorf("%w: empty body", ErrMalformed)
	case trimmed[0] == '<':
		return fmt.Errorf("%w: got HTML, not JSON (a proxy or web server answered?): %s", ErrMalformed, snippet(trimmed))
	case trimmed[0] != '{':
		return fmt.Errorf("%w: not a JSON object: %s", ErrMalformed, snippet(trimmed))
	}
	if err := json.Unmarshal(trimmed, r); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: truncated or invalid JSON at byte %d", ErrMalformed, offset(err))
		}
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.JSONRPC != "2.0" {
		return fmt.Errorf("%w: jsonrpc version %q, want \"2.0\"", ErrMalformed, r.JSONRPC)
	}
	if r.Error == nil && r.Result == nil {
		return fmt.Errorf("%w: neither result nor error", ErrMalformed)
	}
	return nil
}

func offset(err error) int64 {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return syn.Offset
	}
	return -1
}

func snippet(b []byte) string {
	const max = 80
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}

// retryable says whether a failed attempt of an idempotent read may be repeated:
// transport failures, 5xx answers and rate limits, but not answers the node
// meant (invalid params, not found, unauthorized), not refused redirects, and
// never after the call's deadline or the caller's cancellation.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable)
}

// backoff is the wait before retry n: the full-jitter backoff, or the server's
// delay when that is longer.
func (c *Client) backoff(n int, after time.Duration) time.Duration {
	ceiling := float64(c.retry.Base) * math.Pow(2, float64(n-1))
	if ceiling > float64(c.retry.Max) {
		ceiling = float64(c.retry.Max)
	}
	return max(after, time.Duration(c.jitter()*ceiling))
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date. A
// negative or unreadable value is 0; a huge one saturates at the longest
// Duration instead of wrapping.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		return saturate(float64(secs), time.Second) // ParseInt saturates at ±MaxInt64 on ErrRange
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now) // Sub saturates too
	}
	return 0
}

// saturate converts n units to a Duration: 0 when n is not positive, the longest
// Duration when n units would not fit in one.
func saturate(n float64, unit time.Duration) time.Duration {
	switch {
	case !(n > 0): // also NaN
		return 0
	case n > float64(math.MaxInt64/int64(unit)): // integer division keeps n·unit clear of float rounding at 2^63
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(n * float64(unit))
}
