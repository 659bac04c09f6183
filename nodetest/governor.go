package nodetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"lukechampine.com/blake3"

	"github.com/theblock/tbops/rpc"
)

// GovernorState is the Launch Governor behind governor.status, governor.intents,
// governor.snapshot and governor.submit_intent, the economics_* and ad_* gauges,
// and the decision files the node writes under DataDir()/governor/decisions.
//
// Each decision becomes a file epoch-{E}.json written canonically (the sim has
// its own small encoder, independent of package governor, so that the two check
// each other) with an Ed25519 .sig sidecar; a decision with an IntentID is also
// an intent whose snapshot_hash is the decision's hash.
type GovernorState struct {
	Enabled            bool  `json:"enabled"`
	ShadowOnly         bool  `json:"shadow_only"`
	EconomicsAutopilot bool  `json:"economics_autopilot"`
	WindowSecs         int64 `json:"window_secs"`
	// Gates in status order.
	Gates     []GovernorGate     `json:"gates"`
	Decisions []GovernorDecision `json:"decisions"`
	Ad        GovernorAd         `json:"ad"`
	// StatusHash, when set, is served as last_economics_snapshot_hash instead of
	// the newest economics decision's hash (a governor that replayed another sample).
	StatusHash string `json:"status_hash,omitempty"`
	// GaugeDrift adds a delta to every series of the named economics_* gauge.
	GaugeDrift map[string]float64 `json:"gauge_drift,omitempty"`
	// NoEconomicsGauges stops exporting the economics_* gauges (the governor's
	// telemetry is gone while the node still runs).
	NoEconomicsGauges bool `json:"no_economics_gauges,omitempty"`
	// Reference serves the reference node's shapes (PROTOCOL.md section 9):
	// governor.decisions instead of governor.intents, autopilot_enabled,
	// economics_prev_market_metrics, ad_targeting_* gate names.
	Reference bool `json:"reference,omitempty"`
	// Unsigned writes no .sig sidecars.
	Unsigned bool `json:"unsigned,omitempty"`
}

// GovernorGate is one gate and its streaks.
type GovernorGate struct {
	Name           string `json:"name"`
	State          string `json:"state"`
	EnterStreak    int64  `json:"enter_streak"`
	ExitStreak     int64  `json:"exit_streak"`
	StreakRequired int64  `json:"streak_required"`
	LastReason     string `json:"last_reason"`
}

// GovernorDecision is one decision (file) and, with an IntentID, its intent.
type GovernorDecision struct {
	Epoch    int64  `json:"epoch"`
	Gate     string `json:"gate"`
	Action   string `json:"action"`
	IntentID string `json:"intent_id"`
	Reason   string `json:"reason"`
	// Sample is the economics sample; when set it is the metrics_summary.
	Sample         *GovernorSample `json:"sample,omitempty"`
	MetricsSummary json.RawMessage `json:"metrics_summary,omitempty"`
	MetricsRaw     json.RawMessage `json:"metrics_raw,omitempty"`
	ParamsPatch    json.RawMessage `json:"params_patch,omitempty"`
	// State of the intent ("pending" or "applied") and the epoch it applies at.
	State      string `json:"state"`
	EpochApply int64  `json:"epoch_apply"`
	// WithHash writes the decision's own snapshot_hash into the file;
	// StoredHash writes that value instead (a file that lies about itself).
	WithHash   bool   `json:"with_hash,omitempty"`
	StoredHash string `json:"stored_hash,omitempty"`
	// IntentHash, when set, is the intent's snapshot_hash instead of the decision's.
	IntentHash string `json:"intent_hash,omitempty"`
}

// GovernorSample is an economics sample (amounts in whole BLOCK).
type GovernorSample struct {
	EpochTxCount        int64                     `json:"epoch_tx_count"`
	EpochTxVolume       int64                     `json:"epoch_tx_volume"`
	EpochTreasuryInflow int64                     `json:"epoch_treasury_inflow"`
	BlockReward         int64                     `json:"block_reward"`
	MarketMetrics       map[string]GovernorMarket `json:"market_metrics"`
}

