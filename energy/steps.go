package energy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Step ids of the energy-stalled report (the runbook's diagnosis steps 1–5).
const (
	StepOracleLatency  = "oracle-latency"
	StepSignatures     = "signature-failures"
	StepPendingCredits = "pending-credits"
	StepTimestampSkew  = "timestamp-skew"
	StepProviders      = "provider-status"
)

func (d *diag) steps() {
	d.r.Steps = append(d.r.Steps, d.latencyStep(), d.signatureStep(), d.pendingStep(), d.skewStep(), d.providerStep())
}

// latencyStep is step 1: the p95 the symptom used and the runbook's own
// cumulative quantiles.
func (d *diag) latencyStep() tbops.Step {
	st := tbops.Step{ID: StepOracleLatency, Title: "Oracle latency distribution"}
	rule := d.rules[AlertOracleLatencyHigh]
	if v, ok := exact(rule.Worst); ok {
		st.Findings = append(st.Findings, fmt.Sprintf("p95 %.2fs, %s (SLO: p95 < 5s)", v, p95Source(rule)))
	} else {
		st.Findings = append(st.Findings, "p95 over the last 5m unknown: "+undecided(rule))
	}
	if c := d.m.cumulative; len(c) == 3 {
		st.Findings = append(st.Findings, fmt.Sprintf("since the node started (cumulative buckets, the runbook's queries): p50 %.2fs, p95 %.2fs, p99 %.2fs",
			c[0.50], c[0.95], c[0.99]))
		st.Evidence = append(st.Evidence, d.m.cumulativeEv...)
	}
	st.Evidence = append(st.Evidence, rule.Evidence...)
	st.Findings = append(st.Findings, "the oracle process and its logs are on the oracle host: systemctl status energy-oracle; grep oracle_latency /var/log/oracle/*.log | tail -20")
	return st
}

// undecided says why a rule is unknown, for a finding.
func undecided(st promq.RuleState) string {
	switch {
	case len(ruleWarnings(st)) > 0:
		return strings.Join(ruleWarnings(st), "; ")
	case st.Evidence == nil:
		return "no metrics source"
	}
	return "no data"
}

// signatureStep is step 2: the failure rate and its breakdown by reason, the
// log lines, and the keys Path B checks (the oracle key manager and each
// provider's registered key).
func (d *diag) signatureStep() tbops.Step {
	st := tbops.Step{ID: StepSignatures, Title: "Signature verification failures"}
	rule := d.rules[AlertSignatureFailures]
	if v, ok := exact(rule.Worst); ok {
		st.Findings = append(st.Findings, fmt.Sprintf("%.2f failures/min over 5m (%s)", v, d.m.failMetric))
	} else {
		st.Findings = append(st.Findings, "failure rate over the last 5m unknown: "+undecided(rule))
	}
	st.Evidence = append(st.Evidence, rule.Evidence...)
	if d.m.failMetric != "" {
		st.Findings = append(st.Findings, d.reasonFindings()...)
		st.Evidence = append(st.Evidence, d.m.failTotals.Evidence, d.m.failRates.Evidence)
	}
	st.Findings = append(st.Findings, d.logFinding(0, signatureLogKeys, "tail -30"))
	if d.logsRead() {
		st.Evidence = append(st.Evidence, tbops.Evidence{Source: tbops.SourceLog, Query: d.grepQuery(signatureLogKeys, "tail -30"),
			Value: tbops.RawOf(d.h.logs.Found[0].Lines), At: d.now.UTC()})
	}
	keys, ev := d.keyFindings()
	st.Findings = append(st.Findings, keys...)
	st.Evidence = append(st.Evidence, ev...)
	return st
}

// reasonFindings are the runbook's breakdown by reason: each counter's total
// and its rate a minute (exact when the 5m window is covered, else the lower
// bound the observed part shows).
func (d *diag) reasonFindings() []string {
	totals := d.m.failTotals.ByLabel("reason")
	rates := map[string]promq.Series{}
	for _, s := range d.m.failRates.Series {
		rates[string(s.Metric["reason"])] = s
	}
	var out []string
	for _, reason := range Reasons() {
		total, ok := totals[reason]
		if !ok {
			out = append(out, fmt.Sprintf("  %s: no series", reason))
			continue
		}
		rate := "rate unknown"
		if s, ok := rates[reason]; ok {
			if v, ok := exact(&s); ok {
				rate = fmt.Sprintf("%.2f/min", v)
			} else if s.Min > 0 {
				rate = fmt.Sprintf("at least %.2f/min (5m window not covered)", s.Min)
			}
		}
		out = append(out, fmt.Sprintf("  %s: %g total, %s", reason, total, rate))
	}
	return out
}

// logFinding counts the lines one log grep found (filter i of the scan).
func (d *diag) logFinding(i int, keys []string, tail string) string {
	grep := d.grepQuery(keys, tail)
	switch {
	case len(d.o.LogGlobs) == 0:
		return "node logs not read (no log glob given); on the node's host: " + grep
	case !d.logsRead():
		return "node logs not read: " + strings.Join(d.h.logs.Problems, "; ")
	}
	return fmt.Sprintf("%d lines match %q in %d log files", d.h.logs.Found[i].Matched, strings.Join(keys, `\|`), len(d.h.logs.Files))
}

// keyCheck is Path B's comparison of one provider's key: energy.provider's
// public_key against the oracle key manager's (energy.oracle_keys).
type keyCheck struct {
	id       string
	problem  string // "" when the keys agree and the oracle's has not expired
	provider string
}

// keyChecks compares the keys of the first providers looked up.
func (d *diag) keyChecks() []keyCheck {
	g := &d.g
	oracle := map[string]OracleKey{}
	for _, k := range g.keys.Keys {
		oracle[k.ProviderID] = k
	}
	var out []keyCheck
	for _, l := range g.providers[:min(len(g.providers), keyLookups)] {
		if l.err != nil {
			continue
		}
		c := keyCheck{id: l.id, provider: l.p.PublicKey}
		k, ok := oracle[l.id]
		switch {
		case g.keysErr != nil:
		case !ok:
			c.problem = "the oracle key manager has no key for it (key_not_found)"
		case !sameKey(k.PublicKey, l.p.PublicKey):
			c.problem = "its energy.provider public_key differs from the oracle key manager's (verification_failed)"
		case k.ExpiresAt != nil && *k.ExpiresAt <= d.now.Unix():
			c.problem = "the oracle's key for it expired " + d.ago(k.ExpiresAt)
		case k.Scheme != "" && l.p.Scheme != "" && k.Scheme != l.p.Scheme:
			c.problem = fmt.Sprintf("the oracle expects scheme %s, the provider is registered for %s (scheme_unsupported)", k.Scheme, l.p.Scheme)
		}
		out = append(out, c)
	}
	return out
}

// sameKey compares two public keys whatever their encoding (hex or base64).
func sameKey(a, b string) bool {
	ka, errA := DecodePublicKey(a)
	kb, errB := DecodePublicKey(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return ka.Equal(kb)
}

func (d *diag) keyFindings() ([]string, []tbops.Evidence) {
	g := &d.g
	ev := []tbops.Evidence{d.rpcEv(MethodOracleKeys+" | {status, keys: length}", map[string]any{"status": g.keys.Status, "keys": len(g.keys.Keys)}, g.keysErr)}
	var out []string
	if g.keysErr != nil {
		out = append(out, "oracle key manager unknown: "+problem(MethodOracleKeys, g.keysErr))
	} else {
		out = append(out, fmt.Sprintf("oracle key manager: %s, %d provider keys (%s)", orUnknown(g.keys.Status), len(g.keys.Keys), MethodOracleKeys))
	}
	keys := map[string]string{}
	for _, c := range d.keyChecks() {
		keys[c.id] = c.provider
		if c.problem != "" {
			out = append(out, fmt.Sprintf("  %s: %s", c.id, c.problem))
		} else {
			out = append(out, fmt.Sprintf("  %s: public key %s", c.id, c.provider))
		}
	}
	ev = append(ev, d.rpcEv(MethodProvider+" | .public_key", keys, nil))
	return out, ev
}

func orUnknown(s string) string {
	if s == "" {
		return "status unknown"
	}
	return s
}

// problem says why a call of method gave nothing: a method the node does not
// serve, else the error (which names the method).
func problem(method string, err error) string {
	if isMethodNotFound(err) {
		return method + " is not served by this node (JSON-RPC -32601 method not found)"
	}
	return err.Error()
}

// pendingStep is step 3: the pending credits, in total and by provider.
func (d *diag) pendingStep() tbops.Step {
	g := &d.g
	st := tbops.Step{ID: StepPendingCredits, Title: "Meter reading accumulation"}
	query := fmt.Sprintf(`%s {"limit":%d,"status":"pending"}`, MethodCredits, d.o.CreditLimit)
	if g.pendingErr != nil {
		st.Findings = append(st.Findings, "pending credits unknown: "+g.pendingErr.Error())
		st.Evidence = append(st.Evidence, d.rpcEv(query, nil, g.pendingErr))
		return st
	}
	type agg struct {
		n   int
		kwh float64
	}
	total, by := 0.0, map[string]*agg{}
	for _, cr := range g.pending {
		a := by[cr.ProviderID]
		if a == nil {
			a = &agg{}
			by[cr.ProviderID] = a
		}
		a.n++
		if cr.AmountKWh != nil {
			total += *cr.AmountKWh
			a.kwh += *cr.AmountKWh
		}
	}
	age, _ := d.oldestPending()
	count := fmt.Sprint(len(g.pending))
	if !g.pendingComplete {
		count = "at least " + count
	}
	st.Findings = append(st.Findings, fmt.Sprintf("%s pending credits, %g kWh in total; the oldest created %s ago", count, total, age.Round(time.Second)))
	ids := make([]string, 0, len(by))
	for k := range by {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	for _, k := range ids {
		st.Findings = append(st.Findings, fmt.Sprintf("  %s: %d credits, %g kWh", k, by[k].n, by[k].kwh))
	}
	st.Evidence = append(st.Evidence, d.rpcEv(query+" | {count, total_kwh}", map[string]any{"count": len(g.pending), "total_kwh": total, "complete": g.pendingComplete}, nil))
	if tr := d.m.pendingTrend; tr.known {
		st.Findings = append(st.Findings, fmt.Sprintf("%s went from %g to %g over %s", MetricPendingCredits, tr.first, tr.last, SettleWindow))
		st.Evidence = append(st.Evidence, tr.ev)
	}
	return st
}

// skewStep is step 4: timestamp_skew lines in the node's logs, the providers'
// settlement times and their spread, and, when asked, this host's clock.
func (d *diag) skewStep() tbops.Step {
	st := tbops.Step{ID: StepTimestampSkew, Title: "Timestamp skew and provider clocks"}
	st.Findings = append(st.Findings, d.logFinding(1, skewLogKeys, "wc -l"))
	if d.logsRead() {
		st.Evidence = append(st.Evidence, tbops.Evidence{Source: tbops.SourceLog, Query: d.grepQuery(skewLogKeys, "wc -l"),
			Value: tbops.RawOf(d.h.logs.Found[1].Matched), At: d.now.UTC()})
	}
	times := map[string]any{}
	for _, l := range d.g.providers {
		if l.err != nil {
			st.Findings = append(st.Findings, fmt.Sprintf("  %s: %s", l.id, problem(MethodProvider, l.err)))
			times[l.id] = l.err.Error()
			continue
		}
		st.Findings = append(st.Findings, fmt.Sprintf("  %s: last settlement %s, last reading %s", l.id, d.ago(l.p.LastSettlement), d.ago(l.p.LastReadingAt)))
		times[l.id] = map[string]*int64{"last_settlement": l.p.LastSettlement, "last_reading_at": l.p.LastReadingAt}
	}
	if len(times) > 0 {
		st.Evidence = append(st.Evidence, d.rpcEv(MethodProvider+" | {last_settlement, last_reading_at}", times, nil))
	}
	if sp, ok := d.settlementSpread(); ok {
		st.Findings = append(st.Findings, fmt.Sprintf("active providers' last settlements span %s (%s lags furthest)", sp.span.Round(time.Second), sp.laggard))
	}
	if c := d.h.clock; c != nil {
		st.Findings = append(st.Findings, "this host's clock (the machine running tbops, not the node): "+c.describe())
		st.Evidence = append(st.Evidence, tbops.Evidence{Source: tbops.SourceHost, Query: "this host's clock: " + c.Source, Value: tbops.RawOf(c), At: d.now.UTC()})
	}
	return st
}

// spread is how far apart the active providers' last settlements are.
type spread struct {
	span time.Duration
	// laggard is the provider whose last settlement is the oldest, lagging are
	// those more than SettleWindow behind the newest.
	laggard string
	lagging []string
}

// settlementSpread is the spread of the active providers' last settlements
// (at least two needed): a provider whose clock is off by more than the skew
// tolerance has every reading refused, so its settlements stop while the
// others' go on.
func (d *diag) settlementSpread() (spread, bool) {
	type at struct {
		id string
		t  int64
	}
	var ts []at
	for _, l := range d.g.providers {
		if l.err == nil && l.p.LastSettlement != nil && *l.p.LastSettlement > 0 && (l.p.Status == "" || l.p.Status == "active") {
			ts = append(ts, at{l.id, *l.p.LastSettlement})
		}
	}
	if len(ts) < 2 {
		return spread{}, false
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].t < ts[j].t })
	newest := ts[len(ts)-1].t
	sp := spread{span: time.Duration(newest-ts[0].t) * time.Second, laggard: ts[0].id}
	for _, x := range ts {
		if time.Duration(newest-x.t)*time.Second > SettleWindow {
			sp.lagging = append(sp.lagging, x.id)
		}
	}
	return sp, true
}

// providerStep is step 5: providers not active, and those with poor reputation.
func (d *diag) providerStep() tbops.Step {
	g := &d.g
	st := tbops.Step{ID: StepProviders, Title: "Provider status and reputation"}
	if g.marketErr != nil {
		st.Findings = append(st.Findings, "market unknown: "+problem(g.marketMethod, g.marketErr))
		st.Evidence = append(st.Evidence, d.rpcEv(g.marketMethod, nil, g.marketErr))
		return st
	}
	inactive, poor := d.inactive(), d.poor()
	st.Findings = append(st.Findings, fmt.Sprintf("%d providers, %d not active, %d with reputation below %.1f", len(g.market.Providers), len(inactive), len(poor), ReputationFloor))
	for _, p := range inactive {
		st.Findings = append(st.Findings, fmt.Sprintf("  not active: %s (%s, reputation %s)", p.ProviderID, p.Status, scoreText(p)))
	}
	for _, p := range poor {
		st.Findings = append(st.Findings, fmt.Sprintf("  poor reputation: %s (%s)", p.ProviderID, scoreText(p)))
	}
	st.Evidence = append(st.Evidence, d.rpcEv(g.marketMethod+" | {providers, not_active, poor}",
		map[string]int{"providers": len(g.market.Providers), "not_active": len(inactive), "poor": len(poor)}, nil))
	return st
}

func scoreText(p Provider) string {
	if v, ok := p.Score(); ok {
		return fmt.Sprintf("%.2f", v)
	}
	return "unknown"
}

func (d *diag) inactive() []Provider {
	var out []Provider
	for _, p := range d.g.market.Providers {
		if p.Status != "" && p.Status != "active" {
			out = append(out, p)
		}
	}
	return out
}

// poor are the providers whose score is known and below ReputationFloor.
func (d *diag) poor() []Provider {
	var out []Provider
	for _, p := range d.g.market.Providers {
		if v, ok := p.Score(); ok && v < ReputationFloor {
			out = append(out, p)
		}
	}
	return out
}
