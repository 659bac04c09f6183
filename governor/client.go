package governor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/theblock/tbops/rpc"
)

// Errors callers match with errors.Is; they are the transport's sentinels.
var (
	ErrNotFound       = rpc.ErrNotFound
	ErrMethodNotFound = rpc.ErrMethodNotFound
	ErrInvalidParams  = rpc.ErrInvalidParams
	ErrUnauthorized   = rpc.ErrUnauthorized
	ErrRateLimited    = rpc.ErrRateLimited
	ErrUnavailable    = rpc.ErrUnavailable
	ErrMalformed      = rpc.ErrMalformed
)

// RPCError is the JSON-RPC error object a node answered with (errors.As).
type RPCError = rpc.Error

// Gate names (PROTOCOL.md section 6). The reference node's other gates
// (operational, naming, storage, compute, energy) keep their names.
const (
	GateEconomics    = "economics"
	GateAdContextual = "ad_contextual"
	GateAdPresence   = "ad_presence"
)

// Gate states and intent actions.
const (
	StateInactive  = "inactive"
	StateActive    = "active"
	StateRehearsal = "rehearsal"
	StateTrade     = "trade"

	ActionEnter     = "enter"
	ActionExit      = "exit"
	ActionRehearsal = "rehearsal"
	ActionTrade     = "trade"
)

// NormalizeGate maps the reference node's gate names to the contract's:
// ad_targeting_contextual → ad_contextual, ad_targeting_presence → ad_presence.
func NormalizeGate(name string) string {
	if rest, ok := strings.CutPrefix(name, "ad_targeting_"); ok {
		return "ad_" + rest
	}
	return name
}

// Gate is one governor gate and its streak progress.
type Gate struct {
	Name string `json:"name"` // normalised
	// RawName is the name as the node sent it (differs for the reference node's ad gates).
	RawName        string `json:"raw_name,omitempty"`
	State          string `json:"state"`
	EnterStreak    int64  `json:"enter_streak"`
	ExitStreak     int64  `json:"exit_streak"`
	StreakRequired int64  `json:"streak_required"`
	LastReason     string `json:"last_reason"`
}

// Active says the gate is applied (any state but inactive).
func (g Gate) Active() bool { return g.State != StateInactive && g.State != "" }

// Progress is the streak that matters now: the enter streak of an inactive gate,
// the exit streak of an active one, against the required streak.
func (g Gate) Progress() (direction string, streak, required int64) {
	if g.Active() {
		return ActionExit, g.ExitStreak, g.StreakRequired
	}
	return ActionEnter, g.EnterStreak, g.StreakRequired
}

// String prints the gate and its progress: "economics active (exit streak 0/3)".
func (g Gate) String() string {
	dir, s, req := g.Progress()
	return fmt.Sprintf("%s %s (%s streak %d/%d)", g.Name, g.State, dir, s, req)
}

// Intent is one governor intent.
type Intent struct {
	ID           string          `json:"id"`
	Gate         string          `json:"gate"` // normalised
	Action       string          `json:"action"`
	Epoch        uint64          `json:"epoch"`
	EpochApply   uint64          `json:"epoch_apply"`
	State        string          `json:"state"`
	SnapshotHash string          `json:"snapshot_hash"`
	Reason       string          `json:"reason"`
	ParamsPatch  json.RawMessage `json:"params_patch,omitempty"`
}

// UnmarshalJSON accepts the contract's shape and the reference node's
// (snapshot_hash_hex, ad_targeting_* gate names).
func (in *Intent) UnmarshalJSON(b []byte) error {
	type plain Intent
	var x struct {
		plain
		SnapshotHashHex string `json:"snapshot_hash_hex"`
	}
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*in = Intent(x.plain)
	if in.SnapshotHash == "" {
		in.SnapshotHash = x.SnapshotHashHex
	}
	in.Gate = NormalizeGate(in.Gate)
	return nil
}

// MarshalJSON writes a missing snapshot_hash as null, never as "".
func (in Intent) MarshalJSON() ([]byte, error) {
	type plain Intent
	return json.Marshal(struct {
		plain
		SnapshotHash *string `json:"snapshot_hash"`
	}{plain(in), nullIfEmpty(in.SnapshotHash)})
}

// nullIfEmpty is s, or nil (JSON null) when s is "".
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// TelemetryGauges is the status's "telemetry gauges (ppm)": market → ppm.
type TelemetryGauges struct {
	Utilization    map[string]int64 `json:"utilization"`
	ProviderMargin map[string]int64 `json:"provider_margin"`
}