// GovernorMarket is one market's entry of a sample.
type GovernorMarket struct {
	UtilizationPPM    int64 `json:"utilization_ppm"`
	ProviderMarginPPM int64 `json:"provider_margin_ppm"`
}

// GovernorAd is the ad market's quality and cost signals (section 7 gauges).
type GovernorAd struct {
	QualityMultiplierPPM   map[string]int64 `json:"quality_multiplier_ppm"` // by component
	ReadinessStreakWindows int64            `json:"readiness_streak_windows"`
	FreshnessScorePPM      map[string]int64 `json:"freshness_score_ppm"` // by presence_bucket
	PrivacyScorePPM        int64            `json:"privacy_score_ppm"`
	ComputeUnitPriceMicros int64            `json:"compute_unit_price_usd_micros"`
	CostBasisMicros        map[string]int64 `json:"cost_basis_usd_micros"` // by component
	GateReadyPPM           map[string]int64 `json:"gate_ready_ppm"`        // by tier
	// GateStreakWindows by tier; when nil, each tier's gate enter streak.
	GateStreakWindows map[string]int64 `json:"gate_streak_windows,omitempty"`
}

// Decisions carry epochs, not Unix times: nothing to shift.
func (s *GovernorState) shift(d int64) {}

func rawJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on literals below
	}
	return b
}

func healthyGovernor(now time.Time) GovernorState {
	// Epochs relative to the healthy chain's height (1 200 000 / 120 = 10 000).
	const e = 10_000
	sample := func(tx, vol, inflow int64, storageUtil int64) *GovernorSample {
		return &GovernorSample{EpochTxCount: tx, EpochTxVolume: vol, EpochTreasuryInflow: inflow, BlockReward: 12,
			MarketMetrics: map[string]GovernorMarket{
				"storage": {UtilizationPPM: storageUtil, ProviderMarginPPM: 182_000},
				"compute": {UtilizationPPM: 743_500, ProviderMarginPPM: 121_000},
				"energy":  {UtilizationPPM: 512_000, ProviderMarginPPM: 95_500},
				"ad":      {UtilizationPPM: 390_000, ProviderMarginPPM: 240_000},
			}}
	}
	return GovernorState{
		Enabled: true, ShadowOnly: false, EconomicsAutopilot: true, WindowSecs: 120,
		Gates: []GovernorGate{
			{Name: "operational", State: "active", EnterStreak: 3, StreakRequired: 3, LastReason: "all validators healthy"},
			{Name: "economics", State: "active", EnterStreak: 3, StreakRequired: 3, LastReason: "utilization and margins inside band"},
			{Name: "ad_contextual", State: "active", EnterStreak: 6, StreakRequired: 6, LastReason: "readiness streak reached"},
			{Name: "ad_presence", State: "inactive", EnterStreak: 2, StreakRequired: 6, LastReason: "presence readiness building"},
			{Name: "naming", State: "inactive", StreakRequired: 3},
			{Name: "storage", State: "active", EnterStreak: 3, StreakRequired: 3},
			{Name: "compute", State: "active", EnterStreak: 3, StreakRequired: 3},
			{Name: "energy", State: "active", EnterStreak: 3, StreakRequired: 3},
		},
		Decisions: []GovernorDecision{
			{Epoch: e - 6, Gate: "operational", Action: "enter", IntentID: "op-9994", Reason: "validators healthy for 3 windows",
				MetricsSummary: rawJSON("ok"), MetricsRaw: json.RawMessage("null"), ParamsPatch: json.RawMessage("{}"), State: "applied", EpochApply: e - 5},
			{Epoch: e - 4, Gate: "ad_contextual", Action: "enter", IntentID: "adctx-9996", Reason: "contextual readiness 6/6",
				MetricsSummary: json.RawMessage(`{"ready_ppm":1000000,"streak_windows":6}`), MetricsRaw: json.RawMessage(`{"cohorts":[12,7,3],"score":0.875}`),
				ParamsPatch: json.RawMessage(`{"ad_contextual_enabled":true}`), State: "applied", EpochApply: e - 3},
			{Epoch: e - 2, Gate: "economics", Action: "enter", IntentID: "econ-9998", Reason: "economics inside band 3/3",
				Sample:      sample(48_120, 1_250_000, 37_500, 612_000),
				MetricsRaw:  json.RawMessage(`{"receipts":4812,"fee_mean":0.25,"reward_ratio":3.0,"note":"größe <b>&amp;</b> ✓","tab":"a\tb"}`),
				ParamsPatch: json.RawMessage(`{"block_reward_per_block":12,"treasury_share_ppm":50000}`), State: "applied", EpochApply: e - 1},
			{Epoch: e, Gate: "naming", Action: "rehearsal", IntentID: "naming-10000", Reason: "rehearsal window",
				MetricsSummary: json.RawMessage(`{}`), MetricsRaw: json.RawMessage("null"), ParamsPatch: json.RawMessage(`{}`), State: "pending", EpochApply: e + 2, WithHash: true},
		},
		Ad: GovernorAd{
			QualityMultiplierPPM:   map[string]int64{"freshness": 980_000, "privacy": 995_000, "readiness": 1_000_000, "overall": 975_100},
			ReadinessStreakWindows: 6,
			FreshnessScorePPM:      map[string]int64{"lt_1h": 990_000, "1h_24h": 870_000, "gt_24h": 410_000},
			PrivacyScorePPM:        930_000,
			ComputeUnitPriceMicros: 1_850,
			CostBasisMicros:        map[string]int64{"bandwidth": 420, "verifier": 160, "host": 270, "total": 850},
			GateReadyPPM:           map[string]int64{"contextual": 1_000_000, "presence": 333_333},
		},
	}
}

