package energy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Metric names (PROTOCOL.md section 7) and the reference node's alternatives
// (section 9).
const (
	MetricOracleLatency    = "oracle_latency_seconds"
	MetricFailures         = "energy_signature_verification_failures_total"
	MetricFailuresRef      = "energy_reading_reject_total"
	MetricPendingCredits   = "energy_pending_credits_total"
	MetricActiveDisputes   = "energy_active_disputes_total"
	MetricSettlements      = "energy_settlements_total"
	MetricSettlementsRef   = "energy_settlement_total"
	MetricSlashing         = "energy_slashing_total"
	MetricRPCRejected      = "energy_rpc_rejected_total"
	defaultCreditLimit     = 200
	defaultProviderLookups = 10
)

// Options tunes Diagnose. The zero value is the runbook's.
type Options struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// LatencyWindow is the rate window of the oracle quantiles (5 m); when the
	// source cannot answer over it, the cumulative buckets are used, as the
	// runbook's own histogram_quantile(…, oracle_latency_seconds_bucket) does.
	LatencyWindow time.Duration
	// TrendWindow is the window of "pending credits not decreasing", "readings
	// not settling" and "disputes increasing" (10 m).
	TrendWindow time.Duration
	// CreditLimit caps the pending credits listed in step 3 (200, as the runbook).
	CreditLimit int
	// ProviderLookups caps the energy.provider calls of step 4 (10, as the runbook).
	ProviderLookups int
	// ClockSync reads this host's clock state (HostClockSync when nil).
	ClockSync func(ctx context.Context) ClockSync
	// SLO also evaluates the Energy SLO table.
	SLO bool
	// RPCURL is shown in the suggested commands ("" leaves --rpc out).
	RPCURL string
}

func (o *Options) defaults() error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LatencyWindow < 0 || o.TrendWindow < 0 || o.CreditLimit < 0 || o.ProviderLookups < 0 {
		return errors.New("energy: negative window or limit in Options")
	}
	if o.LatencyWindow == 0 {
		o.LatencyWindow = RateWindow
	}
	if o.TrendWindow == 0 {
		o.TrendWindow = SettleWindow
	}
	if o.CreditLimit == 0 {
		o.CreditLimit = defaultCreditLimit
	}
	if o.ProviderLookups == 0 {
		o.ProviderLookups = defaultProviderLookups
	}
	if o.ClockSync == nil {
		o.ClockSync = HostClockSync
	}
	return nil
}

// diag carries one diagnosis in progress.
type diag struct {
	ctx  context.Context
	c    *Client
	src  promq.Source
	o    Options
	now  time.Time
	r    tbops.Report
	rpc  string // --rpc flag for commands
	data facts
}

// facts are the values the symptoms, paths, alerts and SLOs are decided from;
// ok flags say whether each was known.
type facts struct {
	p50, p95, p99          float64
	p95OK                  bool
	latencyEv              []tbops.Evidence
	failPerMin             float64
	failOK                 bool
	failByReason           map[string]float64 // per minute
	failTotals             map[string]float64
	failEv                 []tbops.Evidence
	failMetric             string
	pendingGauge           float64
	pendingGaugeOK         bool
	pendingEv              []tbops.Evidence
	settleInc              float64
	settleOK               bool
	settleEv               []tbops.Evidence
	disputesGauge          float64
	disputesOK             bool
	disputesEv             []tbops.Evidence
	pending                []Credit
	pendingOK              bool
	pendingListEv          tbops.Evidence
	oldestPendingAge       time.Duration
	market                 Market
	marketOK               bool
	marketEv               tbops.Evidence
	providers              []Provider // detail of the first ProviderLookups
	providerEv             []tbops.Evidence
	clock                  ClockSync
	disputes               []Dispute
	disputesListOK         bool
	disputesListEv         tbops.Evidence
	settledCount, stuckCnt int
}

// Diagnose runs the Energy Stalled runbook: it gathers steps 1–5 from the node
// (c) and the metrics source (src, may be nil), evaluates the five symptoms and
// the alert thresholds (and the SLO table with Options.SLO), and matches paths
// A–D. It changes nothing. It returns an error only for a cancelled ctx or
// invalid options; missing data makes the affected findings unknown with a
// warning.
func Diagnose(ctx context.Context, c *Client, src promq.Source, opts Options) (tbops.Report, error) {
	if err := opts.defaults(); err != nil {
		return tbops.Report{}, err
	}
	if c == nil {
		return tbops.Report{}, errors.New("energy: Diagnose needs a Client")
	}
	d := &diag{ctx: ctx, c: c, src: src, o: opts, now: opts.Now()}
	d.r = tbops.NewReport(RunbookID, c.URL(), d.now)
	if opts.RPCURL != "" {
		d.rpc = " --rpc " + tbops.RedactURL(opts.RPCURL)
	}
	d.gatherMetrics()
	d.gatherRPC()
	if err := ctx.Err(); err != nil {
		return d.r, err
	}
	d.steps()
	d.symptoms()
	d.paths()
	d.alerts()
	if opts.SLO {
		d.slos()
	}
	d.r.Finalize()
	return d.r, nil
}

