package receipts

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/theblock/tbops/rpc"
)

// Stats is receipts.stats for one market.
type Stats struct {
	Market            Market `json:"market"`
	EmittedTotal      int64  `json:"emitted_total"`
	LastEmittedHeight int64  `json:"last_emitted_height"`
	Pending           int64  `json:"pending"`
	ValidationErrors  struct {
		SchemaMismatch     int64 `json:"schema_mismatch"`
		DuplicateDetection int64 `json:"duplicate_detection"`
		SignatureInvalid   int64 `json:"signature_invalid"`
	} `json:"validation_errors"`
	MinPaymentRejectedTotal int64 `json:"min_payment_rejected_total"`
}

// ValidationErrorTotal is the sum of the market's validation errors.
func (s Stats) ValidationErrorTotal() int64 {
	return s.ValidationErrors.SchemaMismatch + s.ValidationErrors.DuplicateDetection + s.ValidationErrors.SignatureInvalid
}

// ValidateResult is receipts.validate's answer.
type ValidateResult struct {
	FromBlock int64            `json:"from_block"`
	ToBlock   int64            `json:"to_block"`
	Checked   int64            `json:"checked"`
	Invalid   []InvalidReceipt `json:"invalid"`
}

// InvalidReceipt is one receipt the node found invalid.
type InvalidReceipt struct {
	BlockHeight int64  `json:"block_height"`
	ReceiptID   string `json:"receipt_id"`
	Market      Market `json:"market"`
	Reason      Reason `json:"reason"`
}

// NodeStatus is node.status.
type NodeStatus struct {
	CurrentBlockHeight int64  `json:"current_block_height"`
	Epoch              int64  `json:"epoch"`
	Syncing            bool   `json:"syncing"`
	Peers              int    `json:"peers"`
	Version            string `json:"version"`
}

// ConsensusStatus is node.consensus_status.
type ConsensusStatus struct {
	// Status is "healthy", "degraded" or "stalled".
	Status              string `json:"status"`
	LastFinalizedHeight int64  `json:"last_finalized_height"`
	Round               int64  `json:"round"`
	ValidatorsOnline    int    `json:"validators_online"`
	ValidatorsTotal     int    `json:"validators_total"`
}

// Client calls a node's receipts and node methods (PROTOCOL.md sections 2 and
// 5). Reads are retried; ResetValidationState, a write, is sent once. The client
// remembers the latency of its recent calls (Latencies), which Diagnose uses for
// the query-latency SLO. Safe for concurrent use.
type Client struct {
	rpc *rpc.Client
	now func() time.Time

	mu   sync.Mutex
	lat  []time.Duration // ring of the last latencyRing call durations
	next int
}

// latencyRing bounds the latencies a client remembers.
const latencyRing = 1024

// Option configures New.
type Option func(*clientConfig)

type clientConfig struct {
	rpc []rpc.Option
	now func() time.Time
}

// WithToken sends "Authorization: Bearer token".
func WithToken(token string) Option {
	return func(c *clientConfig) { c.rpc = append(c.rpc, rpc.WithToken(token)) }
}

// WithTimeout sets the deadline of each call, retries and their waits included (default 5 s).
func WithTimeout(d time.Duration) Option {
	return func(c *clientConfig) { c.rpc = append(c.rpc, rpc.WithTimeout(d)) }
}

// WithHTTPClient uses hc for requests.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *clientConfig) { c.rpc = append(c.rpc, rpc.WithHTTPClient(hc)) }
}

// WithClock sets the clock used to time calls (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *clientConfig) { c.now = now } }

// New returns a client for the node's JSON-RPC URL.
func New(url string, opts ...Option) (*Client, error) {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	rc, err := rpc.NewClient(url, cfg.rpc...)
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	return newClient(rc, cfg.now), nil
}

// NewWithTransport wraps an already configured transport (tbops's CLI builds one
// with its global flags). Options other than WithClock are ignored.
func NewWithTransport(rc *rpc.Client, opts ...Option) *Client {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	return newClient(rc, cfg.now)
}

func newClient(rpc *rpc.Client, now func() time.Time) *Client {
	if now == nil {
		now = time.Now
	}
	return &Client{rpc: rpc, now: now}
}

// URL is the node's JSON-RPC URL.
func (c *Client) URL() string { return c.rpc.URL() }

func (c *Client) read(ctx context.Context, method string, params, out any) error {
	start := c.now()
	err := c.rpc.Read(ctx, method, params, out)
	c.observe(c.now().Sub(start))
	return err
}

func (c *Client) observe(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lat) < latencyRing {
		c.lat = append(c.lat, d)
		return
	}
	c.lat[c.next] = d
	c.next = (c.next + 1) % latencyRing
}