func governorScenarios() map[string]func(time.Time) Scenario {
	return map[string]func(time.Time) Scenario{
		"governor-healthy": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "governor-healthy", "governor applying; status, intents, files, gauges and ad gates all agree"
			return s
		},
		"governor-hash-mismatch": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "governor-hash-mismatch", "the governor evaluated a different economics sample than its decision file holds: status, intent and stored hashes disagree with the file"
			g := &s.Governor
			for i := range g.Decisions {
				d := &g.Decisions[i]
				if d.Gate != "economics" {
					continue
				}
				// The sample the governor replayed: one more transaction.
				other := *d
				smp := *d.Sample
				smp.EpochTxCount++
				other.Sample = &smp
				h, _ := simDecisionHash(other)
				g.StatusHash, d.IntentHash, d.StoredHash = h, h, h
			}
			return s
		},
		"governor-gauge-drift": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "governor-gauge-drift", "economics gauges no longer mirror the sample the governor evaluated"
			s.Governor.GaugeDrift = map[string]float64{"economics_epoch_tx_count": 250, "economics_prev_market_metrics_utilization_ppm": 15_000}
			return s
		},
		"governor-telemetry-missing": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "governor-telemetry-missing", "the node runs but exports none of the economics_* gauges the audit compares with the decision files"
			s.Governor.NoEconomicsGauges = true
			return s
		},
		"governor-shadow-mode": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "governor-shadow-mode", "governor in shadow mode: intents and hashes flow, the economics gate has not entered"
			g := &s.Governor
			g.ShadowOnly, g.EconomicsAutopilot = true, false
			for i := range g.Gates {
				if g.Gates[i].Name == "economics" {
					g.Gates[i] = GovernorGate{Name: "economics", State: "inactive", EnterStreak: 2, StreakRequired: 3, LastReason: "shadow: streak building"}
				}
			}
			for i := range g.Decisions {
				if g.Decisions[i].Gate == "economics" {
					g.Decisions[i].State, g.Decisions[i].Reason = "pending", "economics inside band 2/3 (shadow)"
				}
			}
			return s
		},
		"governor-reference": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "governor-reference", "the reference node's governor wire shapes (PROTOCOL.md section 9)"
			s.Governor.Reference = true
			return s
		},
	}
}

