// Package rpc is the JSON-RPC 2.0 over HTTP transport shared by tbops's typed
// clients, and the server helpers the simulated node and the energy guard use.
//
// Client rules (PROTOCOL.md section 1, DESIGN.md "Reliability rules"):
//   - params are always a JSON object ({} when empty); no batching;
//   - every attempt has a deadline (Timeout, default 5 s);
//   - only Read (an idempotent call) is retried, with jittered exponential
//     backoff; Call (a write such as a rollback or a submit) is sent once;
//   - a rate-limit answer (HTTP 429, -32001, -33010) is retried by Read after the
//     delay the server asked for (Retry-After or error.data.retry_after_ms), if that
//     fits in the caller's deadline, and is otherwise returned with the delay;
//   - the body is always parsed, whatever the HTTP status, and is capped
//     (MaxResponseBytes, default 16 MiB);
//   - every error is a *CallError naming the method and URL.
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
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults.
const (
	DefaultTimeout             = 5 * time.Second
	DefaultMaxResponseBytes    = 16 << 20
	DefaultTLSHandshakeTimeout = 10 * time.Second
)

// RetryPolicy says how Read retries: at most Attempts requests in all, sleeping a
// random duration in [0, min(Max, Base·2^n)) before retry n ("full jitter").
type RetryPolicy struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
}

// DefaultRetry is the policy of a new client.
var DefaultRetry = RetryPolicy{Attempts: 3, Base: 100 * time.Millisecond, Max: 2 * time.Second}

// Client calls one JSON-RPC endpoint. It is safe for concurrent use.
type Client struct {
	url         string
	httpClient  *http.Client
	token       string
	timeout     time.Duration
	maxResponse int64
	retry       RetryPolicy
	limiter     *rate.Limiter
	jitter      func() float64
	userAgent   string
	tlsTimeout  time.Duration
	nextID      atomic.Int64
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends "Authorization: Bearer token" on every call.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithTimeout sets the deadline of each attempt.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithRetry sets the retry policy of Read.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithMaxResponseBytes caps the size of a response body.
func WithMaxResponseBytes(n int64) Option { return func(c *Client) { c.maxResponse = n } }

// WithHTTPClient uses hc instead of a client built from the TLS handshake timeout.
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

// New returns a client for the endpoint URL.
func NewClient(endpoint string, opts ...Option) (*Client, error) {
	if endpoint == "" {
		return nil, errors.New("rpc: empty endpoint URL")
	}
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("rpc: endpoint %q: want an http:// or https:// URL", endpoint)
	}
	c := &Client{
		url:         endpoint,
		timeout:     DefaultTimeout,
		maxResponse: DefaultMaxResponseBytes,
		retry:       DefaultRetry,
		jitter:      rand.Float64,
		userAgent:   "tbops",
		tlsTimeout:  DefaultTLSHandshakeTimeout,
	}
	for _, o := range opts {
		o(c)
	}
	if c.httpClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSHandshakeTimeout = c.tlsTimeout
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		c.httpClient = &http.Client{Transport: t}
	}
	if c.retry.Attempts < 1 {
		c.retry.Attempts = 1
	}
	return c, nil
}

// URL returns the endpoint.
func (c *Client) URL() string { return c.url }

// Call sends a call that may change state (a rollback, a submit) exactly once.
// params may be nil; result may be nil to discard the result.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	return c.do(ctx, method, params, result, 1)
}

// Read sends an idempotent read, retried under the client's RetryPolicy.
func (c *Client) Read(ctx context.Context, method string, params, result any) error {
	return c.do(ctx, method, params, result, c.retry.Attempts)
}

func (c *Client) do(ctx context.Context, method string, params, result any, attempts int) error {
	fail := func(n int, status int, after time.Duration, err error) error {
		return &CallError{Method: method, URL: c.url, HTTPStatus: status, RetryAfter: after, Attempts: n, Err: err}
	}
	body, err := c.encode(method, params)
	if err != nil {
		return fail(0, 0, 0, err)
	}
	for n := 1; ; n++ {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return fail(n-1, 0, 0, fmt.Errorf("waiting for the client-side rate limit: %w", err))
			}
		}
		raw, status, after, err := c.attempt(ctx, body)
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
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fail(n, status, after, err) // the server's delay does not fit the caller's deadline
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fail(n, status, after, err)
		case <-t.C:
		}
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
func (c *Client) attempt(ctx context.Context, body []byte) (json.RawMessage, int, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			return nil, 0, 0, fmt.Errorf("%w: no answer within %s", ErrUnavailable, c.timeout)
		}
		if ctx.Err() != nil {
			return nil, 0, 0, ctx.Err()
		}
		return nil, 0, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponse+1))
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			return nil, resp.StatusCode, 0, fmt.Errorf("%w: body not complete within %s", ErrUnavailable, c.timeout)
		}
		return nil, resp.StatusCode, 0, fmt.Errorf("%w: reading the body: %v", ErrUnavailable, err)
	}
	if int64(len(raw)) > c.maxResponse {
		return nil, resp.StatusCode, 0, fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, c.maxResponse)
	}
	after := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())

	var r response
	if err := decodeEnvelope(raw, &r); err != nil {
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			return nil, resp.StatusCode, after, fmt.Errorf("%w: HTTP 429 with a non-JSON-RPC body", ErrRateLimited)
		case resp.StatusCode >= 500:
			return nil, resp.StatusCode, after, fmt.Errorf("%w: HTTP %d: %w", ErrUnavailable, resp.StatusCode, err)
		case resp.StatusCode != http.StatusOK:
			return nil, resp.StatusCode, after, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
		}
		return nil, resp.StatusCode, after, err
	}
	if r.Error != nil {
		if d := r.Error.RetryAfter(); d > after {
			after = d
		}
		return nil, resp.StatusCode, after, r.Error
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, after, fmt.Errorf("%w: HTTP %d with a result", ErrMalformed, resp.StatusCode)
	}
	return r.Result, resp.StatusCode, 0, nil
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
// meant (invalid params, not found, unauthorized), and never after the caller
// gave up.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

func (c *Client) backoff(n int, after time.Duration) time.Duration {
	ceiling := float64(c.retry.Base) * math.Pow(2, float64(n-1))
	if ceiling > float64(c.retry.Max) {
		ceiling = float64(c.retry.Max)
	}
	d := time.Duration(c.jitter() * ceiling)
	if after > d {
		return after
	}
	return d
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
