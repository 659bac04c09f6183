package energy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/rpc"
)

// TokenEnv is the environment variable holding the energy RPC bearer token. The
// guard's GuardOptionsFromEnv and the command line read it; a Client never
// does (pass rpc.WithToken).
const TokenEnv = "TB_ENERGY_RPC_TOKEN"

// Method names (PROTOCOL.md section 4; MethodMarketState is the reference node's).
const (
	MethodMarket        = "energy.market"
	MethodMarketState   = "energy.market_state"
	MethodProvider      = "energy.provider"
	MethodCredits       = "energy.credits"
	MethodDisputes      = "energy.disputes"
	MethodDispute       = "energy.dispute"
	MethodOracleKeys    = "energy.oracle_keys"
	MethodSubmitReading = "energy.submit_reading"
)

// MaxLimit is the most records one page holds (PROTOCOL.md section 1; the
// node's default is 50).
const MaxLimit = 500

// ID is a record id the node may send as a JSON string or number.
type ID string

// UnmarshalJSON accepts a string or a number.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	}
	if string(b) == "null" {
		*id = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id: want a string or a number, got %.40s", b)
	}
	*id = ID(n.String())
	return nil
}

// Reputation is a provider's reputation breakdown (floats 0..1). A score the
// node left out is nil.
type Reputation struct {
	CompositeScore *float64 `json:"composite_score"` // the score the runbook's 0.5 floor applies to
	Delivery       *float64 `json:"delivery"`        // the parts of the composite
	Meter          *float64 `json:"meter"`
	Latency        *float64 `json:"latency"`
	Capacity       *float64 `json:"capacity"`
}

// Provider is an energy provider (energy.market, energy.provider). A number the
// node left out is nil, never a zero.
type Provider struct {
	ProviderID string `json:"provider_id"`
	// Status is active, inactive or suspended ("" when the node did not say).
	Status          string      `json:"status"`
	ReputationScore *float64    `json:"reputation_score"`     // equals Reputation.CompositeScore
	Reputation      *Reputation `json:"reputation,omitempty"` // nil on the reference node
	CapacityKWh     *float64    `json:"capacity_kwh"`
	// PricePerKWh is micro-BLOCK per kWh.
	PricePerKWh *tbops.Amount `json:"price_per_kwh"`

	// PublicKey and Scheme are the provider's registered key (energy.provider only).
	PublicKey string `json:"public_key,omitempty"`
	Scheme    string `json:"scheme,omitempty"`
	// LastSettlement and LastReadingAt are Unix seconds; 0 is "never", nil
	// "the node did not say".
	LastSettlement *int64 `json:"last_settlement,omitempty"`
	LastReadingAt  *int64 `json:"last_reading_at,omitempty"`
}

// Score is the composite reputation score: reputation.composite_score, or
// reputation_score when the node sends only that (the reference node); false
// when the node sent neither.
func (p Provider) Score() (float64, bool) {
	switch {
	case p.Reputation != nil && p.Reputation.CompositeScore != nil:
		return *p.Reputation.CompositeScore, true
	case p.ReputationScore != nil:
		return *p.ReputationScore, true
	}
	return 0, false
}