// simDecisionObject is the decision as a JSON tree with number literals kept.
func simDecisionObject(d GovernorDecision, reference bool) (map[string]any, error) {
	gate := d.Gate
	if reference {
		gate = refGateName(gate)
	}
	obj := map[string]any{"action": d.Action, "epoch": json.Number(strconv.FormatInt(d.Epoch, 10)), "gate": gate,
		"intent_id": d.IntentID, "reason": d.Reason}
	parse := func(key string, raw json.RawMessage, def string) error {
		if len(raw) == 0 {
			raw = json.RawMessage(def)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("decision epoch %d %s: %w", d.Epoch, key, err)
		}
		obj[key] = v
		return nil
	}
	summary := d.MetricsSummary
	if d.Sample != nil {
		summary = rawJSON(d.Sample)
	}
	if err := parse("metrics_summary", summary, "null"); err != nil {
		return nil, err
	}
	if err := parse("metrics_raw", d.MetricsRaw, "null"); err != nil {
		return nil, err
	}
	if err := parse("params_patch", d.ParamsPatch, "{}"); err != nil {
		return nil, err
	}
	return obj, nil
}

// simDecisionHash is the snapshot hash of a decision (without snapshot_hash).
func simDecisionHash(d GovernorDecision) (string, error) {
	return simDecisionHashRef(d, false)
}

func simDecisionHashRef(d GovernorDecision, reference bool) (string, error) {
	obj, err := simDecisionObject(d, reference)
	if err != nil {
		return "", err
	}
	enc, err := simCanonical(obj)
	if err != nil {
		return "", err
	}
	sum := blake3.Sum256(enc)
	return hex.EncodeToString(sum[:]), nil
}

// simCanonical is the sim's own canonical JSON encoder (PROTOCOL.md section 6)
// for the trees simDecisionObject builds.
func simCanonical(v any) ([]byte, error) {
	var b bytes.Buffer
	var enc func(v any) error
	enc = func(v any) error {
		switch x := v.(type) {
		case nil:
			b.WriteString("null")
		case bool:
			b.WriteString(strconv.FormatBool(x))
		case json.Number:
			b.WriteString(string(x))
		case string:
			if !utf8.ValidString(x) {
				return fmt.Errorf("invalid UTF-8 in %q", x)
			}
			b.WriteByte('"')
			for _, r := range x {
				switch {
				case r == '"':
					b.WriteString(`\"`)
				case r == '\\':
					b.WriteString(`\\`)
				case r == '\n':
					b.WriteString(`\n`)
				case r == '\r':
					b.WriteString(`\r`)
				case r == '\t':
					b.WriteString(`\t`)
				case r < 0x20 || (r >= 0x7F && r <= 0x9F):
					fmt.Fprintf(&b, `\u%04X`, r)
				default:
					b.WriteRune(r)
				}
			}
			b.WriteByte('"')
		case []any:
			b.WriteByte('[')
			for i, e := range x {
				if i > 0 {
					b.WriteByte(',')
				}
				if err := enc(e); err != nil {
					return err
				}
			}
			b.WriteByte(']')
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteByte(',')
				}
				if err := enc(k); err != nil {
					return err
				}
				b.WriteByte(':')
				if err := enc(x[k]); err != nil {
					return err
				}
			}
			b.WriteByte('}')
		default:
			return fmt.Errorf("sim canonical JSON: unsupported %T", v)
		}
		return nil
	}
	err := enc(v)
	return b.Bytes(), err
}

func refGateName(g string) string {
	if rest, ok := strings.CutPrefix(g, "ad_"); ok {
		return "ad_targeting_" + rest
	}
	return g
}