func (d *diag) ev(src, query string, v any) tbops.Evidence {
	return tbops.Evidence{Source: src, Query: query, Value: tbops.RawOf(v), At: d.now.UTC()}
}

func (d *diag) warnAll(ws []string) {
	for _, w := range ws {
		d.r.Warnf("%s", w)
	}
}

// query runs one metrics question, trying the reference node's name when the
// contract's has no data. It returns the result and the name that answered.
func (d *diag) query(names []string, f func(sel promq.Selector) (promq.Result, error)) (promq.Result, string, bool) {
	var last promq.Result
	for _, n := range names {
		res, err := f(promq.Select(n))
		if err != nil {
			d.r.Warnf("%s: %v", n, err)
			continue
		}
		if len(res.Vector) > 0 {
			return res, n, true
		}
		last = res
	}
	d.r.Warnf("metric %s missing: no series (reported as missing, not zero)", strings.Join(names, " / "))
	return last, names[0], false
}

func (d *diag) gatherMetrics() {
	f := &d.data
	f.failByReason, f.failTotals = map[string]float64{}, map[string]float64{}
	if d.src == nil {
		d.r.Warnf("no metrics source: oracle latency, signature failures, settlements and dispute trend are unknown")
		return
	}
	ctx := d.ctx
	// Step 1: oracle latency quantiles, over LatencyWindow, else cumulative.
	q := func(p float64) (float64, bool) {
		sel := promq.Select(MetricOracleLatency)
		res, err := d.src.Quantile(ctx, p, sel, d.o.LatencyWindow)
		v, ok := res.Value()
		if err != nil || !ok || math.IsNaN(v) {
			res, err = d.src.Quantile(ctx, p, sel, 0)
			v, ok = res.Value()
		}
		if err != nil {
			d.r.Warnf("%s quantile %g: %v", MetricOracleLatency, p, err)
			return 0, false
		}
		if !ok || math.IsNaN(v) {
			return 0, false
		}
		f.latencyEv = append(f.latencyEv, res.Evidence)
		return v, true
	}
	var ok50, ok99 bool
	f.p50, ok50 = q(0.50)
	f.p95, f.p95OK = q(0.95)
	f.p99, ok99 = q(0.99)
	if !f.p95OK {
		d.r.Warnf("metric %s missing: oracle latency unknown (reported as missing, not zero)", MetricOracleLatency)
	}
	_, _ = ok50, ok99

	// Step 2: failure rate per minute, totals and breakdown by reason.
	names := []string{MetricFailures, MetricFailuresRef}
	res, name, ok := d.query(names, func(sel promq.Selector) (promq.Result, error) { return d.src.Rate(ctx, sel, RateWindow) })
	f.failMetric = name
	if ok {
		sum, _ := res.Sum()
		f.failPerMin, f.failOK = sum*60, true
		for k, v := range res.ByLabel("reason") {
			f.failByReason[k] = v * 60
		}
		f.failEv = append(f.failEv, res.Evidence)
		d.warnAll(res.Warnings)
		if tot, err := d.src.Instant(ctx, promq.Select(name)); err == nil && len(tot.Vector) > 0 {
			f.failTotals = tot.ByLabel("reason")
			f.failEv = append(f.failEv, tot.Evidence)
		}
	}
	// Pending credits gauge and its trend.
	if g, err := d.src.Instant(ctx, promq.Select(MetricPendingCredits)); err == nil {
		if v, ok := g.Sum(); ok {
			f.pendingGauge, f.pendingGaugeOK = v, true
			f.pendingEv = append(f.pendingEv, g.Evidence)
		} else {
			d.r.Warnf("metric %s missing (reported as missing, not zero)", MetricPendingCredits)
		}
	}
	// Settlements over the trend window.
	res, _, ok = d.query([]string{MetricSettlements, MetricSettlementsRef}, func(sel promq.Selector) (promq.Result, error) {
		return d.src.Increase(ctx, sel, d.o.TrendWindow)
	})
	if ok {
		f.settleInc, _ = res.Sum()
		f.settleOK = true
		f.settleEv = append(f.settleEv, res.Evidence)
		d.warnAll(res.Warnings)
	}
	// Active disputes.
	if g, err := d.src.Instant(ctx, promq.Select(MetricActiveDisputes)); err == nil {
		if v, ok := g.Sum(); ok {
			f.disputesGauge, f.disputesOK = v, true
			f.disputesEv = append(f.disputesEv, g.Evidence)
		} else {
			d.r.Warnf("metric %s missing (reported as missing, not zero)", MetricActiveDisputes)
		}
	}
}

