package governor

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Decision keys every decision file (and governor.snapshot answer) carries.
var decisionKeys = []string{"action", "epoch", "gate", "intent_id", "metrics_raw", "metrics_summary", "params_patch", "reason"}

// Decision is one parsed decision object: a file
// governor/decisions/epoch-{E}.json or a governor.snapshot answer.
type Decision struct {
	Epoch    uint64
	Gate     string // normalised: ad_targeting_* becomes ad_*
	Action   string
	IntentID string
	Reason   string
	// StoredHash is the snapshot_hash key inside the object; "" when absent (the
	// reference node's files have none).
	StoredHash string
	// Object is the whole parsed object, numbers as [Number] literals; the hash
	// is computed from it.
	Object map[string]any
}

// DecisionError is a decision object that is valid JSON but not a decision.
type DecisionError struct {
	Key string
	Msg string
}

func (e *DecisionError) Error() string { return fmt.Sprintf("decision key %q: %s", e.Key, e.Msg) }

// ParseDecision parses a decision object strictly ([Parse]) and checks that it
// carries the eight decision keys with the right types (extra keys are kept and
// hashed). A snapshot_hash key, when present, must be 64 hex digits.
func ParseDecision(data []byte) (Decision, error) {
	v, err := Parse(data)
	if err != nil {
		return Decision{}, err
	}
	return DecisionFromValue(v)
}

// DecisionFromValue checks a parsed value as [ParseDecision] does.
func DecisionFromValue(v any) (Decision, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return Decision{}, errNotObject
	}
	d := Decision{Object: obj}
	for _, k := range decisionKeys {
		if _, ok := obj[k]; !ok {
			return Decision{}, &DecisionError{Key: k, Msg: "missing"}
		}
	}
	str := func(k string, dst *string) error {
		s, ok := obj[k].(string)
		if !ok {
			return &DecisionError{Key: k, Msg: fmt.Sprintf("want a string, got %s", typeName(obj[k]))}
		}
		*dst = s
		return nil
	}
	for k, dst := range map[string]*string{"action": &d.Action, "gate": &d.Gate, "intent_id": &d.IntentID, "reason": &d.Reason} {
		if err := str(k, dst); err != nil {
			return Decision{}, err
		}
	}
	d.Gate = NormalizeGate(d.Gate)
	n, ok := obj["epoch"].(Number)
	if !ok {
		return Decision{}, &DecisionError{Key: "epoch", Msg: fmt.Sprintf("want an integer, got %s", typeName(obj["epoch"]))}
	}
	e, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		return Decision{}, &DecisionError{Key: "epoch", Msg: fmt.Sprintf("want a non-negative integer, got %s", n)}
	}
	d.Epoch = e
	if h, present := obj[KeySnapshotHash]; present {
		s, ok := h.(string)
		if !ok {
			return Decision{}, &DecisionError{Key: KeySnapshotHash, Msg: fmt.Sprintf("want a hex string, got %s", typeName(h))}
		}
		if _, err := ParseDigest(s); err != nil {
			return Decision{}, &DecisionError{Key: KeySnapshotHash, Msg: err.Error()}
		}
		d.StoredHash = strings.ToLower(s)
	}
	return d, nil
}

// Hash is the decision's snapshot hash (lower-case hex).
func (d Decision) Hash() (string, error) { return SnapshotHash(d.Object) }

// MarketMetrics is one market's entry of the economics sample.
type MarketMetrics struct {
	UtilizationPPM    float64 `json:"utilization_ppm"`
	ProviderMarginPPM float64 `json:"provider_margin_ppm"`
}

// EconomicsSample is the economics gate's metrics_summary: what the Prometheus
// economics_* gauges mirror. Amounts are whole BLOCK (PROTOCOL.md section 6).
type EconomicsSample struct {
	EpochTxCount        float64                  `json:"epoch_tx_count"`
	EpochTxVolume       float64                  `json:"epoch_tx_volume"`
	EpochTreasuryInflow float64                  `json:"epoch_treasury_inflow"`
	BlockReward         float64                  `json:"block_reward"`
	MarketMetrics       map[string]MarketMetrics `json:"market_metrics"`
}

// Economics reads the economics sample from metrics_summary. It fails (naming
// the key) when metrics_summary is not an object or a field is missing or not a
// number; market_metrics may be absent (then empty).
func (d Decision) Economics() (EconomicsSample, error) {
	ms, ok := d.Object["metrics_summary"].(map[string]any)
	if !ok {
		return EconomicsSample{}, &DecisionError{Key: "metrics_summary", Msg: fmt.Sprintf("want an object, got %s", typeName(d.Object["metrics_summary"]))}
	}
	var s EconomicsSample
	for k, dst := range map[string]*float64{"epoch_tx_count": &s.EpochTxCount, "epoch_tx_volume": &s.EpochTxVolume,
		"epoch_treasury_inflow": &s.EpochTreasuryInflow, "block_reward": &s.BlockReward} {
		f, err := numberAt(ms, k)
		if err != nil {
			return EconomicsSample{}, &DecisionError{Key: "metrics_summary." + k, Msg: err.Error()}
		}
		*dst = f
	}
	s.MarketMetrics = map[string]MarketMetrics{}
	mm, present := ms["market_metrics"]
	if !present || mm == nil {
		return s, nil
	}
	markets, ok := mm.(map[string]any)
	if !ok {
		return EconomicsSample{}, &DecisionError{Key: "metrics_summary.market_metrics", Msg: fmt.Sprintf("want an object, got %s", typeName(mm))}
	}
	for market, v := range markets {
		m, ok := v.(map[string]any)
		if !ok {
			return EconomicsSample{}, &DecisionError{Key: "metrics_summary.market_metrics." + market, Msg: "want an object"}
		}
		var x MarketMetrics
		var err error
		if x.UtilizationPPM, err = numberAt(m, "utilization_ppm"); err != nil {
			return EconomicsSample{}, &DecisionError{Key: "metrics_summary.market_metrics." + market + ".utilization_ppm", Msg: err.Error()}
		}
		if x.ProviderMarginPPM, err = numberAt(m, "provider_margin_ppm"); err != nil {
			return EconomicsSample{}, &DecisionError{Key: "metrics_summary.market_metrics." + market + ".provider_margin_ppm", Msg: err.Error()}
		}
		s.MarketMetrics[market] = x
	}
	return s, nil
}

// Markets returns the sample's markets, sorted.
func (s EconomicsSample) Markets() []string {
	out := make([]string, 0, len(s.MarketMetrics))
	for m := range s.MarketMetrics {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func numberAt(m map[string]any, k string) (float64, error) {
	v, ok := m[k]
	if !ok {
		return 0, errors.New("missing")
	}
	n, ok := v.(Number)
	if !ok {
		return 0, fmt.Errorf("want a number, got %s", typeName(v))
	}
	return n.Float()
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