// governorKey is the sim's fixed Ed25519 key for decision sidecars.
func governorKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("tbops nodetest governor decision key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// GovernorPublicKey is the key the simulated node signs decision files with.
func GovernorPublicKey() ed25519.PublicKey { return governorKey().Public().(ed25519.PublicKey) }

// GovernorFileName is a decision file's name: epoch-{E}.json, E zero-padded to 20 digits.
func GovernorFileName(epoch int64) string { return fmt.Sprintf("epoch-%020d.json", epoch) }

// writeDecisionFile writes one decision canonically, and its sidecar.
func writeDecisionFile(dir string, d GovernorDecision, reference, unsigned bool) error {
	obj, err := simDecisionObject(d, reference)
	if err != nil {
		return err
	}
	hash, err := simDecisionHashRef(d, reference)
	if err != nil {
		return err
	}
	switch {
	case d.StoredHash != "":
		obj["snapshot_hash"] = d.StoredHash
	case d.WithHash && !reference:
		obj["snapshot_hash"] = hash
	}
	enc, err := simCanonical(obj)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, GovernorFileName(d.Epoch))
	if err := os.WriteFile(path, enc, 0o644); err != nil {
		return err
	}
	if unsigned {
		return nil
	}
	digest, _ := hex.DecodeString(hash)
	key := governorKey()
	sig := map[string]string{"payload_hash_hex": hash, "pubkey_hex": hex.EncodeToString(GovernorPublicKey()),
		"signature_hex": hex.EncodeToString(ed25519.Sign(key, digest))}
	return os.WriteFile(path+".sig", rawJSON(sig), 0o644)
}

// governorFiles is the node's data directory, created (with the decision
// files in it) on first use so that nodes that never touch the governor write
// nothing.
type governorFiles struct {
	mu      sync.Mutex
	dir     string
	written bool
	closed  bool
	err     error
}

// governorDir returns the data directory, creating it and writing the decision
// files of s on first use. Call it under n.mu (inside n.view).
func (n *Node) governorDir(s *Scenario) (string, error) {
	g := n.gov
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.written || g.err != nil || g.closed {
		return g.dir, g.err
	}
	dir, err := os.MkdirTemp("", "tbops-nodetest-")
	if err != nil {
		g.err = fmt.Errorf("nodetest: data directory: %w", err)
		return "", g.err
	}
	g.dir = dir
	g.err = writeGovernorFiles(dir, s)
	g.written = true
	return g.dir, g.err
}

// DataDir is the node's data directory: decision files are under
// DataDir()/governor/decisions. It is created on first use and removed when
// the node closes.
func (n *Node) DataDir() string {
	var dir string
	n.view(func(s *Scenario, now time.Time) { dir, _ = n.governorDir(s) })
	return dir
}

// GovernorDecisionsDir is DataDir()/governor/decisions.
func (n *Node) GovernorDecisionsDir() string { return decisionsDir(n.DataDir()) }

func decisionsDir(dataDir string) string { return filepath.Join(dataDir, "governor", "decisions") }

// WriteGovernorFiles rewrites the decision files from the current scenario
// (after an Update that changed decisions).
func (n *Node) WriteGovernorFiles() error {
	var err error
	n.view(func(s *Scenario, now time.Time) {
		var dir string
		if dir, err = n.governorDir(s); err == nil {
			err = writeGovernorFiles(dir, s)
		}
	})
	return err
}

func writeGovernorFiles(dataDir string, s *Scenario) error {
	dir := decisionsDir(dataDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("nodetest: %w", err)
	}
	for _, d := range s.Governor.Decisions {
		if err := writeDecisionFile(dir, d, s.Governor.Reference, s.Governor.Unsigned); err != nil {
			return fmt.Errorf("nodetest: decision file for epoch %d: %w", d.Epoch, err)
		}
	}
	return nil
}

