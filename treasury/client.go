package treasury

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/theblock/tbops/rpc"
)

// The JSON-RPC methods of the treasury (PROTOCOL.md section 3).
const (
	MethodBalance         = "gov.treasury.balance"
	MethodDisbursements   = "gov.treasury.disbursements"
	MethodDisbursement    = "gov.treasury.disbursement"
	MethodRollback        = "gov.treasury.rollback_disbursement"
	MethodBalanceHistory  = "gov.treasury.balance_history"
	DefaultLimit          = 50
	MaxLimit              = 500
	defaultHistoryPerPage = MaxLimit
)

// Errors a caller matches with errors.Is. They are package rpc's sentinels,
// aliased so that a caller of this package needs no other import.
var (
	ErrNotFound       = rpc.ErrNotFound
	ErrMethodNotFound = rpc.ErrMethodNotFound
	ErrInvalidParams  = rpc.ErrInvalidParams
	ErrUnauthorized   = rpc.ErrUnauthorized
	ErrRateLimited    = rpc.ErrRateLimited
	ErrUnavailable    = rpc.ErrUnavailable
	ErrMalformed      = rpc.ErrMalformed
)

// ErrInvalidArgument is an argument refused before anything was sent: a state,
// limit or reason the protocol does not allow, or invalid Options.
var ErrInvalidArgument = errors.New("treasury: invalid argument")

// RPCError is the JSON-RPC error object the node sent (errors.As target).
type RPCError = rpc.Error

// CallError is what every failed call returns, naming the method and URL
// (errors.As target).
type CallError = rpc.CallError

// Client is a typed client for the treasury methods. It is safe for concurrent use.
// Reads are retried with backoff; Rollback (a write) is sent exactly once.
type Client struct {
	rpc *rpc.Client
}

// NewClient returns a client for the node's JSON-RPC URL. The options are
// rpc's (rpc.WithToken, rpc.WithTimeout, rpc.WithRetries, rpc.WithHTTPClient,
// rpc.WithClock, …); an invalid one is an error here.
func NewClient(url string, opts ...rpc.Option) (*Client, error) {
	rc, err := rpc.NewClient(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("treasury: %w", err)
	}
	return &Client{rpc: rc}, nil
}

// NewClientFromRPC wraps an existing JSON-RPC client, so that several domain
// clients share one transport (and its connection pool).
func NewClientFromRPC(rc *rpc.Client) *Client { return &Client{rpc: rc} }

// URL is the node's endpoint, its password (if any) hidden.
func (c *Client) URL() string { return c.rpc.URL() }

// Now is the client's clock (rpc.WithClock; time.Now by default): the one
// Diagnose judges ages by unless Options.Now says otherwise.
func (c *Client) Now() time.Time { return c.rpc.Now() }

// Balance calls gov.treasury.balance: the balance and the executor snapshot.
func (c *Client) Balance(ctx context.Context) (Balance, error) {
	var b Balance
	err := c.rpc.Read(ctx, MethodBalance, nil, &b)
	return b, err
}

// ListOptions filters and pages gov.treasury.disbursements.
type ListOptions struct {
	// Status keeps only disbursements in this state ("" for all).
	Status State
	// Limit is the page size: 0 means the node's default (50); at most 500.
	Limit int
	// Cursor continues after a page (Page.NextCursor); nil starts at the beginning.
	Cursor *int64
}

func (o ListOptions) params() (map[string]any, error) {
	p := map[string]any{}
	if o.Status != "" {
		if !o.Status.Valid() {
			return nil, fmt.Errorf("%w: status %q: want one of %v", ErrInvalidArgument, o.Status, States())
		}
		p["status"] = string(o.Status)
	}
	if o.Limit < 0 || o.Limit > MaxLimit {
		return nil, fmt.Errorf("%w: limit %d: want 1..%d (0 for the default %d)", ErrInvalidArgument, o.Limit, MaxLimit, DefaultLimit)
	}
	if o.Limit > 0 {
		p["limit"] = o.Limit
	}
	if o.Cursor != nil {
		p["cursor"] = *o.Cursor
	}
	return p, nil
}

// Page is one page of gov.treasury.disbursements. Records that could not be
// decoded are not in Disbursements but in Invalid, so one bad record does not
// hide the others.
type Page struct {
	Disbursements []Disbursement  `json:"disbursements"`
	NextCursor    *int64          `json:"next_cursor"`
	Total         int64           `json:"total"`
	Invalid       []InvalidRecord `json:"invalid,omitempty"`
}

