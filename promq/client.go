package promq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
)

// Client defaults.
const (
	// DefaultURL is the Prometheus the runbook's prometheus_query helper uses
	// when PROMETHEUS_URL is not set.
	DefaultURL = "http://localhost:9090"
	// DefaultTimeout bounds each attempt of each call.
	DefaultTimeout = 10 * time.Second
	// DefaultRetries is how many times a failed read is retried.
	DefaultRetries = 2
	// DefaultMaxResponseBytes caps one API response.
	DefaultMaxResponseBytes = 64 << 20
	// maxGetURL is the encoded length above which a query is POSTed as a form.
	maxGetURL = 4096
)

// URLFromEnv is the runbook's default: PROMETHEUS_URL when set, else DefaultURL.
// getenv is os.Getenv or a test's stand-in.
func URLFromEnv(getenv func(string) string) string {
	if getenv != nil {
		if v := strings.TrimSpace(getenv("PROMETHEUS_URL")); v != "" {
			return v
		}
	}
	return DefaultURL
}

// PromOption configures NewClient and NewPrometheus.
type PromOption func(*Client)

// WithHeader adds a header to every request: a tenant (X-Scope-OrgID for Mimir,
// Cortex, Loki; THANOS-TENANT), Authorization, … .
func WithHeader(name, value string) PromOption {
	return func(c *Client) { c.header.Add(name, value) }
}

// WithBearerToken sets Authorization: Bearer token.
func WithBearerToken(token string) PromOption {
	return func(c *Client) {
		if token != "" {
			c.header.Set("Authorization", "Bearer "+token)
		}
	}
}

// WithParam adds a query parameter to every request (e.g. VictoriaMetrics'
// extra_label, Thanos' dedup or partial_response).
func WithParam(name, value string) PromOption {
	return func(c *Client) { c.params.Add(name, value) }
}

