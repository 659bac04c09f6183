package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/rpc"
)

// The methods the client calls: the contract's node methods (PROTOCOL.md
// section 2) and the reference node's (section 9).
const (
	MethodStatus          = "node.status"
	MethodConsensusStatus = "node.consensus_status"
	MethodLedgerInspect   = "ledger.inspect"
	MethodMempoolStats    = "mempool.stats"
	MethodDifficulty      = "consensus.difficulty"
)

// Status is node.status. A field the node left out is nil, never a zero: a
// node that omits peers has not said it has none.
type Status struct {
	CurrentBlockHeight *int64  `json:"current_block_height"`
	Epoch              *int64  `json:"epoch"`
	Syncing            *bool   `json:"syncing"`
	Peers              *int64  `json:"peers"`
	Version            *string `json:"version"`
}

// Consensus is node.consensus_status' status.
type Consensus string

// The consensus states of the contract.
const (
	ConsensusHealthy  Consensus = "healthy"
	ConsensusDegraded Consensus = "degraded"
	ConsensusStalled  Consensus = "stalled"
)

// ConsensusStatus is node.consensus_status. Missing fields are nil (Status "").
type ConsensusStatus struct {
	Status              Consensus `json:"status"`
	LastFinalizedHeight *int64    `json:"last_finalized_height"`
	Round               *int64    `json:"round"`
	ValidatorsOnline    *int64    `json:"validators_online"`
	ValidatorsTotal     *int64    `json:"validators_total"`
}

// Account is ledger.inspect's answer. UpdatedAt is Unix seconds.
type Account struct {
	Account   string        `json:"account"`
	Balance   *tbops.Amount `json:"balance"`
	Nonce     *int64        `json:"nonce"`
	UpdatedAt *int64        `json:"updated_at"`
}

// MempoolStats is the reference node's mempool.stats for one fee lane.
type MempoolStats struct {
	Size     *int64 `json:"size"`
	AgeP50   *int64 `json:"age_p50"`
	AgeP95   *int64 `json:"age_p95"`
	FeeFloor *int64 `json:"fee_floor"`
	FeeP50   *int64 `json:"fee_p50"`
	FeeP90   *int64 `json:"fee_p90"`
}

// The reference node's fee lanes for MempoolStats.
const (
	LaneConsumer   = "consumer"
	LaneIndustrial = "industrial"
)

// Difficulty is the reference node's consensus.difficulty.
type Difficulty struct {
	Difficulty *uint64 `json:"difficulty"`
}

// Client calls a node's node-health methods. Reads are retried under the
// transport's policy; the client sends no writes. Safe for concurrent use.
type Client struct {
	rpc *rpc.Client
}

// NewClient returns a client for the node's JSON-RPC URL, configured with the
// transport's options (rpc.WithTimeout, rpc.WithRetries, rpc.WithToken, …).
func NewClient(url string, opts ...rpc.Option) (*Client, error) {
	rc, err := rpc.NewClient(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return NewClientFromRPC(rc), nil
}

// NewClientFromRPC wraps an already configured transport, which may be shared
// with other clients of the same node.
func NewClientFromRPC(c *rpc.Client) *Client { return &Client{rpc: c} }

// URL is the node's JSON-RPC URL, its password hidden.
func (c *Client) URL() string { return c.rpc.URL() }

// Now is the transport's clock (rpc.WithClock).
func (c *Client) Now() time.Time { return c.rpc.Now() }

// Status calls node.status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.read(ctx, MethodStatus, nil, &s)
}

// ConsensusStatus calls node.consensus_status.
func (c *Client) ConsensusStatus(ctx context.Context) (ConsensusStatus, error) {
	var s ConsensusStatus
	return s, c.read(ctx, MethodConsensusStatus, nil, &s)
}

// LedgerInspect calls ledger.inspect for one account. An unknown account is
// ErrNotFound.
func (c *Client) LedgerInspect(ctx context.Context, account string) (Account, error) {
	if account == "" {
		return Account{}, fmt.Errorf("%s: %w: param \"account\" is empty", MethodLedgerInspect, ErrInvalidParams)
	}
	var a Account
	return a, c.read(ctx, MethodLedgerInspect, map[string]string{"account": account}, &a)
}

// MempoolStats calls the reference node's mempool.stats for a fee lane
// (LaneConsumer or LaneIndustrial; "" lets the node choose, consumer on the
// reference node).
func (c *Client) MempoolStats(ctx context.Context, lane string) (MempoolStats, error) {
	var params map[string]string
	switch lane {
	case "":
	case LaneConsumer, LaneIndustrial:
		params = map[string]string{"lane": lane}
	default:
		return MempoolStats{}, fmt.Errorf("%s: %w: lane %q, want %s or %s", MethodMempoolStats, ErrInvalidParams, lane, LaneConsumer, LaneIndustrial)
	}
	var s MempoolStats
	return s, c.read(ctx, MethodMempoolStats, params, &s)
}

// Difficulty calls the reference node's consensus.difficulty.
func (c *Client) Difficulty(ctx context.Context) (Difficulty, error) {
	var d Difficulty
	return d, c.read(ctx, MethodDifficulty, nil, &d)
}

// read calls method and decodes its result into out. The transport's errors
// come back as they are (*rpc.CallError); a result that is JSON-RPC but not the
// contract's shape is ErrBadResult, so a caller can tell it from no answer.
func (c *Client) read(ctx context.Context, method string, params, out any) error {
	var raw json.RawMessage
	if err := c.rpc.Read(ctx, method, params, &raw); err != nil {
		return err
	}
	return decodeResult(method, raw, out)
}

// decodeResult decodes one method's result. null and {} leave every field
// missing; a field of the wrong JSON type is ErrBadResult naming it.
func decodeResult(method string, raw json.RawMessage, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("%s: %w: field %s is a JSON %s, want %s", method, ErrBadResult, te.Field, te.Value, te.Type)
		}
		return fmt.Errorf("%s: %w: %v", method, ErrBadResult, err)
	}
	return nil
}

// answered says whether err, from one of the client's calls, still shows a
// node that speaks JSON-RPC: no error, a JSON-RPC error object, or a result
// of the wrong shape. Anything else is no answer.
func answered(err error) bool {
	var re *rpc.Error
	return err == nil || errors.As(err, &re) || errors.Is(err, ErrBadResult)
}
