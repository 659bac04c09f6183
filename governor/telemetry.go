package governor

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// scrapeView is what the audit read from the metrics source, before it asked
// the node anything.
type scrapeView struct {
	// epoch is the node's epoch at the scrape the gauges came from, at least:
	// its block height, read before them, over tbops.EpochBlocks (heights only
	// grow). epochKnown is false when no block height was scraped.
	epoch      uint64
	epochKnown bool
	// gauges are the economics_* answers by metric name (absent: the read failed).
	gauges map[string]promq.Result
	ad     AdSignals
	adErr  error
}

// economicsGauges are the gauges that mirror the economics sample, in report order.
var economicsGauges = []string{MetricEpochTxCount, MetricEpochTxVolume, MetricEpochTreasuryInflow, MetricBlockReward,
	MetricPrevUtilization, MetricPrevProviderMargin}

// readMetrics reads the block height, the economics gauges and the ad signals.
// The audit reads them before the node, so each gauge is at most as new as the
// node's answers it is compared with, and the block height read first bounds
// from below the epoch the gauges were scraped in.
func (a *auditor) readMetrics() {
	if a.src == nil {
		return
	}
	m := &a.metrics
	m.epoch, m.epochKnown = a.scrapeEpoch()
	m.gauges = map[string]promq.Result{}
	for _, name := range economicsGauges {
		res, err := a.src.Instant(a.ctx, promq.Select(name))
		if err != nil {
			a.r.Warnf("%s: %v", name, err)
			continue
		}
		for _, w := range res.Warnings {
			a.r.Warnf("%s", w)
		}
		m.gauges[name] = res
	}
	if m.ad, m.adErr = ReadAdSignals(a.ctx, a.src); m.adErr != nil {
		a.r.Warnf("ad signals: %v", m.adErr)
	}
}

// scrapeEpoch is the epoch of the node's newest block height sample
// (block_height_total, else the reference node's block_height).
func (a *auditor) scrapeEpoch() (uint64, bool) {
	for _, name := range []string{MetricBlockHeight, MetricBlockHeightRef} {
		res, err := a.src.Instant(a.ctx, promq.Select(name))
		if err != nil {
			a.r.Warnf("%s: %v", name, err)
			return 0, false
		}
		if v, ok := res.Value(); ok && v >= 0 {
			return uint64(v) / tbops.EpochBlocks, true
		}
	}
	return 0, false
}

// loadSample reads the economics sample of the newest economics decision: the
// node's answer already read, or the file again (it must still hash to what
// was verified).
func (a *auditor) loadSample() {
	if a.latest == nil || a.latest.err != nil {
		return
	}
	d, err := a.latestDecision()
	if err == nil {
		var s EconomicsSample
		if s, err = d.Economics(); err == nil {
			a.sample = &s
			a.sampleSrc = a.ev(a.latest.source, a.latest.where+" .metrics_summary", s)
			return
		}
	}
	a.r.Warnf("economics sample of %s: %v", a.latest.where, err)
}

func (a *auditor) latestDecision() (Decision, error) {
	if a.latest.decision != nil {
		return *a.latest.decision, nil
	}
	d, err := ReadDecisionFile(a.latest.where)
	if err != nil {
		return d, err
	}
	if h, err := d.Hash(); err != nil || h != a.latest.hash {
		return d, fmt.Errorf("the file changed while it was audited (it hashed to %s when verified)", a.latest.hash)
	}
	return d, nil
}

// mirror is one observed value that mirrors a field of the decision sample
// (PROTOCOL.md section 6 "Gauge ↔ sample").
type mirror struct {
	what   string   // the gauge's selector, or the governor.status field
	source string   // the metrics source's name, or governor.status
	field  string   // the sample field it mirrors
	got    *float64 // nil: no data
	want   float64
	// epoch is the epoch the value was observed in, at least, when
	// epochKnown; when says so for a warning.
	epoch      uint64
	epochKnown bool
	when       string
}

