package receipts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/theblock/tbops/rpc"
)

// Stats is receipts.stats for one market. EmittedTotal and LastEmittedHeight
// are always present (an answer without them is ErrMalformed); the other
// fields are nil (JSON null) when the node did not send them, never 0.
type Stats struct {
	Market                  Market           `json:"market"`
	EmittedTotal            int64            `json:"emitted_total"`
	LastEmittedHeight       int64            `json:"last_emitted_height"`
	Pending                 *int64           `json:"pending"`
	ValidationErrors        ValidationErrors `json:"validation_errors"`
	MinPaymentRejectedTotal *int64           `json:"min_payment_rejected_total"`
}

// ValidationErrors are a market's validation errors by reason; nil is a count
// the node did not send.
type ValidationErrors struct {
	SchemaMismatch     *int64 `json:"schema_mismatch"`
	DuplicateDetection *int64 `json:"duplicate_detection"`
	SignatureInvalid   *int64 `json:"signature_invalid"`
}

// ValidateResult is receipts.validate's answer. Checked is nil when the node
// did not say how many receipts it checked.
type ValidateResult struct {
	FromBlock int64            `json:"from_block"`
	ToBlock   int64            `json:"to_block"`
	Checked   *int64           `json:"checked"`
	Invalid   []InvalidReceipt `json:"invalid"`
}

// InvalidReceipt is one receipt the node found invalid.
type InvalidReceipt struct {
	BlockHeight int64  `json:"block_height"`
	ReceiptID   string `json:"receipt_id"`
	Market      Market `json:"market"`
	Reason      Reason `json:"reason"`
}

// NodeStatus is node.status. CurrentBlockHeight is always present; the other
// fields are nil when the node did not send them.
type NodeStatus struct {
	CurrentBlockHeight int64   `json:"current_block_height"`
	Epoch              *int64  `json:"epoch"`
	Syncing            *bool   `json:"syncing"`
	Peers              *int64  `json:"peers"`
	Version            *string `json:"version"`
}

// ConsensusStatus is node.consensus_status. Status is always present; the
// other fields are nil when the node did not send them.
type ConsensusStatus struct {
	// Status is "healthy", "degraded" or "stalled".
	Status              string `json:"status"`
	LastFinalizedHeight *int64 `json:"last_finalized_height"`
	Round               *int64 `json:"round"`
	ValidatorsOnline    *int64 `json:"validators_online"`
	ValidatorsTotal     *int64 `json:"validators_total"`
}

// Client calls a node's receipts and node methods (PROTOCOL.md sections 2 and
// 5). Reads are retried; ResetValidationState, a write, is sent once. Safe for
// concurrent use.
type Client struct {
	rpc *rpc.Client
}

// NewClient returns a client for the node's JSON-RPC URL, configured with the
// transport's options (rpc.WithToken, rpc.WithTimeout, rpc.WithRetries,
// rpc.WithHTTPClient, rpc.WithClock, …). An invalid URL or option is an error.
func NewClient(url string, opts ...rpc.Option) (*Client, error) {
	rc, err := rpc.NewClient(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	return NewClientFromRPC(rc), nil
}

// NewClientFromRPC wraps a configured transport, shared with other clients.
func NewClientFromRPC(rc *rpc.Client) *Client { return &Client{rpc: rc} }

// URL is the node's JSON-RPC URL, its password hidden.
func (c *Client) URL() string { return c.rpc.URL() }

// malformed is the error of an answer that lacks fields the caller relies on.
func (c *Client) malformed(method string, missing []string) error {
	return fmt.Errorf("%s at %s: %w: result lacks %s", method, c.URL(), ErrMalformed, strings.Join(missing, ", "))
}

// Stats calls receipts.stats for one market. An unknown market is refused
// before anything is sent (ErrUnknownMarket). An answer without emitted_total
// or last_emitted_height is ErrMalformed: a missing height read as 0 would
// make a healthy market look a million blocks stale.
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
	if err := c.rpc.Read(ctx, "receipts.stats", map[string]any{"market": m}, &raw); err != nil {
		return Stats{}, err
	}
	var missing []string
	if raw.EmittedTotal == nil {
		missing = append(missing, "emitted_total")
	}
	if raw.LastEmittedHeight == nil {
		missing = append(missing, "last_emitted_height")
	}
	if len(missing) > 0 {
		return Stats{}, c.malformed("receipts.stats", missing)
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
// reports the invalid ones; it is idempotent, so it is retried like a read. An
// answer without its block range or its invalid list is ErrMalformed.
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
	var raw struct {
		FromBlock *int64            `json:"from_block"`
		ToBlock   *int64            `json:"to_block"`
		Checked   *int64            `json:"checked"`
		Invalid   *[]InvalidReceipt `json:"invalid"`
	}
	if err := c.rpc.Read(ctx, "receipts.validate", p, &raw); err != nil {
		return ValidateResult{}, err
	}
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{{"from_block", raw.FromBlock != nil}, {"to_block", raw.ToBlock != nil}, {"invalid", raw.Invalid != nil}} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return ValidateResult{}, c.malformed("receipts.validate", missing)
	}
	return ValidateResult{FromBlock: *raw.FromBlock, ToBlock: *raw.ToBlock, Checked: raw.Checked,
		Invalid: append([]InvalidReceipt{}, *raw.Invalid...)}, nil
}

// ResetValidationState calls receipts.reset_validation_state: the node forgets
// its validation state (duplicate windows, cached verdicts). A write: sent once,
// never retried.
func (c *Client) ResetValidationState(ctx context.Context) error {
	var r struct {
		OK bool `json:"ok"`
	}
	if err := c.rpc.Call(ctx, "receipts.reset_validation_state", nil, &r); err != nil {
		return err
	}
	if !r.OK {
		return fmt.Errorf("receipts.reset_validation_state at %s: the node answered ok=false", c.URL())
	}
	return nil
}

// NodeStatus calls node.status. An answer without current_block_height is
// ErrMalformed.
func (c *Client) NodeStatus(ctx context.Context) (NodeStatus, error) {
	var raw struct {
		Height *int64 `json:"current_block_height"`
		NodeStatus
	}
	if err := c.rpc.Read(ctx, "node.status", nil, &raw); err != nil {
		return NodeStatus{}, err
	}
	if raw.Height == nil {
		return NodeStatus{}, c.malformed("node.status", []string{"current_block_height"})
	}
	s := raw.NodeStatus
	s.CurrentBlockHeight = *raw.Height
	return s, nil
}

// ConsensusStatus calls node.consensus_status. An answer without status is
// ErrMalformed.
func (c *Client) ConsensusStatus(ctx context.Context) (ConsensusStatus, error) {
	var s ConsensusStatus
	if err := c.rpc.Read(ctx, "node.consensus_status", nil, &s); err != nil {
		return ConsensusStatus{}, err
	}
	if s.Status == "" {
		return ConsensusStatus{}, c.malformed("node.consensus_status", []string{"status"})
	}
	return s, nil
}

// now is the transport's clock, which times the calls a diagnosis reports as
// tbops's own round trips.
func (c *Client) now() time.Time { return c.rpc.Now() }