// Latencies returns the durations of the client's recent read calls (up to
// 1024), oldest first is not guaranteed.
func (c *Client) Latencies() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.lat...)
}

// LatencyQuantile returns the q-quantile (0..1, nearest rank) of the recent
// read latencies; ok is false before the first call.
func (c *Client) LatencyQuantile(q float64) (d time.Duration, ok bool) {
	l := c.Latencies()
	if len(l) == 0 {
		return 0, false
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	i := int(q*float64(len(l))+0.999999) - 1 // nearest rank: ceil(q·n)
	i = max(0, min(i, len(l)-1))
	return l[i], true
}

// Stats calls receipts.stats for one market. An unknown market is refused
// before anything is sent (ErrUnknownMarket).
func (c *Client) Stats(ctx context.Context, m Market) (Stats, error) {
	if _, err := ParseMarket(string(m)); err != nil {
		return Stats{}, fmt.Errorf("receipts.stats: %w", err)
	}
	var raw struct {
		Market            *Market `json:"market"`
		EmittedTotal      *int64  `json:"emitted_total"`
		LastEmittedHeight *int64  `json:"last_emitted_height"`
		Stats
	}
	if err := c.read(ctx, "receipts.stats", map[string]any{"market": m}, &raw); err != nil {
		return Stats{}, err
	}
	// A missing height would read as 0 and make a healthy market look stalled
	// for a million blocks: refuse the answer instead.
	var missing []string
	if raw.EmittedTotal == nil {
		missing = append(missing, "emitted_total")
	}
	if raw.LastEmittedHeight == nil {
		missing = append(missing, "last_emitted_height")
	}
	if len(missing) > 0 {
		return Stats{}, fmt.Errorf("receipts.stats at %s: %w: result lacks %s", c.URL(), ErrMalformed, strings.Join(missing, ", "))
	}
	if raw.Market != nil && *raw.Market != m {
		return Stats{}, fmt.Errorf("receipts.stats at %s: %w: asked for market %q, got %q", c.URL(), ErrMalformed, m, *raw.Market)
	}
	s := raw.Stats
	s.Market, s.EmittedTotal, s.LastEmittedHeight = m, *raw.EmittedTotal, *raw.LastEmittedHeight
	return s, nil
}

// Validate calls receipts.validate over [from, to]; to <= 0 means "up to the
// current height" (the node decides). The node re-checks stored receipts and
// reports the invalid ones; it is idempotent, so it is retried like a read.
func (c *Client) Validate(ctx context.Context, from, to int64) (ValidateResult, error) {
	if from < 0 {
		return ValidateResult{}, fmt.Errorf("receipts.validate: from_block %d is negative", from)
	}
	p := map[string]any{"from_block": from}
	if to > 0 {
		if to < from {
			return ValidateResult{}, fmt.Errorf("receipts.validate: to_block %d is below from_block %d", to, from)
		}
		p["to_block"] = to
	}
	var r ValidateResult
	err := c.read(ctx, "receipts.validate", p, &r)
	if r.Invalid == nil {
		r.Invalid = []InvalidReceipt{}
	}
	return r, err
}

// ResetValidationState calls receipts.reset_validation_state: the node forgets
// its validation state (duplicate windows, cached verdicts). A write: sent once,
// never retried.
func (c *Client) ResetValidationState(ctx context.Context) error {
	var r struct {
		OK bool `json:"ok"`
	}
	start := c.now()
	err := c.rpc.Call(ctx, "receipts.reset_validation_state", nil, &r)
	c.observe(c.now().Sub(start))
	if err != nil {
		return err
	}
	if !r.OK {
		return fmt.Errorf("receipts.reset_validation_state at %s: the node answered ok=false", c.URL())
	}
	return nil
}

// NodeStatus calls node.status.
func (c *Client) NodeStatus(ctx context.Context) (NodeStatus, error) {
	var raw struct {
		Height *int64 `json:"current_block_height"`
		NodeStatus
	}
	if err := c.read(ctx, "node.status", nil, &raw); err != nil {
		return NodeStatus{}, err
	}
	if raw.Height == nil {
		return NodeStatus{}, fmt.Errorf("node.status at %s: %w: result lacks current_block_height", c.URL(), ErrMalformed)
	}
	s := raw.NodeStatus
	s.CurrentBlockHeight = *raw.Height
	return s, nil
}

// ConsensusStatus calls node.consensus_status.
func (c *Client) ConsensusStatus(ctx context.Context) (ConsensusStatus, error) {
	var s ConsensusStatus
	if err := c.read(ctx, "node.consensus_status", nil, &s); err != nil {
		return ConsensusStatus{}, err
	}
	if s.Status == "" {
		return ConsensusStatus{}, fmt.Errorf("node.consensus_status at %s: %w: result lacks status", c.URL(), ErrMalformed)
	}
	return s, nil
}