// gaugeMirrors are the economics_* gauges against the sample.
func (a *auditor) gaugeMirrors(s EconomicsSample) []mirror {
	at := func(metric, market string) *float64 {
		res, ok := a.metrics.gauges[metric]
		if !ok {
			return nil
		}
		v, ok := res.Value()
		if market != "" {
			v, ok = res.ByLabel("market")[market]
		}
		if !ok {
			return nil
		}
		return &v
	}
	gauge := func(metric, market, field string, want float64) mirror {
		what := metric
		if market != "" {
			what = promq.Select(metric, "market", market).String()
		}
		return mirror{what: what, source: a.src.Name(), field: field, got: at(metric, market), want: want,
			epoch: a.metrics.epoch, epochKnown: a.metrics.epochKnown, when: a.scrapeEpochText()}
	}
	out := []mirror{
		gauge(MetricEpochTxCount, "", "epoch_tx_count", s.EpochTxCount),
		gauge(MetricEpochTxVolume, "", "epoch_tx_volume", s.EpochTxVolume),
		gauge(MetricEpochTreasuryInflow, "", "epoch_treasury_inflow", s.EpochTreasuryInflow),
		gauge(MetricBlockReward, "", "block_reward", s.BlockReward),
	}
	for _, m := range s.Markets() {
		mm := s.MarketMetrics[m]
		out = append(out,
			gauge(MetricPrevUtilization, m, "market_metrics."+m+".utilization_ppm", mm.UtilizationPPM),
			gauge(MetricPrevProviderMargin, m, "market_metrics."+m+".provider_margin_ppm", mm.ProviderMarginPPM))
	}
	return out
}

// statusMirrors are the status's telemetry_gauges_ppm and economics_sample
// against the sample: only the values the status carries.
func (a *auditor) statusMirrors(s EconomicsSample) []mirror {
	if a.statusErr != nil {
		return nil
	}
	var out []mirror
	add := func(what, field string, got, want float64) {
		out = append(out, mirror{what: "governor.status ." + what, source: "governor.status", field: field, got: &got, want: want,
			epoch: a.status.Epoch, epochKnown: true, when: fmt.Sprintf("epoch %d", a.status.Epoch)})
	}
	tg := a.status.TelemetryGaugesPPM
	for _, m := range s.Markets() {
		mm := s.MarketMetrics[m]
		if v, ok := tg.Utilization[m]; ok {
			add("telemetry_gauges_ppm.utilization."+m, "market_metrics."+m+".utilization_ppm", float64(v), mm.UtilizationPPM)
		}
		if v, ok := tg.ProviderMargin[m]; ok {
			add("telemetry_gauges_ppm.provider_margin."+m, "market_metrics."+m+".provider_margin_ppm", float64(v), mm.ProviderMarginPPM)
		}
	}
	if es := a.status.EconomicsSample; es != nil {
		add("economics_sample.epoch_tx_count", "epoch_tx_count", es.EpochTxCount, s.EpochTxCount)
		add("economics_sample.epoch_tx_volume", "epoch_tx_volume", es.EpochTxVolume, s.EpochTxVolume)
		add("economics_sample.epoch_treasury_inflow", "epoch_treasury_inflow", es.EpochTreasuryInflow, s.EpochTreasuryInflow)
		add("economics_sample.block_reward", "block_reward", es.BlockReward, s.BlockReward)
	}
	return out
}

// drift is one value that does not mirror its sample field.
type drift struct {
	Gauge       string  `json:"gauge"`
	GaugeSource string  `json:"gauge_source"`
	GaugeValue  float64 `json:"gauge_value"`
	Field       string  `json:"field"`
	FieldSource string  `json:"field_source"`
	FieldValue  float64 `json:"field_value"`
}