// Markets returns every market named in either map, sorted.
func (t TelemetryGauges) Markets() []string {
	seen := map[string]bool{}
	for m := range t.Utilization {
		seen[m] = true
	}
	for m := range t.ProviderMargin {
		seen[m] = true
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// StatusSample is governor.status's economics_sample (whole BLOCK amounts).
type StatusSample struct {
	EpochTxCount        float64 `json:"epoch_tx_count"`
	EpochTxVolume       float64 `json:"epoch_tx_volume"`
	EpochTreasuryInflow float64 `json:"epoch_treasury_inflow"`
	BlockReward         float64 `json:"block_reward"`
}

// Status is governor.status.
type Status struct {
	Enabled            bool   `json:"enabled"`
	ShadowOnly         bool   `json:"shadow_only"`
	EconomicsAutopilot bool   `json:"economics_autopilot"`
	Epoch              uint64 `json:"epoch"`
	WindowSecs         int64  `json:"window_secs"`
	// LastEconomicsSnapshotHash is "" when the node sent null (and is written
	// back as null).
	LastEconomicsSnapshotHash string          `json:"last_economics_snapshot_hash"`
	TelemetryGaugesPPM        TelemetryGauges `json:"telemetry_gauges_ppm"`
	// EconomicsSample is nil (null) when the node did not send one.
	EconomicsSample *StatusSample `json:"economics_sample"`
	Gates           []Gate        `json:"gates"`
	Pending         []Intent      `json:"pending"`
	// Reference says the answer came in the reference node's shape
	// (autopilot_enabled, economics_prev_market_metrics).
	Reference bool `json:"reference,omitempty"`
}

// UnmarshalJSON accepts the contract's shape and the reference node's
// (PROTOCOL.md section 9).
func (s *Status) UnmarshalJSON(b []byte) error {
	type plain Status
	var x struct {
		plain
		LastHash         *string `json:"last_economics_snapshot_hash"`
		AutopilotEnabled *bool   `json:"autopilot_enabled"`
		PrevMarket       []struct {
			Market            string `json:"market"`
			UtilizationPPM    int64  `json:"utilization_ppm"`
			ProviderMarginPPM int64  `json:"provider_margin_ppm"`
		} `json:"economics_prev_market_metrics"`
		Gates []struct {
			Gate
			Gate2 string `json:"gate"`
		} `json:"gates"`
	}
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*s = Status(x.plain)
	s.LastEconomicsSnapshotHash = ""
	if x.LastHash != nil {
		s.LastEconomicsSnapshotHash = *x.LastHash
	}
	if x.AutopilotEnabled != nil {
		s.EconomicsAutopilot = *x.AutopilotEnabled
		s.Reference = true
	}
	if x.PrevMarket != nil {
		s.Reference = true
		if s.TelemetryGaugesPPM.Utilization == nil {
			s.TelemetryGaugesPPM.Utilization = map[string]int64{}
		}
		if s.TelemetryGaugesPPM.ProviderMargin == nil {
			s.TelemetryGaugesPPM.ProviderMargin = map[string]int64{}
		}
		for _, m := range x.PrevMarket {
			s.TelemetryGaugesPPM.Utilization[m.Market] = m.UtilizationPPM
			s.TelemetryGaugesPPM.ProviderMargin[m.Market] = m.ProviderMarginPPM
		}
	}
	if s.Pending == nil {
		s.Pending = []Intent{}
	}
	s.Gates = make([]Gate, 0, len(x.Gates))
	for _, g := range x.Gates {
		gate := g.Gate
		if gate.Name == "" {
			gate.Name = g.Gate2
		}
		gate.RawName = ""
		if n := NormalizeGate(gate.Name); n != gate.Name {
			gate.RawName, gate.Name = gate.Name, n
		}
		s.Gates = append(s.Gates, gate)
	}
	return nil
}

// MarshalJSON writes a missing last_economics_snapshot_hash as null, never as "".
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	return json.Marshal(struct {
		plain
		LastHash *string `json:"last_economics_snapshot_hash"`
	}{plain(s), nullIfEmpty(s.LastEconomicsSnapshotHash)})
}

// Gate returns the named gate (normalised name), if the node runs it.
func (s Status) Gate(name string) (Gate, bool) {
	name = NormalizeGate(name)
	for _, g := range s.Gates {
		if g.Name == name {
			return g, true
		}
	}
	return Gate{}, false
}

// Client is a typed client of the governor methods (PROTOCOL.md section 6).
type Client struct {
	rpc *rpc.Client
}

// NewClient returns a client for the node's JSON-RPC URL. The options are the
// transport's (rpc.WithToken, rpc.WithTimeout, rpc.WithRetries,
// rpc.WithHTTPClient, rpc.WithClock, …); an invalid URL or option is an error
// here, not at the first call.
func NewClient(url string, opts ...rpc.Option) (*Client, error) {
	rc, err := rpc.NewClient(url, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{rpc: rc}, nil
}

// NewClientFromRPC wraps an existing transport (the CLI shares one per node).
func NewClientFromRPC(rc *rpc.Client) *Client { return &Client{rpc: rc} }

// URL is the node's endpoint.
func (c *Client) URL() string { return c.rpc.URL() }

// Status reads governor.status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.rpc.Read(ctx, "governor.status", nil, &s)
	return s, err
}

// Intents reads governor.intents, filtered by gate when gate is not "". On a
// node without governor.intents (-32601) it reads the reference node's
// governor.decisions instead and filters by gate itself.
func (c *Client) Intents(ctx context.Context, gate string) ([]Intent, error) {
	ins, _, err := c.intents(ctx, gate)
	return ins, err
}

// intents also returns the method that answered, for evidence.
func (c *Client) intents(ctx context.Context, gate string) ([]Intent, string, error) {
	params := map[string]any{}
	if gate != "" {
		params["gate"] = NormalizeGate(gate) // the contract's names
	}
	var res struct {
		Intents []Intent `json:"intents"`
	}
	err := c.rpc.Read(ctx, "governor.intents", params, &res)
	if err == nil {
		return filterGate(res.Intents, gate), "governor.intents", nil
	}
	if !errors.Is(err, rpc.ErrMethodNotFound) {
		return nil, "governor.intents", err
	}
	var raw json.RawMessage
	if err := c.rpc.Read(ctx, "governor.decisions", nil, &raw); err != nil {
		return nil, "governor.decisions", err
	}
	var list []Intent
	if err := json.Unmarshal(raw, &list); err != nil {
		// Accept an object wrapper too: {"decisions": [...]} or {"intents": [...]}.
		var obj struct {
			Decisions []Intent `json:"decisions"`
			Intents   []Intent `json:"intents"`
		}
		if err2 := json.Unmarshal(raw, &obj); err2 != nil {
			return nil, "governor.decisions", fmt.Errorf("governor.decisions at %s: %w: %v", c.rpc.URL(), rpc.ErrMalformed, err)
		}
		list = append(obj.Decisions, obj.Intents...)
	}
	return filterGate(list, gate), "governor.decisions", nil
}

func filterGate(in []Intent, gate string) []Intent {
	if gate == "" {
		return in
	}
	gate = NormalizeGate(gate)
	out := make([]Intent, 0, len(in))
	for _, i := range in {
		if i.Gate == gate {
			out = append(out, i)
		}
	}
	return out
}

// Snapshot reads governor.snapshot for an epoch: the decision object of that
// epoch, parsed strictly with number literals kept (so its hash is exact).
// An unknown epoch is ErrNotFound.
func (c *Client) Snapshot(ctx context.Context, epoch uint64) (Decision, error) {
	var raw json.RawMessage
	if err := c.rpc.Read(ctx, "governor.snapshot", map[string]any{"epoch": epoch}, &raw); err != nil {
		return Decision{}, err
	}
	d, err := ParseDecision(raw)
	if err != nil {
		return Decision{}, fmt.Errorf("governor.snapshot epoch %d at %s: %w: %v", epoch, c.rpc.URL(), rpc.ErrMalformed, err)
	}
	return d, nil
}

// SubmitIntent submits an exit intent for a gate (governor.submit_intent
// {gate, action: "exit", reason}). It is a write: sent once, never retried.
func (c *Client) SubmitIntent(ctx context.Context, gate, reason string) (Intent, error) {
	if gate == "" {
		return Intent{}, fmt.Errorf("governor.submit_intent: %w: gate is required", ErrInvalidParams)
	}
	if strings.TrimSpace(reason) == "" {
		return Intent{}, fmt.Errorf("governor.submit_intent: %w: reason is required", ErrInvalidParams)
	}
	var in Intent
	err := c.rpc.Call(ctx, "governor.submit_intent", map[string]any{"gate": gate, "action": ActionExit, "reason": reason}, &in)
	return in, err
}