func (d *diag) gatherRPC() {
	f := &d.data
	ctx := d.ctx
	// Step 3: pending credits.
	filter := CreditFilter{Status: "pending", Limit: min(d.o.CreditLimit, 500)}
	f.pendingListEv = d.ev(tbops.SourceRPC, fmt.Sprintf("%s %s", MethodCredits, jsonParams(CreditParams(filter))), nil)
	var err error
	for cr, e := range d.c.AllCredits(ctx, filter, d.o.CreditLimit) {
		if e != nil {
			err = e
			break
		}
		f.pending = append(f.pending, cr)
	}
	if err != nil {
		d.r.Warnf("%s: %v", MethodCredits, err)
		f.pendingListEv.Value = tbops.RawOf(err.Error())
	} else {
		f.pendingOK = true
		for _, cr := range f.pending {
			if cr.CreatedAt > 0 {
				if age := d.now.Sub(time.Unix(cr.CreatedAt, 0)); age > f.oldestPendingAge {
					f.oldestPendingAge = age
				}
			}
		}
		f.pendingListEv.Value = tbops.RawOf(map[string]any{"count": len(f.pending), "oldest_age_seconds": int64(f.oldestPendingAge.Seconds())})
	}
	// Settled vs stuck credits (settlement-rate SLO).
	if d.o.SLO {
		for _, e := range d.c.AllCredits(ctx, CreditFilter{Status: "settled", Limit: 500}, 2000) {
			if e != nil {
				d.r.Warnf("%s status=settled: %v", MethodCredits, e)
				break
			}
			f.settledCount++
		}
		for _, cr := range f.pending {
			if cr.CreatedAt > 0 && d.now.Sub(time.Unix(cr.CreatedAt, 0)) > d.o.TrendWindow {
				f.stuckCnt++
			}
		}
	}
	// Step 5 (and 4's provider list): the market.
	m, err := d.c.Market(ctx)
	f.marketEv = d.ev(tbops.SourceRPC, d.c.MarketMethod(), nil)
	if err != nil {
		d.r.Warnf("%s: %v", d.c.MarketMethod(), err)
		f.marketEv.Value = tbops.RawOf(err.Error())
	} else {
		f.market, f.marketOK = m, true
		f.marketEv.Value = tbops.RawOf(map[string]any{"providers": len(m.Providers)})
	}
	// Step 4: each provider's last settlement and reading.
	for i, p := range f.market.Providers {
		if i >= d.o.ProviderLookups {
			break
		}
		pd, err := d.c.Provider(ctx, p.ProviderID)
		e := d.ev(tbops.SourceRPC, fmt.Sprintf(`%s {"provider_id":%q}`, MethodProvider, p.ProviderID), nil)
		if err != nil {
			e.Value = tbops.RawOf(err.Error())
			d.r.Warnf("%s %s: %v", MethodProvider, p.ProviderID, err)
		} else {
			e.Value = tbops.RawOf(map[string]any{"last_settlement": pd.LastSettlement, "last_reading_at": pd.LastReadingAt, "status": pd.Status})
			f.providers = append(f.providers, pd)
		}
		f.providerEv = append(f.providerEv, e)
	}
	f.clock = d.o.ClockSync(ctx)
	// Disputes (trend fallback, path D, SLO).
	ds, err := d.c.Disputes(ctx, "", 500)
	f.disputesListEv = d.ev(tbops.SourceRPC, MethodDisputes+` {"limit":500}`, nil)
	if err != nil {
		d.r.Warnf("%s: %v", MethodDisputes, err)
		f.disputesListEv.Value = tbops.RawOf(err.Error())
	} else {
		f.disputes, f.disputesListOK = ds, true
		f.disputesListEv.Value = tbops.RawOf(map[string]any{"disputes": len(ds)})
	}
}