// InvalidRecord is a record the decoder refused: its position, raw JSON and why.
type InvalidRecord struct {
	Index int             `json:"index"`
	Raw   json.RawMessage `json:"raw"`
	Err   string          `json:"error"`
}

func decodePage(raw json.RawMessage) (Page, error) {
	var p Page
	var env struct {
		Disbursements []json.RawMessage `json:"disbursements"`
		NextCursor    json.RawMessage   `json:"next_cursor"`
		Total         json.RawMessage   `json:"total"`
	}
	var items []json.RawMessage
	if len(raw) > 0 && raw[0] == '[' { // a node that answers with a bare array
		if err := json.Unmarshal(raw, &items); err != nil {
			return p, fmt.Errorf("%w: disbursements: %v", ErrMalformed, err)
		}
	} else {
		if err := json.Unmarshal(raw, &env); err != nil {
			return p, fmt.Errorf("%w: disbursements page: %v", ErrMalformed, err)
		}
		items = env.Disbursements
		if len(env.NextCursor) > 0 && !isNull(env.NextCursor) {
			var cur int64
			if err := decodeInt(env.NextCursor, &cur); err != nil {
				return p, fmt.Errorf("%w: next_cursor: %v", ErrMalformed, err)
			}
			p.NextCursor = &cur
		}
		if len(env.Total) > 0 && !isNull(env.Total) {
			if err := decodeInt(env.Total, &p.Total); err != nil {
				return p, fmt.Errorf("%w: total: %v", ErrMalformed, err)
			}
		}
	}
	p.Disbursements = make([]Disbursement, 0, len(items))
	for i, it := range items {
		d, err := DecodeDisbursement(it)
		if err != nil {
			p.Invalid = append(p.Invalid, InvalidRecord{Index: i, Raw: it, Err: err.Error()})
			continue
		}
		p.Disbursements = append(p.Disbursements, d)
	}
	if p.Total == 0 && p.NextCursor == nil {
		p.Total = int64(len(items))
	}
	return p, nil
}

// Disbursements calls gov.treasury.disbursements for one page.
func (c *Client) Disbursements(ctx context.Context, o ListOptions) (Page, error) {
	params, err := o.params()
	if err != nil {
		return Page{}, err
	}
	var raw json.RawMessage
	if err := c.rpc.Read(ctx, MethodDisbursements, params, &raw); err != nil {
		return Page{}, err
	}
	p, err := decodePage(raw)
	if err != nil {
		return Page{}, &rpc.CallError{Method: MethodDisbursements, URL: c.rpc.URL(), Err: err}
	}
	return p, nil
}

// ErrCursorLoop is returned by All when the node hands back a cursor it already gave.
var ErrCursorLoop = errors.New("treasury: the node repeated a cursor (paging would never end)")

// All pages through every disbursement matching o (o.Cursor is where it starts;
// o.Limit the page size, default 500). It yields each record, or a final error.
// Records the decoder refused are yielded as errors wrapping ErrRecord, and
// paging continues after them.
func (c *Client) All(ctx context.Context, o ListOptions) iter.Seq2[Disbursement, error] {
	return func(yield func(Disbursement, error) bool) {
		if o.Limit == 0 {
			o.Limit = MaxLimit
		}
		seen := map[int64]bool{}
		for {
			p, err := c.Disbursements(ctx, o)
			if err != nil {
				yield(Disbursement{}, err)
				return
			}
			for _, d := range p.Disbursements {
				if !yield(d, nil) {
					return
				}
			}
			for _, inv := range p.Invalid {
				if !yield(Disbursement{}, fmt.Errorf("%w: %s (raw %.200s)", ErrRecord, inv.Err, inv.Raw)) {
					return
				}
			}
			if p.NextCursor == nil {
				return
			}
			if seen[*p.NextCursor] {
				yield(Disbursement{}, ErrCursorLoop)
				return
			}
			seen[*p.NextCursor] = true
			next := *p.NextCursor
			o.Cursor = &next
		}
	}
}