// latestEconomics is the newest economics decision, or nil.
func (g *GovernorState) latestEconomics() *GovernorDecision {
	var best *GovernorDecision
	for i := range g.Decisions {
		d := &g.Decisions[i]
		if d.Gate == "economics" && d.Sample != nil && (best == nil || d.Epoch > best.Epoch) {
			best = d
		}
	}
	return best
}

func governorMetrics(sc *Scenario, now time.Time, el float64) []Metric {
	g := &sc.Governor
	var out []Metric
	if d := g.latestEconomics(); d != nil && !g.NoEconomicsGauges {
		s := d.Sample
		gauge := func(name string, v float64) Metric { return Gauge(name, nil, v+g.GaugeDrift[name]) }
		out = append(out,
			gauge("economics_epoch_tx_count", float64(s.EpochTxCount)),
			gauge("economics_epoch_tx_volume_block", float64(s.EpochTxVolume)),
			gauge("economics_epoch_treasury_inflow_block", float64(s.EpochTreasuryInflow)),
			gauge("economics_block_reward_per_block", float64(s.BlockReward)))
		util := Metric{Name: "economics_prev_market_metrics_utilization_ppm", Type: "gauge"}
		margin := Metric{Name: "economics_prev_market_metrics_provider_margin_ppm", Type: "gauge"}
		for _, m := range sortedKeys(s.MarketMetrics) {
			mm := s.MarketMetrics[m]
			util.Series = append(util.Series, Series{Labels: map[string]string{"market": m}, Value: float64(mm.UtilizationPPM) + g.GaugeDrift[util.Name]})
			margin.Series = append(margin.Series, Series{Labels: map[string]string{"market": m}, Value: float64(mm.ProviderMarginPPM) + g.GaugeDrift[margin.Name]})
		}
		if len(util.Series) > 0 {
			out = append(out, util, margin)
		}
	}
	a := g.Ad
	byLabel := func(name, label string, m map[string]int64) {
		if len(m) == 0 {
			return
		}
		met := Metric{Name: name, Type: "gauge"}
		for _, k := range sortedKeys(m) {
			met.Series = append(met.Series, Series{Labels: map[string]string{label: k}, Value: float64(m[k])})
		}
		out = append(out, met)
	}
	byLabel("ad_quality_multiplier_ppm", "component", a.QualityMultiplierPPM)
	byLabel("ad_quality_freshness_score_ppm", "presence_bucket", a.FreshnessScorePPM)
	byLabel("ad_cost_basis_usd_micros", "component", a.CostBasisMicros)
	byLabel("ad_gate_ready_ppm", "tier", a.GateReadyPPM)
	streaks := a.GateStreakWindows
	if streaks == nil {
		streaks = map[string]int64{}
		for _, gt := range g.Gates {
			if tier, ok := strings.CutPrefix(gt.Name, "ad_"); ok {
				streaks[tier] = gt.EnterStreak
			}
		}
	}
	byLabel("ad_gate_streak_windows", "tier", streaks)
	if a.QualityMultiplierPPM != nil {
		out = append(out,
			Gauge("ad_quality_readiness_streak_windows", nil, float64(a.ReadinessStreakWindows)),
			Gauge("ad_quality_privacy_score_ppm", nil, float64(a.PrivacyScorePPM)),
			Gauge("ad_compute_unit_price_usd_micros", nil, float64(a.ComputeUnitPriceMicros)))
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// intentWire is an intent on the wire (reference: snapshot_hash_hex).
func intentWire(d GovernorDecision, reference bool) (map[string]any, error) {
	h := d.IntentHash
	if h == "" {
		var err error
		if h, err = simDecisionHashRef(d, reference); err != nil {
			return nil, err
		}
	}
	patch := d.ParamsPatch
	if len(patch) == 0 {
		patch = json.RawMessage("{}")
	}
	out := map[string]any{"id": d.IntentID, "gate": d.Gate, "action": d.Action, "epoch": d.Epoch, "epoch_apply": d.EpochApply,
		"state": d.State, "reason": d.Reason, "params_patch": patch}
	if reference {
		out["gate"] = refGateName(d.Gate)
		out["snapshot_hash_hex"] = h
	} else {
		out["snapshot_hash"] = h
	}
	return out, nil
}

func (n *Node) registerGovernor() {
	n.gov = &governorFiles{}
	n.onClose(func() {
		g := n.gov
		g.mu.Lock()
		defer g.mu.Unlock()
		g.closed = true
		if g.dir != "" {
			_ = os.RemoveAll(g.dir)
		}
	})
	methodNotFound := func(m string) error {
		return &rpc.Error{Code: rpc.CodeMethodNotFound, Message: "method not found: " + m}
	}
	intents := func(g *GovernorState, gate string) ([]map[string]any, error) {
		out := []map[string]any{}
		for _, d := range g.Decisions {
			if d.IntentID == "" || (gate != "" && d.Gate != gate) {
				continue
			}
			w, err := intentWire(d, g.Reference)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
		}
		return out, nil
	}
	n.handle("governor.status", func(ctx context.Context, params json.RawMessage) (any, error) {
		var out map[string]any
		var err error
		n.view(func(s *Scenario, now time.Time) {
			g := &s.Governor
			out = map[string]any{"enabled": g.Enabled, "shadow_only": g.ShadowOnly,
				"epoch": s.Chain.HeightAt(n.elapsed(now)) / 120, "window_secs": g.WindowSecs}
			var hash any
			util, margin := map[string]int64{}, map[string]int64{}
			var prev []map[string]any
			var sample any
			if d := g.latestEconomics(); d != nil {
				h, herr := simDecisionHashRef(*d, g.Reference)
				if herr != nil {
					err = herr
					return
				}
				hash = h
				for _, m := range sortedKeys(d.Sample.MarketMetrics) {
					mm := d.Sample.MarketMetrics[m]
					util[m], margin[m] = mm.UtilizationPPM, mm.ProviderMarginPPM
					prev = append(prev, map[string]any{"market": m, "utilization_ppm": mm.UtilizationPPM, "provider_margin_ppm": mm.ProviderMarginPPM})
				}
				sample = map[string]any{"epoch_tx_count": d.Sample.EpochTxCount, "epoch_tx_volume": d.Sample.EpochTxVolume,
					"epoch_treasury_inflow": d.Sample.EpochTreasuryInflow, "block_reward": d.Sample.BlockReward}
			}
			if g.StatusHash != "" {
				hash = g.StatusHash
			}
			out["last_economics_snapshot_hash"] = hash
			out["economics_sample"] = sample
			gates := []map[string]any{}
			for _, gt := range g.Gates {
				name := gt.Name
				if g.Reference {
					name = refGateName(name)
				}
				gates = append(gates, map[string]any{"name": name, "state": gt.State, "enter_streak": gt.EnterStreak,
					"exit_streak": gt.ExitStreak, "streak_required": gt.StreakRequired, "last_reason": gt.LastReason})
			}
			out["gates"] = gates
			pending := []map[string]any{}
			all, ierr := intents(g, "")
			if ierr != nil {
				err = ierr
				return
			}
			for _, in := range all {
				if in["state"] == "pending" {
					pending = append(pending, in)
				}
			}
			out["pending"] = pending
			if g.Reference {
				out["autopilot_enabled"] = g.EconomicsAutopilot
				out["economics_prev_market_metrics"] = prev
			} else {
				out["economics_autopilot"] = g.EconomicsAutopilot
				out["telemetry_gauges_ppm"] = map[string]any{"utilization": util, "provider_margin": margin}
			}
		})
		return out, err
	})
	n.handle("governor.intents", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Gate  string `json:"gate"`
			Limit int    `json:"limit"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if _, err := listLimit(p.Limit); err != nil {
			return nil, err
		}
		var out []map[string]any
		var err error
		n.view(func(s *Scenario, now time.Time) {
			if s.Governor.Reference {
				err = methodNotFound("governor.intents")
				return
			}
			out, err = intents(&s.Governor, p.Gate)
		})
		if err == nil && p.Limit > 0 && len(out) > p.Limit {
			out = out[:p.Limit]
		}
		return map[string]any{"intents": out}, err
	})
	n.handle("governor.decisions", func(ctx context.Context, params json.RawMessage) (any, error) {
		var out []map[string]any
		var err error
		n.view(func(s *Scenario, now time.Time) {
			if !s.Governor.Reference {
				err = methodNotFound("governor.decisions")
				return
			}
			out, err = intents(&s.Governor, "")
		})
		return out, err
	})
	n.handle("governor.snapshot", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Epoch *int64 `json:"epoch"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.Epoch == nil || *p.Epoch < 0 {
			return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: `param "epoch" is required (a non-negative integer)`}
		}
		var raw []byte
		var path string
		var err error
		n.view(func(s *Scenario, now time.Time) {
			var dir string
			if dir, err = n.governorDir(s); err != nil {
				return
			}
			path = filepath.Join(decisionsDir(dir), GovernorFileName(*p.Epoch))
			raw, err = os.ReadFile(path)
		})
		if errors.Is(err, os.ErrNotExist) {
			return nil, &rpc.Error{Code: rpc.CodeNotFound, Message: fmt.Sprintf("no decision for epoch %d", *p.Epoch)}
		}
		if err != nil {
			return nil, err
		}
		// Answer the file's object plus an attestation (the sidecar), re-encoded
		// by encoding/json: the client must re-canonicalize, not hash bytes.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("decision file %s: %v", path, err)
		}
		if sig, err := os.ReadFile(path + ".sig"); err == nil {
			obj["attestation"] = json.RawMessage(sig)
		}
		return obj, nil
	})
	n.handle("governor.submit_intent", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Gate   string `json:"gate"`
			Action string `json:"action"`
			Reason string `json:"reason"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.Action != "exit" {
			return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: fmt.Sprintf(`param "action": %q, want "exit"`, p.Action)}
		}
		if strings.TrimSpace(p.Reason) == "" {
			return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: `param "reason" is required`}
		}
		var out map[string]any
		var err error
		n.view(func(s *Scenario, now time.Time) {
			g := &s.Governor
			gate := strings.Replace(p.Gate, "ad_targeting_", "ad_", 1)
			known := false
			for _, gt := range g.Gates {
				known = known || gt.Name == gate
			}
			if !known {
				err = &rpc.Error{Code: rpc.CodeInvalidParams, Message: fmt.Sprintf(`param "gate": unknown gate %q`, p.Gate)}
				return
			}
			epoch := s.Chain.HeightAt(n.elapsed(now)) / 120
			for _, d := range g.Decisions {
				if d.Epoch >= epoch {
					epoch = d.Epoch + 1
				}
			}
			d := GovernorDecision{Epoch: epoch, Gate: gate, Action: "exit", IntentID: fmt.Sprintf("%s-exit-%d", gate, epoch), Reason: p.Reason,
				MetricsSummary: rawJSON(map[string]any{"requested_by": "governor.submit_intent"}), MetricsRaw: json.RawMessage("null"),
				ParamsPatch: json.RawMessage("{}"), State: "pending", EpochApply: epoch + 1}
			g.Decisions = append(g.Decisions, d)
			// The first use writes every decision, this one included.
			wasWritten := n.gov.written
			var dir string
			if dir, err = n.governorDir(s); err == nil && wasWritten {
				err = writeDecisionFile(decisionsDir(dir), d, g.Reference, g.Unsigned)
			}
			if err != nil {
				g.Decisions = g.Decisions[:len(g.Decisions)-1]
				return
			}
			out, err = intentWire(d, g.Reference)
		})
		return out, err
	})
}