func jsonParams(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		switch v := p[k].(type) {
		case string:
			parts = append(parts, fmt.Sprintf("%q:%q", k, v))
		default:
			parts = append(parts, fmt.Sprintf("%q:%v", k, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func (d *diag) steps() {
	f := &d.data
	// Step 1
	s1 := tbops.Step{ID: "oracle-latency", Title: "Oracle latency distribution", Evidence: f.latencyEv}
	if f.p95OK {
		s1.Findings = append(s1.Findings, fmt.Sprintf("p50 %.2fs, p95 %.2fs, p99 %.2fs (SLO: p95 < 5s)", f.p50, f.p95, f.p99))
	} else {
		s1.Findings = append(s1.Findings, "oracle_latency_seconds is missing: latency unknown")
	}
	s1.Findings = append(s1.Findings, "oracle process and logs are on the oracle host: systemctl status energy-oracle; grep oracle_latency /var/log/oracle/*.log | tail -20")
	// Step 2
	s2 := tbops.Step{ID: "signature-failures", Title: "Signature verification failures", Evidence: f.failEv}
	if f.failOK {
		s2.Findings = append(s2.Findings, fmt.Sprintf("%.2f failures/min over 5m (%s)", f.failPerMin, f.failMetric))
		for _, reason := range Reasons() {
			if v, ok := f.failTotals[reason]; ok {
				s2.Findings = append(s2.Findings, fmt.Sprintf("  %s: %g total, %.2f/min", reason, v, f.failByReason[reason]))
			} else {
				s2.Findings = append(s2.Findings, fmt.Sprintf("  %s: no series", reason))
			}
		}
	} else {
		s2.Findings = append(s2.Findings, "signature failure counter is missing: rate unknown")
	}
	// Step 3
	s3 := tbops.Step{ID: "pending-credits", Title: "Meter reading accumulation", Evidence: append([]tbops.Evidence{f.pendingListEv}, f.pendingEv...)}
	if f.pendingOK {
		total := 0.0
		type agg struct {
			n   int
			kwh float64
		}
		by := map[string]*agg{}
		for _, cr := range f.pending {
			total += cr.AmountKWh
			a := by[cr.ProviderID]
			if a == nil {
				a = &agg{}
				by[cr.ProviderID] = a
			}
			a.n++
			a.kwh += cr.AmountKWh
		}
		s3.Findings = append(s3.Findings, fmt.Sprintf("%d pending credits, %g kWh in total; oldest created %s ago", len(f.pending), total, f.oldestPendingAge.Round(time.Second)))
		ids := make([]string, 0, len(by))
		for k := range by {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		for _, k := range ids {
			s3.Findings = append(s3.Findings, fmt.Sprintf("  %s: %d credits, %g kWh", k, by[k].n, by[k].kwh))
		}
	}
	if f.pendingGaugeOK {
		s3.Findings = append(s3.Findings, fmt.Sprintf("%s = %g", MetricPendingCredits, f.pendingGauge))
	}
	// Step 4
	s4 := tbops.Step{ID: "timestamp-skew", Title: "Timestamp skew and provider clocks", Evidence: f.providerEv}
	if f.clock.Known {
		state := "synchronized"
		if !f.clock.Synchronized {
			state = "NOT synchronized"
		}
		s4.Findings = append(s4.Findings, fmt.Sprintf("this host's clock is %s (%s: %s)", state, f.clock.Source, f.clock.Detail))
	} else {
		s4.Findings = append(s4.Findings, "this host's clock-sync state is unknown ("+f.clock.Detail+")")
	}
	s4.Evidence = append(s4.Evidence, d.ev(tbops.SourceFile, f.clock.Source, f.clock))
	for _, p := range f.providers {
		s4.Findings = append(s4.Findings, fmt.Sprintf("  %s: last settlement %s ago, last reading %s ago", p.ProviderID, d.age(p.LastSettlement), d.age(p.LastReadingAt)))
	}
	s4.Findings = append(s4.Findings, `skew errors are logged by the node: grep "timestamp_skew\|TimestampSkew" /var/log/node/*.log | wc -l`)
	// Step 5
	s5 := tbops.Step{ID: "provider-status", Title: "Provider status and reputation", Evidence: []tbops.Evidence{f.marketEv}}
	if f.marketOK {
		inactive, poor := d.inactive(), d.poor()
		s5.Findings = append(s5.Findings, fmt.Sprintf("%d providers, %d not active, %d with reputation below %.1f", len(f.market.Providers), len(inactive), len(poor), ReputationFloor))
		for _, p := range inactive {
			s5.Findings = append(s5.Findings, fmt.Sprintf("  not active: %s (%s, reputation %.2f)", p.ProviderID, p.Status, p.Score()))
		}
		for _, p := range poor {
			s5.Findings = append(s5.Findings, fmt.Sprintf("  poor reputation: %s (%.2f)", p.ProviderID, p.Score()))
		}
	}
	d.r.Steps = append(d.r.Steps, s1, s2, s3, s4, s5)
}

func (d *diag) age(unix int64) string {
	if unix <= 0 {
		return "never"
	}
	return d.now.Sub(time.Unix(unix, 0)).Round(time.Second).String()
}

func (d *diag) inactive() []Provider {
	var out []Provider
	for _, p := range d.data.market.Providers {
		if p.Status != "" && p.Status != "active" {
			out = append(out, p)
		}
	}
	return out
}

func (d *diag) poor() []Provider {
	var out []Provider
	for _, p := range d.data.market.Providers {
		if p.Score() < ReputationFloor {
			out = append(out, p)
		}
	}
	return out
}

// staleProviders are active providers whose last reading is older than the
// trend window: their readings are not landing (skew, keys, connectivity).
func (d *diag) staleProviders() []Provider {
	var out []Provider
	for _, p := range d.data.providers {
		if p.Status != "" && p.Status != "active" {
			continue
		}
		if p.LastReadingAt > 0 && d.now.Sub(time.Unix(p.LastReadingAt, 0)) > d.o.TrendWindow {
			out = append(out, p)
		}
	}
	return out
}

func sev(firing bool, s tbops.Status) tbops.Status {
	if firing {
		return s
	}
	return tbops.StatusOK
}

func (d *diag) symptoms() {
	f := &d.data
	// 1. oracle latency p95 > 10
	s := tbops.Symptom{ID: "oracle-latency-high", Summary: "oracle_latency_seconds p95 > 10s", Threshold: tbops.Num(OracleP95Warning), Evidence: f.latencyEv}
	if f.p95OK {
		s.Value, s.Firing = tbops.Num(round2(f.p95)), f.p95 > OracleP95Warning
		s.Status = sev(s.Firing, tbops.StatusWarning)
		if f.p95 > OracleP95Critical {
			s.Status = tbops.StatusCritical
		}
	} else {
		s.Status = tbops.StatusUnknown
	}
	d.r.Symptoms = append(d.r.Symptoms, s)

	// 2. signature failures > 1/min
	s = tbops.Symptom{ID: "signature-failures", Summary: "signature verification failures > 1/min", Threshold: tbops.Num(FailuresPerMinWarning), Evidence: f.failEv}
	if f.failOK {
		s.Value, s.Firing = tbops.Num(round2(f.failPerMin)), f.failPerMin > FailuresPerMinWarning
		s.Status = sev(s.Firing, tbops.StatusWarning)
		if f.failPerMin > FailuresPerMinCritical {
			s.Status = tbops.StatusCritical
		}
	} else {
		s.Status = tbops.StatusUnknown
	}
	d.r.Symptoms = append(d.r.Symptoms, s)

	// 3. pending credits not decreasing
	d.r.Symptoms = append(d.r.Symptoms, d.pendingSymptom())
	// 4. readings not settling
	d.r.Symptoms = append(d.r.Symptoms, d.settlingSymptom())
	// 5. disputes increasing
	d.r.Symptoms = append(d.r.Symptoms, d.disputeSymptom())
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// pendingSymptom: energy_pending_credits_total did not decrease over the trend
// window (last ≥ first, above zero) AND the oldest pending credit is older than
// the window. A flat gauge alone is ambiguous — a healthy node keeps a steady
// few credits in flight — so when both are known both must agree; when only one
// is (a scrape source that has not observed the whole window, or a node whose
// energy.credits fails) that one decides.
func (d *diag) pendingSymptom() tbops.Symptom {
	f := &d.data
	s := tbops.Symptom{ID: "pending-credits-not-decreasing", Summary: "energy_pending_credits_total not decreasing over " + d.o.TrendWindow.String(),
		Status: tbops.StatusUnknown, Threshold: tbops.Num(int64(d.o.TrendWindow.Seconds()))}
	value := map[string]any{}
	trendKnown, trendFiring := false, false
	if d.src != nil {
		rr, err := d.src.Samples(d.ctx, promq.Select(MetricPendingCredits), d.o.TrendWindow)
		if err == nil && len(rr.Matrix) > 0 && len(rr.Matrix[0].Values) >= 2 {
			vals := rr.Matrix[0].Values
			first, last := vals[0], vals[len(vals)-1]
			covered := last.Timestamp.Time().Sub(first.Timestamp.Time())
			step := covered / time.Duration(len(vals)-1)
			if covered+step >= d.o.TrendWindow {
				s.Evidence = append(s.Evidence, rr.Evidence)
				value["first"], value["last"] = float64(first.Value), float64(last.Value)
				trendKnown = true
				trendFiring = float64(last.Value) > 0 && float64(last.Value) >= float64(first.Value)
			}
		}
	}
	if f.pendingOK {
		s.Evidence = append(s.Evidence, f.pendingListEv)
		value["oldest_pending_seconds"] = int64(f.oldestPendingAge.Seconds())
	}
	ageFiring := f.oldestPendingAge > d.o.TrendWindow
	switch {
	case trendKnown && f.pendingOK:
		s.Firing = trendFiring && ageFiring
	case trendKnown:
		s.Firing = trendFiring
	case f.pendingOK:
		s.Summary = "pending credits not draining: oldest pending credit older than " + d.o.TrendWindow.String()
		s.Firing = ageFiring
	default:
		d.r.Warnf("pending-credit trend unknown: no full %s of %s samples and no %s answer", d.o.TrendWindow, MetricPendingCredits, MethodCredits)
		return s
	}
	s.Detail = tbops.RawOf(value)
	s.Status = sev(s.Firing, tbops.StatusWarning)
	return s
}

// settlingSymptom: increase(energy_settlements_total[10m]) == 0 while credits
// are pending.
func (d *diag) settlingSymptom() tbops.Symptom {
	f := &d.data
	s := tbops.Symptom{ID: "readings-not-settling", Summary: "no settlement in " + d.o.TrendWindow.String() + " while credits are pending",
		Threshold: tbops.Num(0), Evidence: append(append([]tbops.Evidence{}, f.settleEv...), f.pendingEv...)}
	pending, pendingKnown := f.pendingGauge, f.pendingGaugeOK
	if !pendingKnown && f.pendingOK {
		pending, pendingKnown = float64(len(f.pending)), true
		s.Evidence = append(s.Evidence, f.pendingListEv)
	}
	switch {
	case f.settleOK && pendingKnown:
		s.Value = tbops.Num(round2(f.settleInc))
		s.Firing = f.settleInc == 0 && pending > 0
		s.Status = sev(s.Firing, tbops.StatusCritical)
	case f.settleOK && f.settleInc > 0:
		s.Value, s.Status = tbops.Num(round2(f.settleInc)), tbops.StatusOK
	default:
		s.Status = tbops.StatusUnknown
	}
	return s
}

// disputeSymptom: energy_active_disputes_total rose over the trend window
// (samples), else from the RPC: more disputes opened than resolved in the
// window. Severity: warning above nothing, critical over 50.
func (d *diag) disputeSymptom() tbops.Symptom {
	f := &d.data
	s := tbops.Symptom{ID: "dispute-backlog-increasing", Summary: "active disputes increasing over " + d.o.TrendWindow.String(), Status: tbops.StatusUnknown}
	known := false
	if d.src != nil {
		rr, err := d.src.Samples(d.ctx, promq.Select(MetricActiveDisputes), d.o.TrendWindow)
		if err == nil && len(rr.Matrix) > 0 && len(rr.Matrix[0].Values) >= 2 {
			vals := rr.Matrix[0].Values
			first, last := vals[0], vals[len(vals)-1]
			covered := last.Timestamp.Time().Sub(first.Timestamp.Time())
			if covered+covered/time.Duration(len(vals)-1) >= d.o.TrendWindow {
				s.Evidence = append(s.Evidence, rr.Evidence)
				s.Detail = tbops.RawOf(map[string]any{"first": float64(first.Value), "last": float64(last.Value)})
				s.Firing, known = float64(last.Value) > float64(first.Value), true
			}
		}
	}
	if !known && f.disputesListOK {
		opened, resolved := 0, 0
		since := d.now.Add(-d.o.TrendWindow).Unix()
		for _, ds := range f.disputes {
			if ds.OpenedAt >= since {
				opened++
			}
			if ds.ResolvedAt != nil && *ds.ResolvedAt >= since {
				resolved++
			}
		}
		s.Summary = "disputes opened faster than resolved over " + d.o.TrendWindow.String()
		s.Evidence = append(s.Evidence, f.disputesListEv)
		s.Detail = tbops.RawOf(map[string]any{"opened": opened, "resolved": resolved})
		s.Firing, known = opened > resolved && opened > 1, true
	}
	if !known {
		return s
	}
	s.Evidence = append(s.Evidence, f.disputesEv...)
	s.Status = sev(s.Firing, tbops.StatusWarning)
	if s.Firing && f.disputesOK && f.disputesGauge > DisputesCritical {
		s.Status = tbops.StatusCritical
	}
	return s
}

func (d *diag) paths() {
	f := &d.data
	sym := map[string]tbops.Symptom{}
	for _, s := range d.r.Symptoms {
		sym[s.ID] = s
	}
	// A: oracle latency high
	a := tbops.Path{ID: "A", Title: "Oracle latency high"}
	if f.p95OK {
		a.Matched = f.p95 > OracleP95Warning
		a.Why = fmt.Sprintf("oracle p95 %.2fs (indicator: > %gs)", f.p95, OracleP95Warning)
	} else {
		a.Why = "oracle latency unknown (metric missing)"
	}
	a.Actions = []tbops.Action{
		{Kind: "check", Target: "energy-oracle", Command: "ps aux | grep oracle; top -p $(pgrep -f oracle)", Note: "oracle CPU and memory", DryRun: true},
		{Kind: "check", Target: "energy-oracle", Command: `grep "pending_verifications\|queue_depth" /var/log/oracle/*.log | tail -10`, Note: "oracle queue depth", DryRun: true},
		{Kind: "scale", Target: "deployment/energy-oracle", Command: "kubectl scale deployment energy-oracle --replicas=3", Note: "add oracle instances if CPU-bound or queue growing", DryRun: true},
		{Kind: "wait", Command: "watch -n 5 \"tbops query 'histogram_quantile(0.95, oracle_latency_seconds_bucket)'\"", Note: "monitor p95 back under 5 s (SLO)", DryRun: true},
	}
	// B: signature failures
	b := tbops.Path{ID: "B", Title: "Signature verification failures"}
	if f.failOK {
		top, topV := "", -1.0
		for _, r := range Reasons() {
			if v := f.failByReason[r]; v > topV {
				top, topV = r, v
			}
		}
		b.Matched = f.failPerMin > FailuresPerMinWarning
		b.Why = fmt.Sprintf("%.2f failures/min (indicator: > 1/min, reason verification_failed or invalid_format); top reason %s (%.2f/min)", f.failPerMin, top, topV)
		b.Actions = append(b.Actions, tbops.Action{Kind: "check", Command: "contract-cli energy oracle keys status", Note: "oracle key manager status (energy.oracle_keys)", DryRun: true})
		for i, p := range f.market.Providers {
			if i >= 5 {
				break
			}
			b.Actions = append(b.Actions, tbops.Action{Kind: "check", Target: p.ProviderID, Command: fmt.Sprintf("contract-cli energy provider show %s | jq .public_key", p.ProviderID), Note: "compare with the provider's signing key", DryRun: true})
		}
		switch top {
		case ReasonKeyNotFound:
			b.Actions = append(b.Actions, tbops.Action{Kind: "config", Note: "readings come from providers with no registered key: register their public keys", DryRun: true})
		case ReasonSchemeUnsupported:
			b.Actions = append(b.Actions, tbops.Action{Kind: "config", Note: "providers sign with a scheme the oracle does not accept: use ed25519 or ed25519-blake3", DryRun: true})
		}
	} else {
		b.Why = "signature failure rate unknown (metric missing)"
	}
	b.Actions = append(b.Actions,
		tbops.Action{Kind: "check", Command: "tbops energy sign-reading --provider PROVIDER --meter METER --total-kwh N --nonce N --key-file KEY > reading.json", Note: "sign a test reading (replaces the runbook's Python snippet)", DryRun: true},
		tbops.Action{Kind: "check", Command: "tbops energy verify-reading" + d.rpc + " reading.json", Note: "verify it against the provider's registered key; prints what failed and why", DryRun: true})
	// C: timestamp skew
	c := tbops.Path{ID: "C", Title: "Timestamp skew"}
	stale := d.staleProviders()
	settleTrouble := sym["readings-not-settling"].Firing || sym["pending-credits-not-decreasing"].Firing
	var why []string
	if len(stale) > 0 {
		ids := make([]string, 0, len(stale))
		for _, p := range stale {
			ids = append(ids, p.ProviderID)
		}
		why = append(why, fmt.Sprintf("%d active providers sent no reading for over %s: %s", len(stale), d.o.TrendWindow, strings.Join(ids, ", ")))
		c.Matched = true
	}
	if f.clock.Known && !f.clock.Synchronized {
		why = append(why, "this host's clock is not synchronized ("+f.clock.Source+")")
		c.Matched = c.Matched || settleTrouble
	}
	if len(why) == 0 {
		why = append(why, "providers' readings are fresh; indicator is \"timestamp_skew\" errors in /var/log/node/*.log")
	}
	c.Why = strings.Join(why, "; ")
	c.Actions = []tbops.Action{
		{Kind: "check", Command: `grep "timestamp_skew\|TimestampSkew" /var/log/node/*.log | wc -l`, Note: "count skew rejections on the node", DryRun: true},
	}
	for _, p := range stale {
		c.Actions = append(c.Actions, tbops.Action{Kind: "check", Target: p.ProviderID, Command: "ssh <" + p.ProviderID + " host> 'date; timedatectl'", Note: "compare the provider's clock with the oracle's (tolerance 300 s)", DryRun: true})
	}
	c.Actions = append(c.Actions,
		tbops.Action{Kind: "sync-clock", Command: "sudo ntpdate -u ntp.ubuntu.com", Note: "or your NTP server; then check with timedatectl", DryRun: true},
		tbops.Action{Kind: "wait", Command: "watch -n 10 'grep timestamp_skew /var/log/node/*.log | tail -5'", Note: "monitor recovery", DryRun: true})
	// D: reputation degradation
	dp := tbops.Path{ID: "D", Title: "Provider reputation degradation"}
	if f.marketOK {
		poor := d.poor()
		dp.Matched = len(poor) >= 2
		dp.Why = fmt.Sprintf("%d providers with reputation below %.1f (indicator: multiple)", len(poor), ReputationFloor)
	} else {
		dp.Why = "market unknown"
	}
	dp.Actions = []tbops.Action{
		{Kind: "check", Command: "tbops energy disputes --limit 20" + d.rpc, Note: "recent disputes", DryRun: true},
		{Kind: "check", Command: "tbops query 'rate(energy_slashing_total[24h])'", Note: "recent slashing by provider and reason", DryRun: true},
	}
	n := 0
	for _, ds := range f.disputes {
		if ds.Status == "resolved" && n < 5 {
			dp.Actions = append(dp.Actions, tbops.Action{Kind: "check", Target: string(ds.DisputeID), Command: "tbops energy disputes --id " + string(ds.DisputeID) + d.rpc, Note: "review the evidence", DryRun: true})
			n++
		}
	}
	d.r.Paths = append(d.r.Paths, a, b, c, dp)
}

func (d *diag) alerts() {
	f := &d.data
	rules := Rules()
	get := func(name string) tbops.Rule {
		for _, r := range rules {
			if r.Alert == name {
				return r
			}
		}
		return tbops.Rule{Alert: name}
	}
	add := func(name string, known, firing bool, v *float64) {
		r := get(name)
		a := tbops.Alert{Name: r.Alert, Severity: r.Severity, Expr: r.Expr, Firing: known && firing, Value: v, ForSeconds: r.For.Seconds()}
		switch {
		case !known:
			a.Status = tbops.StatusUnknown
		case firing:
			a.Status = r.Severity
		default:
			a.Status = tbops.StatusOK
		}
		d.r.Alerts = append(d.r.Alerts, a)
	}
	var p95 *float64
	if f.p95OK {
		p95 = tbops.Num(round2(f.p95))
	}
	var fpm *float64
	if f.failOK {
		fpm = tbops.Num(round2(f.failPerMin))
	}
	pendingKnown := f.pendingGaugeOK || f.pendingOK
	pending := f.pendingGauge
	if !f.pendingGaugeOK {
		pending = float64(len(f.pending))
	}
	add("EnergyOracleLatencyCritical", f.p95OK, f.p95 > OracleP95Critical, p95)
	add("EnergySignatureFailuresCritical", f.failOK, f.failPerMin > FailuresPerMinCritical, fpm)
	add("EnergySettlementStalled", f.settleOK && (pendingKnown || f.settleInc > 0), f.settleInc == 0 && pending > 0, tbops.Num(round2(f.settleInc)))
	add("EnergyDisputeBacklogCritical", f.disputesOK, f.disputesGauge > DisputesCritical, tbops.Num(f.disputesGauge))
	add("EnergyOracleLatencyHigh", f.p95OK, f.p95 > OracleP95Warning, p95)
	add("EnergySignatureFailures", f.failOK, f.failPerMin > FailuresPerMinWarning, fpm)
	add("EnergyDisputeBacklog", f.disputesOK, f.disputesGauge > DisputesWarning, tbops.Num(f.disputesGauge))
}

// slos evaluates the Energy SLO table. A row is ok when its target is met,
// warning when not, unknown without data. Settlement rate = settled credits /
// (settled + credits pending longer than the trend window): fresh pending
// credits are in flight, not failures. Signature validation = 1 − failures /
// (failures + settlements) over 5 m, taking each settlement as one accepted
// reading (no metric counts accepted readings). Dispute resolution = the
// longest resolution time of resolved disputes, and no dispute open over 2 h.
func (d *diag) slos() {
	f := &d.data
	defs := SLOs()
	row := func(i int, v *float64, met, known bool, ev []tbops.Evidence) {
		s := tbops.SLO{Name: defs[i].Name, Target: defs[i].Target, AlertThreshold: defs[i].AlertThreshold, Value: v, Met: known && met, Evidence: ev}
		switch {
		case !known:
			s.Status = tbops.StatusUnknown
		case met:
			s.Status = tbops.StatusOK
		default:
			s.Status = tbops.StatusWarning
		}
		d.r.SLOs = append(d.r.SLOs, s)
	}
	row(0, roundOrNil(f.p95, f.p95OK), f.p95 < 5, f.p95OK, f.latencyEv)
	// signature validation
	var sv *float64
	svOK, svMet := false, false
	if f.failOK && d.src != nil {
		res, _, ok := d.query([]string{MetricSettlements, MetricSettlementsRef}, func(sel promq.Selector) (promq.Result, error) {
			return d.src.Rate(d.ctx, sel, RateWindow)
		})
		if ok {
			settle, _ := res.Sum()
			fails := f.failPerMin / 60
			ratio := 1.0
			if settle+fails > 0 {
				ratio = settle / (settle + fails)
			}
			sv, svOK, svMet = tbops.Num(ratio), true, ratio > 0.999
		}
	}
	row(1, sv, svMet, svOK, f.failEv)
	// settlement rate
	var sr *float64
	srOK := f.pendingOK && f.settledCount+f.stuckCnt > 0
	srMet := false
	if srOK {
		ratio := float64(f.settledCount) / float64(f.settledCount+f.stuckCnt)
		sr, srMet = tbops.Num(ratio), ratio > 0.95
	} else if f.pendingOK && f.settledCount == 0 && len(f.pending) == 0 {
		srOK, srMet = true, true // no credits at all: nothing failed to settle
	}
	row(2, sr, srMet, srOK, []tbops.Evidence{f.pendingListEv})
	// dispute resolution
	if f.disputesListOK {
		var longest time.Duration
		oldestOpen := time.Duration(0)
		for _, ds := range f.disputes {
			if ds.ResolvedAt != nil && ds.OpenedAt > 0 {
				longest = max(longest, time.Duration(*ds.ResolvedAt-ds.OpenedAt)*time.Second)
			} else if ds.ResolvedAt == nil && ds.OpenedAt > 0 {
				oldestOpen = max(oldestOpen, d.now.Sub(time.Unix(ds.OpenedAt, 0)))
			}
		}
		dr := tbops.Num(max(longest, oldestOpen).Seconds()) // the longest a dispute has taken or is taking
		row(3, dr, longest < time.Hour && oldestOpen < time.Hour, true, []tbops.Evidence{f.disputesListEv})
	} else {
		row(3, nil, false, false, nil)
	}
}

func roundOrNil(v float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return tbops.Num(round2(v))
}