// WithHTTPClient sets the HTTP client (its Timeout should be 0 or generous: each
// attempt has its own deadline).
func WithHTTPClient(hc *http.Client) PromOption {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout bounds each attempt (default DefaultTimeout). For queries the
// deadline is also sent to the server as the timeout parameter.
func WithTimeout(d time.Duration) PromOption {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithRetries sets how many times a read that failed with ErrUnavailable,
// ErrRateLimited or a transport error is retried (default DefaultRetries).
func WithRetries(n int) PromOption {
	return func(c *Client) { c.retries = max(n, 0) }
}

// WithBackoff sets the backoff between retries: full jitter over base·2^attempt,
// capped at max (defaults 200ms and 3s). A server's Retry-After wins when longer.
func WithBackoff(base, maxDelay time.Duration) PromOption {
	return func(c *Client) {
		if base > 0 {
			c.backoff = base
		}
		if maxDelay > 0 {
			c.maxBackoff = maxDelay
		}
	}
}

// WithMaxResponseBytes caps one response (default DefaultMaxResponseBytes).
func WithMaxResponseBytes(n int64) PromOption {
	return func(c *Client) {
		if n > 0 {
			c.maxBytes = n
		}
	}
}

// WithClock injects the clock. With it, the Prometheus source evaluates its
// queries at the clock's time instead of the server's now.
func WithClock(now func() time.Time) PromOption {
	return func(c *Client) {
		if now != nil {
			c.now, c.clockSet = now, true
		}
	}
}

// Client is a read-only client of the Prometheus HTTP API (/api/v1/…) that also
// works with Thanos, Mimir, Cortex and VictoriaMetrics: a base URL with a path
// prefix, extra headers and extra query parameters. Reads are retried with
// jittered backoff; every attempt has a deadline; responses are capped. It is
// safe for concurrent use.
type Client struct {
	base       *url.URL
	hc         *http.Client
	header     http.Header
	params     url.Values
	timeout    time.Duration
	retries    int
	backoff    time.Duration
	maxBackoff time.Duration
	maxBytes   int64
	now        func() time.Time
	clockSet   bool
}

// NewClient returns a client for the API under baseURL (e.g.
// "http://prometheus:9090", "https://mimir.example/prometheus"). An empty
// baseURL means URLFromEnv(os.Getenv). User information in the URL becomes
// basic authentication.
func NewClient(baseURL string, opts ...PromOption) (*Client, error) {
	if strings.TrimSpace(baseURL) == "" {
		baseURL = URLFromEnv(os.Getenv)
	}
	shown := tbops.RedactURL(baseURL)
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %w", shown, unwrapURLError(err)) // url.Error quotes the URL itself
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("prometheus URL %q: want http:// or https://", shown)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: no host", shown)
	}
	c := &Client{hc: &http.Client{}, header: http.Header{}, params: url.Values{}, timeout: DefaultTimeout,
		retries: DefaultRetries, backoff: 200 * time.Millisecond, maxBackoff: 3 * time.Second,
		maxBytes: DefaultMaxResponseBytes, now: time.Now}
	if u.User != nil {
		pw, _ := u.User.Password()
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(u.User.Username(), pw)
		c.header.Set("Authorization", req.Header.Get("Authorization"))
		u.User = nil
	}
	// Parameters in the base URL apply to every call.
	for k, vs := range u.Query() {
		for _, v := range vs {
			c.params.Add(k, v)
		}
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c.base = u
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// URL is the base URL (without credentials).
func (c *Client) URL() string { return c.base.String() }

// endpoint is the full URL of an API path.
func (c *Client) endpoint(path string) string {
	u := *c.base
	u.Path = c.base.Path + path
	return u.String()
}

// Query runs an instant query (/api/v1/query). A zero at lets the server use
// its current time.
func (c *Client) Query(ctx context.Context, expr string, at time.Time) (*QueryResult, error) {
	p := url.Values{"query": {expr}}
	if !at.IsZero() {
		p.Set("time", formatTime(at))
	}
	return c.query(ctx, "/api/v1/query", expr, p)
}

// QueryRange runs a range query (/api/v1/query_range) and returns a matrix.
func (c *Client) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) (*QueryResult, error) {
	if step <= 0 {
		return nil, &APIError{URL: c.endpoint("/api/v1/query_range"), Query: expr, Kind: ErrBadQuery, Message: "step must be positive"}
	}
	p := url.Values{"query": {expr}, "start": {formatTime(start)}, "end": {formatTime(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	return c.query(ctx, "/api/v1/query_range", expr, p)
}

func (c *Client) query(ctx context.Context, path, expr string, p url.Values) (*QueryResult, error) {
	p.Set("timeout", model.Duration(c.timeout).String())
	var res *QueryResult
	err := c.read(ctx, path, expr, p, func(body []byte) error {
		r, err := DecodeQueryResponse(body)
		res = r
		return err
	})
	return res, err
}

// Series returns the label sets of the series matching any of the selectors
// (/api/v1/series). Zero times leave the range to the server.
func (c *Client) Series(ctx context.Context, matches []string, start, end time.Time) ([]model.LabelSet, Annotations, error) {
	p := url.Values{"match[]": matches}
	setRange(p, start, end)
	var out []model.LabelSet
	var ann Annotations
	err := c.readData(ctx, "/api/v1/series", strings.Join(matches, " "), p, &ann, func(data []byte) error {
		return json.Unmarshal(data, &out)
	})
	return out, ann, err
}

// LabelValues returns the values of a label (/api/v1/label/<name>/values),
// optionally only on series matching the selectors.
func (c *Client) LabelValues(ctx context.Context, label string, matches []string, start, end time.Time) (model.LabelValues, Annotations, error) {
	p := url.Values{}
	if len(matches) > 0 {
		p["match[]"] = matches
	}
	setRange(p, start, end)
	var out model.LabelValues
	var ann Annotations
	err := c.readData(ctx, "/api/v1/label/"+url.PathEscape(label)+"/values", label, p, &ann, func(data []byte) error {
		return json.Unmarshal(data, &out)
	})
	return out, ann, err
}

// RuleGroup is one group of /api/v1/rules.
type RuleGroup struct {
	Name     string       `json:"name"`
	File     string       `json:"file"`
	Interval float64      `json:"interval"`
	Rules    []ServerRule `json:"rules"`
}

// ServerRule is one alerting or recording rule as the server reports it
// (/api/v1/rules); Rule is a rule tbops defines.
type ServerRule struct {
	// Type is "alerting" or "recording".
	Type        string            `json:"type"`
	Name        string            `json:"name"`
	Query       string            `json:"query"`
	Duration    float64           `json:"duration,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Alerts      []Alert           `json:"alerts,omitempty"`
	// Health is "ok", "err" or "unknown"; LastError says why when "err".
	Health         string    `json:"health"`
	LastError      string    `json:"lastError,omitempty"`
	State          string    `json:"state,omitempty"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

// Alert is one active alert.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// State is "pending" or "firing".
	State    string    `json:"state"`
	ActiveAt time.Time `json:"activeAt"`
	Value    string    `json:"value"`
}

// Rules returns the loaded rule groups (/api/v1/rules).
func (c *Client) Rules(ctx context.Context) ([]RuleGroup, Annotations, error) {
	var out struct {
		Groups []RuleGroup `json:"groups"`
	}
	var ann Annotations
	err := c.readData(ctx, "/api/v1/rules", "", url.Values{}, &ann, func(data []byte) error {
		return json.Unmarshal(data, &out)
	})
	return out.Groups, ann, err
}

// Alerts returns the active alerts (/api/v1/alerts).
func (c *Client) Alerts(ctx context.Context) ([]Alert, Annotations, error) {
	var out struct {
		Alerts []Alert `json:"alerts"`
	}
	var ann Annotations
	err := c.readData(ctx, "/api/v1/alerts", "", url.Values{}, &ann, func(data []byte) error {
		return json.Unmarshal(data, &out)
	})
	return out.Alerts, ann, err
}

// readData reads an endpoint whose data is decoded with encoding/json.
func (c *Client) readData(ctx context.Context, path, what string, p url.Values, ann *Annotations, decode func([]byte) error) error {
	return c.read(ctx, path, what, p, func(body []byte) error {
		env, err := decodeEnvelope(body)
		if err != nil {
			return err
		}
		if env.failed {
			return &APIError{Type: env.errType, Message: env.errMsg, Kind: kindOf(env.errType, 0), Warnings: env.Warnings}
		}
		*ann = env.Annotations
		if err := decode([]byte(env.data.Raw)); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return nil
	})
}

func setRange(p url.Values, start, end time.Time) {
	if !start.IsZero() {
		p.Set("start", formatTime(start))
	}
	if !end.IsZero() {
		p.Set("end", formatTime(end))
	}
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// read calls one API path with retries and hands the body to decode. Every
// error is an *APIError naming the endpoint and what was asked.
func (c *Client) read(ctx context.Context, path, what string, p url.Values, decode func([]byte) error) error {
	endpoint := c.endpoint(path)
	for k, vs := range c.params {
		for _, v := range vs {
			p.Add(k, v)
		}
	}
	form := p.Encode()
	var last *APIError
	for attempt := 0; ; attempt++ {
		last = c.attempt(ctx, endpoint, form, decode)
		if last == nil {
			return nil
		}
		last.URL, last.Query = endpoint, what
		if attempt >= c.retries || !retryable(last) || ctx.Err() != nil {
			break
		}
		wait := c.backoff << attempt
		if wait > c.maxBackoff || wait <= 0 {
			wait = c.maxBackoff
		}
		wait = time.Duration(rand.Int64N(int64(wait)) + 1) // full jitter
		if ra := time.Duration(last.RetryAfter * float64(time.Second)); ra > wait {
			wait = ra
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			break // the retry could not finish in time
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return last
		case <-t.C:
		}
	}
	return last
}

// attempt makes one request.
func (c *Client) attempt(ctx context.Context, endpoint, form string, decode func([]byte) error) *APIError {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var req *http.Request
	var err error
	if len(endpoint)+1+len(form) > maxGetURL {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+form, nil)
	}
	if err != nil {
		return &APIError{Kind: ErrBadQuery, Message: err.Error()}
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp, c.maxBytes)
	if err != nil {
		return transportError(ctx, err)
	}
	if int64(len(body)) > c.maxBytes {
		return &APIError{Status: resp.StatusCode, Kind: ErrTooLarge, Message: fmt.Sprintf("response larger than %d bytes: narrow the query", c.maxBytes)}
	}
	ra := retryAfter(resp.Header.Get("Retry-After"))
	err = decode(body)
	if err == nil {
		if resp.StatusCode/100 != 2 {
			return &APIError{Status: resp.StatusCode, Kind: kindOf("", resp.StatusCode), Message: "success body with HTTP error status", RetryAfter: ra}
		}
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) {
		ae.Status, ae.RetryAfter = resp.StatusCode, ra
		if ae.Type == "" {
			ae.Kind = kindOf("", resp.StatusCode)
		}
		return ae
	}
	if resp.StatusCode/100 != 2 {
		// Not the API's JSON, with an error status: say what the server said.
		return &APIError{Status: resp.StatusCode, Kind: kindOf("", resp.StatusCode), Message: snippet(body), RetryAfter: ra}
	}
	kind := ErrMalformed
	if errors.Is(err, ErrUnsupported) {
		kind = ErrUnsupported
	}
	msg := err.Error()
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, kind.Error()), ": ")
	return &APIError{Status: resp.StatusCode, Kind: kind, Message: msg}
}

// transportError classifies an error without a response.
func transportError(ctx context.Context, err error) *APIError {
	err = unwrapURLError(err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &APIError{Kind: ErrTimeout, Message: "no answer before the deadline (raise --timeout?)", Cause: context.DeadlineExceeded}
	}
	if errors.Is(err, context.Canceled) {
		return &APIError{Kind: ErrCanceled, Message: err.Error(), Cause: context.Canceled}
	}
	// The text comes from the transport (a caller's too, via WithHTTPClient):
	// redact any URL it quotes.
	msg := tbops.RedactText(err.Error())
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &APIError{Kind: ErrTimeout, Message: msg, Cause: err}
	}
	return &APIError{Kind: ErrUnavailable, Message: msg, Cause: err}
}

// retryAfter parses Retry-After in seconds or as an HTTP date.
func retryAfter(h string) float64 {
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(h, 64); err == nil && s > 0 {
		return min(s, 60)
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(time.Until(t).Seconds(), 0), 60)
	}
	return 0
}

// readBody reads up to limit+1 bytes, in one allocation when the length is known.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	r := io.LimitReader(resp.Body, limit+1)
	if n := resp.ContentLength; n > 0 && n <= limit {
		buf := make([]byte, 0, n+1)
		for {
			m, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if err == io.EOF {
				return buf, nil
			}
			if err != nil {
				return buf, err
			}
			if len(buf) == cap(buf) { // longer than announced: fall back to growing
				rest, err := io.ReadAll(r)
				return append(buf, rest...), err
			}
		}
	}
	return io.ReadAll(r)
}