// UnmarshalJSON also accepts the reference node's "id" for provider_id.
func (p *Provider) UnmarshalJSON(b []byte) error {
	type plain Provider
	var w struct {
		plain
		ID *ID `json:"id"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Provider(w.plain)
	if p.ProviderID == "" && w.ID != nil {
		p.ProviderID = string(*w.ID)
	}
	if p.ReputationScore == nil && p.Reputation != nil {
		p.ReputationScore = p.Reputation.CompositeScore
	}
	return nil
}

// Market is energy.market's result.
type Market struct {
	Providers []Provider `json:"providers"` // every provider of the market
}

// Credit is a meter-reading credit. A number the node left out is nil.
type Credit struct {
	CreditID   ID       `json:"credit_id"`
	ProviderID string   `json:"provider_id"`
	Meter      string   `json:"meter"`      // the meter the reading came from
	AmountKWh  *float64 `json:"amount_kwh"` // the credited energy
	// Status is pending or settled.
	Status string `json:"status"`
	// ReadingTimestamp and CreatedAt are Unix seconds (nil when the node left
	// them out).
	ReadingTimestamp *int64 `json:"reading_timestamp"`
	CreatedAt        *int64 `json:"created_at"` // when the reading was admitted
}

// UnmarshalJSON also accepts the reference node's provider, meter_address and id.
func (c *Credit) UnmarshalJSON(b []byte) error {
	type plain Credit
	var w struct {
		plain
		Provider     *string `json:"provider"`
		MeterAddress *string `json:"meter_address"`
		ID           *ID     `json:"id"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Credit(w.plain)
	if c.ProviderID == "" && w.Provider != nil {
		c.ProviderID = *w.Provider
	}
	if c.Meter == "" && w.MeterAddress != nil {
		c.Meter = *w.MeterAddress
	}
	if c.CreditID == "" && w.ID != nil {
		c.CreditID = *w.ID
	}
	return nil
}

// CreditPage is one page of energy.credits.
type CreditPage struct {
	Credits []Credit `json:"credits"`
	// NextCursor continues the listing; nil at the end.
	NextCursor *int64 `json:"next_cursor"`
}

// CreditFilter selects credits; zero values mean "any" and the node's default limit.
type CreditFilter struct {
	// Status is "pending", "settled" or "" for both.
	Status string
	// ProviderID is one provider's credits only ("" for all).
	ProviderID string
	// Limit per page (node default 50, max 500).
	Limit int
	// Cursor is a NextCursor of an earlier page (nil from the start).
	Cursor *int64
}

// Dispute is an energy dispute.
type Dispute struct {
	DisputeID  ID     `json:"dispute_id"`
	ProviderID string `json:"provider_id"`
	Meter      string `json:"meter"` // the disputed meter
	// Status is open or resolved.
	Status string `json:"status"`
	Reason string `json:"reason"` // why it was opened (meter_mismatch, late_delivery, …)
	// OpenedAt and ResolvedAt are Unix seconds; ResolvedAt is nil while open,
	// OpenedAt when the node left it out.
	OpenedAt   *int64 `json:"opened_at"`
	ResolvedAt *int64 `json:"resolved_at"`
	// Evidence is set by energy.dispute only.
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// UnmarshalJSON also accepts the reference node's id and provider.
func (d *Dispute) UnmarshalJSON(b []byte) error {
	type plain Dispute
	var w struct {
		plain
		ID       *ID     `json:"id"`
		Provider *string `json:"provider"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*d = Dispute(w.plain)
	if d.DisputeID == "" && w.ID != nil {
		d.DisputeID = *w.ID
	}
	if d.ProviderID == "" && w.Provider != nil {
		d.ProviderID = *w.Provider
	}
	return nil
}

// OracleKey is one registered provider key.
type OracleKey struct {
	ProviderID string `json:"provider_id"`
	Scheme     string `json:"scheme"`     // ed25519 or ed25519-blake3
	PublicKey  string `json:"public_key"` // base64 (hex on the reference node)
	// RotatedAt and ExpiresAt are Unix seconds (nil when the node left them out).
	RotatedAt *int64 `json:"rotated_at"`
	ExpiresAt *int64 `json:"expires_at"`
}

// OracleKeys is energy.oracle_keys's result.
type OracleKeys struct {
	// Status is ok or degraded.
	Status string      `json:"status"`
	Keys   []OracleKey `json:"keys"` // one per registered provider
}

// Client is a typed client of the energy methods. It is safe for concurrent use.
// Reads are retried with backoff (rpc.Client.Read); SubmitReading, a write, is
// sent exactly once.
type Client struct {
	rpc *rpc.Client
	// marketState remembers that the node speaks the reference node's
	// energy.market_state rather than energy.market.
	marketState atomic.Bool
}

// NewClient returns a client for the node's JSON-RPC URL. The options are
// rpc's (rpc.WithToken for TB_ENERGY_RPC_TOKEN's value, rpc.WithTimeout,
// rpc.WithRetries, rpc.WithHTTPClient, rpc.WithClock, …); an invalid one is an
// error here. The client reads no environment variable: the caller passes the
// token.
func NewClient(url string, opts ...rpc.Option) (*Client, error) {
	rc, err := rpc.NewClient(url, append([]rpc.Option{rpc.WithUserAgent("tbops-energy")}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("energy: %w", err)
	}
	return &Client{rpc: rc}, nil
}

// NewClientFromRPC wraps an existing JSON-RPC client, so that several domain
// clients share one transport (and its connection pool).
func NewClientFromRPC(rc *rpc.Client) *Client { return &Client{rpc: rc} }

// URL is the node's RPC URL, its password (if any) hidden.
func (c *Client) URL() string { return c.rpc.URL() }

// Now is the client's clock (rpc.WithClock; time.Now by default): the one
// Diagnose judges ages by unless Options.Now says otherwise.
func (c *Client) Now() time.Time { return c.rpc.Now() }

// Market lists the providers. It calls energy.market and, when the node does not
// know it (-32601), the reference node's energy.market_state, remembering which
// worked.
func (c *Client) Market(ctx context.Context) (Market, error) {
	var raw json.RawMessage
	var err error
	if !c.marketState.Load() {
		err = c.rpc.Read(ctx, MethodMarket, nil, &raw)
		if errors.Is(err, rpc.ErrMethodNotFound) {
			c.marketState.Store(true)
		}
	}
	if c.marketState.Load() {
		err = c.rpc.Read(ctx, MethodMarketState, nil, &raw)
	}
	if err != nil {
		return Market{}, err
	}
	var m Market
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		err = json.Unmarshal(t, &m.Providers)
	} else {
		err = json.Unmarshal(raw, &m)
	}
	if err != nil {
		return Market{}, fmt.Errorf("energy: decoding %s: %w: %v", c.MarketMethod(), ErrMalformed, err)
	}
	return m, nil
}

// MarketMethod is the market method the node answered to.
func (c *Client) MarketMethod() string {
	if c.marketState.Load() {
		return MethodMarketState
	}
	return MethodMarket
}

// Provider returns one provider with its key and last settlement.
func (c *Client) Provider(ctx context.Context, providerID string) (Provider, error) {
	var p Provider
	err := c.rpc.Read(ctx, MethodProvider, map[string]any{"provider_id": providerID}, &p)
	return p, err
}

// CreditParams is the params object Credits sends for f (also used as evidence).
func CreditParams(f CreditFilter) map[string]any {
	p := map[string]any{}
	if f.Status != "" {
		p["status"] = f.Status
	}
	if f.ProviderID != "" {
		p["provider_id"] = f.ProviderID
	}
	if f.Limit > 0 {
		p["limit"] = f.Limit
	}
	if f.Cursor != nil {
		p["cursor"] = *f.Cursor
	}
	return p
}

// Credits returns one page of credits.
func (c *Client) Credits(ctx context.Context, f CreditFilter) (CreditPage, error) {
	if f.Status != "" && f.Status != "pending" && f.Status != "settled" {
		return CreditPage{}, fmt.Errorf("%w: credit status %q: want pending or settled", ErrInvalidArgument, f.Status)
	}
	if err := checkLimit(f.Limit); err != nil {
		return CreditPage{}, err
	}
	var page CreditPage
	err := c.rpc.Read(ctx, MethodCredits, CreditParams(f), &page)
	return page, err
}

// AllCredits iterates over every credit matching f, page by page, stopping after
// maxItems (0 = no cap) or at the first error, which it yields.
func (c *Client) AllCredits(ctx context.Context, f CreditFilter, maxItems int) iter.Seq2[Credit, error] {
	return func(yield func(Credit, error) bool) {
		n := 0
		seen := map[int64]bool{}
		for {
			page, err := c.Credits(ctx, f)
			if err != nil {
				yield(Credit{}, err)
				return
			}
			for _, cr := range page.Credits {
				if maxItems > 0 && n >= maxItems {
					return
				}
				n++
				if !yield(cr, nil) {
					return
				}
			}
			if page.NextCursor == nil || len(page.Credits) == 0 {
				return
			}
			if seen[*page.NextCursor] { // a node that repeats a cursor would loop forever
				yield(Credit{}, fmt.Errorf("energy: %s repeated cursor %d", MethodCredits, *page.NextCursor))
				return
			}
			seen[*page.NextCursor] = true
			cur := *page.NextCursor
			f.Cursor = &cur
		}
	}
}

// Disputes lists disputes; status is "open", "resolved" or "" for both.
func (c *Client) Disputes(ctx context.Context, status string, limit int) ([]Dispute, error) {
	if status != "" && status != "open" && status != "resolved" {
		return nil, fmt.Errorf("%w: dispute status %q: want open or resolved", ErrInvalidArgument, status)
	}
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	p := map[string]any{}
	if status != "" {
		p["status"] = status
	}
	if limit > 0 {
		p["limit"] = limit
	}
	var out struct {
		Disputes []Dispute `json:"disputes"`
	}
	err := c.rpc.Read(ctx, MethodDisputes, p, &out)
	return out.Disputes, err
}

// checkLimit refuses a page size the protocol does not allow (0 is the node's default).
func checkLimit(limit int) error {
	if limit < 0 || limit > MaxLimit {
		return fmt.Errorf("%w: limit %d: want 1 to %d (0 for the node's default)", ErrInvalidArgument, limit, MaxLimit)
	}
	return nil
}

// Dispute returns one dispute with its evidence.
func (c *Client) Dispute(ctx context.Context, id string) (Dispute, error) {
	var d Dispute
	err := c.rpc.Read(ctx, MethodDispute, map[string]any{"dispute_id": id}, &d)
	return d, err
}

// OracleKeys returns the oracle key manager's status and the provider keys.
func (c *Client) OracleKeys(ctx context.Context) (OracleKeys, error) {
	var k OracleKeys
	err := c.rpc.Read(ctx, MethodOracleKeys, nil, &k)
	return k, err
}

// SubmitReading sends a reading once (a write is never retried) and returns the
// credit id. A -33001/-33007/-33008 answer matches ErrVerificationFailed (or the
// reason's sentinel), ErrNonceReplay or ErrTimestampSkew.
func (c *Client) SubmitReading(ctx context.Context, r Reading) (string, error) {
	var out struct {
		CreditID ID `json:"credit_id"`
	}
	if err := c.rpc.Call(ctx, MethodSubmitReading, r, &out); err != nil {
		return "", fromRPC(err, r)
	}
	return string(out.CreditID), nil
}

// itoa is strconv.FormatInt for int64.
func itoa(v int64) string { return strconv.FormatInt(v, 10) }