// num prints a float without an exponent: 1250000, 0.25.
func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func sameValue(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// checkGauges compares each economics gauge, and the status's telemetry gauges
// and economics_sample, with the field of the newest economics sample it
// mirrors. Equal values are ok whenever they were observed. A difference is a
// drift only when the value was observed in an epoch after the decision's: a
// decision of epoch E is made by the end of epoch E, and it was still the
// newest when the files were read, after the gauges and the status, so it is
// what they must mirror. Otherwise the value may predate the decision, and the
// comparison is unknown. A gauge that is absent is no data, never a drift of 0.
func (a *auditor) checkGauges() {
	s := tbops.Symptom{ID: SymGaugeDrift, Summary: "economics gauges mirror the decision sample the governor evaluated"}
	if a.sample == nil {
		s.Status = tbops.StatusUnknown
		s.Evidence = []tbops.Evidence{a.ev(sourceOf(a.opts.Dir), "newest economics decision .metrics_summary", nil)}
		a.r.Warnf("no economics decision sample to compare the gauges with")
		a.r.Symptoms = append(a.r.Symptoms, s)
		return
	}
	sample, where, epoch := *a.sample, a.latest.where, a.latest.epoch
	mirrors := a.statusMirrors(sample)
	if a.src == nil {
		a.r.Warnf("no metrics source: the economics gauges were not compared with the decision sample")
	} else {
		mirrors = append(a.gaugeMirrors(sample), mirrors...)
		for _, name := range economicsGauges {
			if res, ok := a.metrics.gauges[name]; ok {
				s.Evidence = append(s.Evidence, res.Evidence)
			}
		}
	}
	var drifts []drift
	var findings []string
	missing := []string{}
	compared, undecided := 0, 0
	for _, m := range mirrors {
		switch {
		case m.got == nil:
			missing = append(missing, m.what)
		case sameValue(*m.got, m.want):
			compared++
		case m.epochKnown && epoch < m.epoch:
			compared++
			drifts = append(drifts, drift{Gauge: m.what, GaugeSource: m.source, GaugeValue: *m.got, Field: m.field, FieldSource: where, FieldValue: m.want})
			if m.source == "governor.status" {
				s.Evidence = append(s.Evidence, a.ev(tbops.SourceRPC, m.what, *m.got))
			}
			findings = append(findings, fmt.Sprintf("DRIFT %s = %s, %s %s = %s", m.what, num(*m.got), where, m.field, num(m.want)))
		default:
			undecided++
			a.r.Warnf("%s = %s differs from %s %s = %s, but it was observed in %s and the decision is of epoch %d, so it may predate the decision: an observation in a later epoch decides it",
				m.what, num(*m.got), where, m.field, num(m.want), m.when, epoch)
		}
	}
	s.Evidence = append(s.Evidence, a.sampleSrc)
	switch {
	case len(drifts) > 0:
		s.Firing, s.Status, s.Value, s.Detail = true, tbops.StatusWarning, tbops.Num(len(drifts)), tbops.RawOf(drifts)
		s.Summary = fmt.Sprintf("%d economics gauges do not mirror the sample in %s", len(drifts), where)
		a.mismatch = true
	case a.src == nil || len(missing) > 0 || undecided > 0:
		s.Status = tbops.StatusUnknown
		s.Detail = tbops.RawOf(map[string]any{"compared": compared, "missing": missing, "undecided": undecided})
	default:
		s.Status, s.Value, s.Detail = tbops.StatusOK, tbops.Num(0), tbops.RawOf(map[string]int{"compared": compared})
	}
	a.r.Symptoms = append(a.r.Symptoms, s)
	findings = append([]string{fmt.Sprintf("sample of %s: tx count %s, volume %s BLOCK, treasury inflow %s BLOCK, block reward %s BLOCK, %d markets; %d values compared",
		where, num(sample.EpochTxCount), num(sample.EpochTxVolume), num(sample.EpochTreasuryInflow), num(sample.BlockReward), len(sample.MarketMetrics), compared)}, findings...)
	if len(missing) > 0 {
		findings = append(findings, "no data: "+strings.Join(missing, ", "))
	}
	a.r.Steps = append(a.r.Steps, tbops.Step{ID: "telemetry-gauges", Title: "Telemetry gauges against the decision sample", Findings: findings, Evidence: []tbops.Evidence{a.sampleSrc}})
}

// adStep compares ad_gate_streak_windows per tier with the ad gates' enter
// streaks. A streak moves once per governor window, at an epoch's end, so a
// difference is a mismatch only when the gauges were scraped in the epoch of
// the status they are compared with; across an epoch boundary it is unknown.
func (a *auditor) adStep() {
	s := tbops.Symptom{ID: SymAdGateStreakMismatch, Summary: "ad_gate_streak_windows per tier matches the ad_contextual/ad_presence gate streaks"}
	if a.src == nil {
		s.Status = tbops.StatusUnknown
		s.Evidence = []tbops.Evidence{a.ev(tbops.SourcePrometheus, MetricAdGateStreak, nil)}
		a.r.Symptoms = append(a.r.Symptoms, s)
		return
	}
	sig := a.metrics.ad
	var findings []string
	if len(sig.Missing) > 0 {
		findings = append(findings, "missing: "+strings.Join(sig.Missing, ", "))
	}
	findings = append(findings, adFindings(sig)...)
	checks := CheckTiers(sig, a.status)
	sameEpoch := a.statusErr == nil && a.metrics.epochKnown && a.metrics.epoch == a.status.Epoch
	known, undecided := 0, 0
	var bad []TierCheck
	for _, c := range checks {
		findings = append(findings, c.String())
		switch {
		case !c.Known:
		case c.Match:
			known++
		case sameEpoch:
			known++
			bad = append(bad, c)
		default:
			undecided++
			a.r.Warnf("ad tier %s: %s %s differs from the %s gate's enter streak %d, but the scrape (%s) and governor.status (epoch %d) may be a governor window apart: a scrape in the status's epoch decides it",
				c.Tier, MetricAdGateStreak, num(*c.MetricStreak), c.Gate, *c.GateStreak, a.scrapeEpochText(), a.status.Epoch)
		}
	}
	s.Evidence = append(s.Evidence, a.ev(tbops.SourceRPC, "governor.status .gates[ad_contextual, ad_presence]", gateStreaks(a.status)))
	for _, e := range sig.Evidence {
		if strings.Contains(e.Query, "ad_gate_") {
			s.Evidence = append(s.Evidence, e)
		}
	}
	switch {
	case len(bad) > 0:
		s.Firing, s.Status, s.Value, s.Detail = true, tbops.StatusWarning, tbops.Num(len(bad)), tbops.RawOf(bad)
		a.mismatch = true
	case a.statusErr != nil || known == 0 || undecided > 0 || a.metrics.adErr != nil:
		s.Status, s.Detail = tbops.StatusUnknown, tbops.RawOf(checks)
		for _, c := range checks {
			if !c.Known && c.Tier != "" {
				a.r.Warnf("ad tier %s: %s", c.Tier, c.Missing)
			}
		}
	default:
		s.Status, s.Value, s.Detail = tbops.StatusOK, tbops.Num(0), tbops.RawOf(checks)
	}
	a.r.Symptoms = append(a.r.Symptoms, s)
	a.r.Steps = append(a.r.Steps, tbops.Step{ID: "ad-market", Title: "Ad market quality and cost signals; tiered ad gates", Findings: findings, Evidence: sig.Evidence})
}

// scrapeEpochText is the scrape's epoch for a warning.
func (a *auditor) scrapeEpochText() string {
	if !a.metrics.epochKnown {
		return "an unknown epoch (no " + MetricBlockHeight + " or " + MetricBlockHeightRef + " was scraped)"
	}
	return fmt.Sprintf("epoch %d or later", a.metrics.epoch)
}

func gateStreaks(st Status) map[string]any {
	out := map[string]any{}
	for _, g := range st.Gates {
		if g.Name == GateAdContextual || g.Name == GateAdPresence {
			out[g.Name] = map[string]any{"state": g.State, "enter_streak": g.EnterStreak, "streak_required": g.StreakRequired}
		}
	}
	return out
}

func adFindings(s AdSignals) []string {
	var out []string
	kv := func(m map[string]float64, unit string) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + " " + num(m[k]) + unit
		}
		return strings.Join(parts, ", ")
	}
	if len(s.QualityMultiplierPPM) > 0 {
		out = append(out, "quality multipliers (ppm): "+kv(s.QualityMultiplierPPM, ""))
	}
	if s.ReadinessStreak != nil {
		out = append(out, "readiness streak: "+num(*s.ReadinessStreak)+" windows")
	}
	if len(s.FreshnessScorePPM) > 0 {
		out = append(out, "freshness score by presence bucket (ppm): "+kv(s.FreshnessScorePPM, ""))
	}
	if s.PrivacyScorePPM != nil {
		out = append(out, "privacy score: "+num(*s.PrivacyScorePPM)+" ppm")
	}
	if s.ComputeUnitPrice != nil {
		out = append(out, "compute unit price: "+num(*s.ComputeUnitPrice)+" USD micros")
	}
	if len(s.CostBasis) > 0 {
		out = append(out, "cost basis (USD micros): "+kv(s.CostBasis, ""))
	}
	return out
}

// alerts is the Alerts block: each rule evaluated on the source, so the report
// and a Prometheus loaded with `tbops rules` agree. Without a source every
// alert is unknown. An undecided rule's warnings say what would decide it.
func (a *auditor) alerts() {
	for _, rule := range Rules() {
		st := promq.RuleState{Rule: rule}
		if a.src != nil {
			var err error
			if st, err = promq.EvalRule(a.ctx, a.src, rule, a.now()); err != nil {
				a.r.Warnf("alert %s: %v", rule.Alert, err)
				st = promq.RuleState{Rule: rule}
			}
		}
		if !st.Known { // a decided rule needs no hint; "no data for block_height" would be noise
			for _, w := range st.Warnings {
				a.r.Warnf("alert %s: %s", rule.Alert, w)
			}
		}
		a.r.Alerts = append(a.r.Alerts, st.ReportAlert())
	}
}
