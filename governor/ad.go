package governor

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Ad-market metric names (PROTOCOL.md section 7).
const (
	MetricAdQualityMultiplier = "ad_quality_multiplier_ppm"           // {component}
	MetricAdReadinessStreak   = "ad_quality_readiness_streak_windows" // –
	MetricAdFreshnessScore    = "ad_quality_freshness_score_ppm"      // {presence_bucket}
	MetricAdPrivacyScore      = "ad_quality_privacy_score_ppm"        // –
	MetricAdComputeUnitPrice  = "ad_compute_unit_price_usd_micros"    // –
	MetricAdCostBasis         = "ad_cost_basis_usd_micros"            // {component}
	MetricAdGateReady         = "ad_gate_ready_ppm"                   // {tier}
	MetricAdGateStreak        = "ad_gate_streak_windows"              // {tier}

	TierContextual = "contextual"
	TierPresence   = "presence"

	adTierGatePrefix = "ad_"
)

// TierGate is the governor gate of an ad tier: contextual → ad_contextual.
func TierGate(tier string) string { return adTierGatePrefix + tier }

// AdSignals are the ad market's quality and cost signals. Maps are keyed by the
// label value; a scalar is nil when the metric was missing (never zero).
type AdSignals struct {
	QualityMultiplierPPM map[string]float64 `json:"quality_multiplier_ppm"` // by component
	ReadinessStreak      *float64           `json:"readiness_streak_windows"`
	FreshnessScorePPM    map[string]float64 `json:"freshness_score_ppm"` // by presence_bucket
	PrivacyScorePPM      *float64           `json:"privacy_score_ppm"`
	ComputeUnitPrice     *float64           `json:"compute_unit_price_usd_micros"`
	CostBasis            map[string]float64 `json:"cost_basis_usd_micros"` // by component
	GateReadyPPM         map[string]float64 `json:"gate_ready_ppm"`        // by tier
	GateStreakWindows    map[string]float64 `json:"gate_streak_windows"`   // by tier
	// Missing names the metrics the source had no series for.
	Missing  []string         `json:"missing,omitempty"`
	Evidence []tbops.Evidence `json:"evidence"`
}

// ReadAdSignals reads every ad_* metric from src (instant values).
func ReadAdSignals(ctx context.Context, src promq.Source) (AdSignals, error) {
	var s AdSignals
	byLabel := func(metric, label string) (map[string]float64, error) {
		res, err := src.Instant(ctx, promq.Select(metric))
		if err != nil {
			return nil, err
		}
		s.Evidence = append(s.Evidence, res.Evidence)
		if len(res.Vector) == 0 {
			s.Missing = append(s.Missing, metric)
			return nil, nil
		}
		return res.ByLabel(label), nil
	}
	scalar := func(metric string) (*float64, error) {
		res, err := src.Instant(ctx, promq.Select(metric))
		if err != nil {
			return nil, err
		}
		s.Evidence = append(s.Evidence, res.Evidence)
		v, ok := res.Value()
		if !ok {
			s.Missing = append(s.Missing, metric)
			return nil, nil
		}
		return &v, nil
	}
	var err error
	if s.QualityMultiplierPPM, err = byLabel(MetricAdQualityMultiplier, "component"); err != nil {
		return s, err
	}
	if s.ReadinessStreak, err = scalar(MetricAdReadinessStreak); err != nil {
		return s, err
	}
	if s.FreshnessScorePPM, err = byLabel(MetricAdFreshnessScore, "presence_bucket"); err != nil {
		return s, err
	}
	if s.PrivacyScorePPM, err = scalar(MetricAdPrivacyScore); err != nil {
		return s, err
	}
	if s.ComputeUnitPrice, err = scalar(MetricAdComputeUnitPrice); err != nil {
		return s, err
	}
	if s.CostBasis, err = byLabel(MetricAdCostBasis, "component"); err != nil {
		return s, err
	}
	if s.GateReadyPPM, err = byLabel(MetricAdGateReady, "tier"); err != nil {
		return s, err
	}
	if s.GateStreakWindows, err = byLabel(MetricAdGateStreak, "tier"); err != nil {
		return s, err
	}
	return s, nil
}

// TierCheck compares one ad tier's readiness metrics with its governor gate.
// A value that was missing is nil (JSON null), never zero.
type TierCheck struct {
	Tier     string   `json:"tier"`
	Gate     string   `json:"gate"`
	ReadyPPM *float64 `json:"ready_ppm"`
	// MetricStreak is ad_gate_streak_windows{tier}; GateStreak the gate's enter
	// streak in governor.status.
	MetricStreak   *float64 `json:"metric_streak"`
	GateStreak     *int64   `json:"gate_streak"`
	StreakRequired *int64   `json:"streak_required"`
	GateState      string   `json:"gate_state,omitempty"`
	// Known is false when the metric or the gate was missing.
	Known bool `json:"known"`
	// Match says the metric streak equals the gate's enter streak.
	Match bool `json:"match"`
	// Ready says the tier may apply: the streak reached the required one.
	Ready   bool   `json:"ready"`
	Missing string `json:"missing,omitempty"`
}

// String prints the check for a person.
func (t TierCheck) String() string {
	if !t.Known {
		return fmt.Sprintf("%s: not checked (%s)", t.Tier, t.Missing)
	}
	return fmt.Sprintf("%s: ready %s, metric streak %s windows; gate %s %s, enter streak %d/%d",
		t.Tier, tbops.PPM(int64(*t.ReadyPPM)), strconv.FormatFloat(*t.MetricStreak, 'f', -1, 64), t.Gate, t.GateState, *t.GateStreak, *t.StreakRequired)
}

// CheckTiers compares ad_gate_ready_ppm and ad_gate_streak_windows per tier with
// the ad_contextual and ad_presence gates of st: the readiness streak the
// metrics show must be the gate's enter streak. Tiers are those of the two
// gates plus any other tier label the metrics carry, sorted.
func CheckTiers(s AdSignals, st Status) []TierCheck {
	tiers := map[string]bool{TierContextual: true, TierPresence: true}
	for t := range s.GateStreakWindows {
		tiers[t] = true
	}
	names := make([]string, 0, len(tiers))
	for t := range tiers {
		names = append(names, t)
	}
	sort.Strings(names)
	out := make([]TierCheck, 0, len(names))
	for _, tier := range names {
		c := TierCheck{Tier: tier, Gate: TierGate(tier)}
		g, gok := st.Gate(c.Gate)
		if gok {
			c.GateStreak, c.StreakRequired, c.GateState = &g.EnterStreak, &g.StreakRequired, g.State
		}
		if v, ok := s.GateStreakWindows[tier]; ok {
			c.MetricStreak = &v
		}
		if v, ok := s.GateReadyPPM[tier]; ok {
			c.ReadyPPM = &v
		}
		switch {
		case !gok:
			c.Missing = "governor.status has no gate " + c.Gate
		case c.MetricStreak == nil:
			c.Missing = fmt.Sprintf("no %s{tier=%q}", MetricAdGateStreak, tier)
		case c.ReadyPPM == nil:
			c.Missing = fmt.Sprintf("no %s{tier=%q}", MetricAdGateReady, tier)
		default:
			c.Known = true
			c.Match = *c.MetricStreak == float64(g.EnterStreak)
			c.Ready = g.StreakRequired > 0 && int64(*c.MetricStreak) >= g.StreakRequired
		}
		out = append(out, c)
	}
	return out
}