// Disbursement calls gov.treasury.disbursement. An unknown id is an error
// matching ErrNotFound.
func (c *Client) Disbursement(ctx context.Context, id uint64) (Disbursement, error) {
	var raw json.RawMessage
	if err := c.rpc.Read(ctx, MethodDisbursement, map[string]any{"id": id}, &raw); err != nil {
		return Disbursement{}, err
	}
	d, err := DecodeDisbursement(raw)
	if err != nil {
		return Disbursement{}, &rpc.CallError{Method: MethodDisbursement, URL: c.rpc.URL(), Err: err}
	}
	return d, nil
}

// RollbackResult is the answer of gov.treasury.rollback_disbursement.
type RollbackResult struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// Rollback calls gov.treasury.rollback_disbursement: a write, sent exactly once,
// never retried. The node refuses (ErrInvalidParams) executed, finalized and
// rolled_back disbursements, and an unknown id (ErrNotFound).
func (c *Client) Rollback(ctx context.Context, id uint64, reason string) (RollbackResult, error) {
	if reason == "" {
		return RollbackResult{}, fmt.Errorf("%w: rollback of %d needs a reason", ErrInvalidArgument, id)
	}
	var r RollbackResult
	err := c.rpc.Call(ctx, MethodRollback, map[string]any{"id": id, "reason": reason}, &r)
	if err == nil && !r.OK {
		err = &rpc.CallError{Method: MethodRollback, URL: c.rpc.URL(),
			Err: fmt.Errorf("%w: rollback of %d refused (ok false): %s", ErrInvalidParams, id, r.Message)}
	}
	return r, err
}

// HistoryOptions filters and pages gov.treasury.balance_history.
type HistoryOptions struct {
	FromEpoch, ToEpoch *int64
	Limit              int
	Cursor             *int64
}

// HistoryPage is one page of gov.treasury.balance_history.
type HistoryPage struct {
	Snapshots      []Snapshot `json:"snapshots"`
	NextCursor     *int64     `json:"next_cursor"`
	CurrentBalance *int64     `json:"current_balance"`
}

// BalanceHistory calls gov.treasury.balance_history for one page.
func (c *Client) BalanceHistory(ctx context.Context, o HistoryOptions) (HistoryPage, error) {
	p := map[string]any{}
	if o.FromEpoch != nil {
		p["from_epoch"] = *o.FromEpoch
	}
	if o.ToEpoch != nil {
		p["to_epoch"] = *o.ToEpoch
	}
	if o.Limit < 0 || o.Limit > MaxLimit {
		return HistoryPage{}, fmt.Errorf("%w: history limit %d: want 1..%d", ErrInvalidArgument, o.Limit, MaxLimit)
	}
	if o.Limit > 0 {
		p["limit"] = o.Limit
	}
	if o.Cursor != nil {
		p["cursor"] = *o.Cursor
	}
	var h HistoryPage
	err := c.rpc.Read(ctx, MethodBalanceHistory, p, &h)
	return h, err
}

// History is the whole balance history in a range: every snapshot, in the
// node's order, and the current balance.
type History struct {
	Snapshots      []Snapshot
	CurrentBalance *int64
}

// AllHistory pages through gov.treasury.balance_history.
func (c *Client) AllHistory(ctx context.Context, o HistoryOptions) (History, error) {
	if o.Limit == 0 {
		o.Limit = defaultHistoryPerPage
	}
	var h History
	seen := map[int64]bool{}
	for {
		p, err := c.BalanceHistory(ctx, o)
		if err != nil {
			return h, err
		}
		h.Snapshots = append(h.Snapshots, p.Snapshots...)
		if p.CurrentBalance != nil {
			h.CurrentBalance = p.CurrentBalance
		}
		if p.NextCursor == nil {
			return h, nil
		}
		if seen[*p.NextCursor] {
			return h, ErrCursorLoop
		}
		seen[*p.NextCursor] = true
		next := *p.NextCursor
		o.Cursor = &next
	}
}

// LedgerAccount is the answer of ledger.inspect, which the settlement audit uses
// to check a destination account.
type LedgerAccount struct {
	Account   string `json:"account"`
	Balance   int64  `json:"balance"`
	Nonce     int64  `json:"nonce"`
	UpdatedAt int64  `json:"updated_at"`
}

// LedgerInspect calls ledger.inspect for one account.
func (c *Client) LedgerInspect(ctx context.Context, account string) (LedgerAccount, error) {
	var a LedgerAccount
	err := c.rpc.Read(ctx, "ledger.inspect", map[string]any{"account": account}, &a)
	return a, err
}
