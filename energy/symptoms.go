package energy

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// oracleSymptom is "oracle_latency_seconds_p95 > 10": the EnergyOracleLatencyHigh
// rule's evaluation (the same condition), critical when EnergyOracleLatencyCritical
// fires. Its detail says which p95 it is: the node's gauge, or the histogram's
// last 5 minutes.
func (d *diag) oracleSymptom() tbops.Symptom {
	s := tbops.Symptom{ID: SymptomOracleLatency, Summary: fmt.Sprintf("oracle latency p95 > %gs", OracleP95Warning), Threshold: tbops.Num(OracleP95Warning)}
	warn := d.rules[AlertOracleLatencyHigh]
	d.ruleSymptom(&s, warn, d.rules[AlertOracleLatencyCritical])
	if from := p95Source(warn); from != "" {
		s.Detail = tbops.RawOf(from)
	}
	return s
}

// p95Source says where a latency rule's p95 came from.
func p95Source(st promq.RuleState) string {
	switch {
	case st.Worst == nil:
		return ""
	case string(st.Worst.Metric["__name__"]) == MetricOracleP95:
		return "from the node's " + MetricOracleP95 + " gauge"
	}
	return fmt.Sprintf("derived from the %s histogram over %s (the node exports no %s gauge)", MetricOracleLatency, RateWindow, MetricOracleP95)
}

// signatureSymptom is "failures increasing rapidly (> 1/min)": the
// EnergySignatureFailures rule's evaluation, critical when
// EnergySignatureFailuresCritical fires.
func (d *diag) signatureSymptom() tbops.Symptom {
	s := tbops.Symptom{ID: SymptomSignatureFailures, Summary: fmt.Sprintf("signature verification failures > %g/min", FailuresPerMinWarning),
		Threshold: tbops.Num(FailuresPerMinWarning)}
	d.ruleSymptom(&s, d.rules[AlertSignatureFailures], d.rules[AlertSignatureFailuresCritical])
	if d.m.failMetric == MetricFailuresRef {
		s.Detail = tbops.RawOf("counted by " + MetricFailuresRef + " (the reference node's name)")
	}
	return s
}

// ruleSymptom decides a symptom from its warning rule and escalates it when the
// critical rule fires. An undecided rule leaves it unknown, with the rule's
// warnings (how much was observed, what would decide it).
func (d *diag) ruleSymptom(s *tbops.Symptom, warn, crit promq.RuleState) {
	s.Evidence = append(s.Evidence, warn.Evidence...)
	if v, ok := exact(warn.Worst); ok {
		s.Value = tbops.Num(round2(v))
	}
	switch {
	case crit.Known && crit.Firing:
		s.Firing, s.Status = true, tbops.StatusCritical
	case !warn.Known:
		s.Status = tbops.StatusUnknown
		d.warnAll(ruleWarnings(warn))
	case warn.Firing:
		s.Firing, s.Status = true, tbops.StatusWarning
	default:
		s.Status = tbops.StatusOK
	}
}

// ruleWarnings are what an undecided rule says, less the "no data" notes of
// the `or` alternatives the node does not export (the reference node's names,
// the p95 gauge) when the rule had data from the other.
func ruleWarnings(st promq.RuleState) []string { return quiet(st.Warnings, st.NoData) }

// quiet drops the "no data for" notes from warnings unless some selector's
// missing data left the answer empty (noData).
func quiet(warnings, noData []string) []string {
	if len(noData) > 0 {
		return warnings
	}
	var out []string
	for _, w := range warnings {
		if !strings.HasPrefix(w, "no data for ") {
			out = append(out, w)
		}
	}
	return out
}

// exact is a series' value when it is the full window's (not NaN).
func exact(s *promq.Series) (float64, bool) {
	if s == nil || s.Value == nil || !s.Exact || math.IsNaN(*s.Value) {
		return 0, false
	}
	return *s.Value, true
}

// oldestPending is the age of the oldest pending credit listed, and whether
// some credit lacked created_at.
func (d *diag) oldestPending() (age time.Duration, undated bool) {
	for _, cr := range d.g.pending {
		if cr.CreatedAt == nil {
			undated = true
			continue
		}
		age = max(age, d.since(*cr.CreatedAt))
	}
	return age, undated
}

// pendingSymptom is "pending credits not decreasing", decided from the exact
// RPC evidence: a credit pending for more than SettleWindow (its created_at
// against now) has not been settled in the window. It fires on one, unless the
// energy_pending_credits_total gauge, observed over the whole window, went
// down (a backlog that drains, slowly). No credit pending that long (the whole
// list read) is ok. Without the list, a gauge that went down over the covered
// window is ok; a flat one alone cannot tell a stuck backlog from a steady
// flow, so the symptom stays unknown.
func (d *diag) pendingSymptom() tbops.Symptom {
	g, tr := &d.g, d.m.pendingTrend
	s := tbops.Symptom{ID: SymptomPendingCredits, Summary: fmt.Sprintf("pending credits not decreasing: a credit pending over %s", SettleWindow),
		Status: tbops.StatusUnknown, Threshold: tbops.Num(SettleWindow.Seconds())}
	age, undated := d.oldestPending()
	listed := g.pendingErr == nil
	if listed {
		s.Value = tbops.Num(age.Round(time.Second).Seconds())
		s.Evidence = append(s.Evidence, d.rpcEv(MethodCredits+` {"status":"pending"} | now - min(created_at)`, s.Value, nil))
	} else {
		s.Evidence = append(s.Evidence, d.rpcEv(MethodCredits+` {"status":"pending"}`, nil, g.pendingErr))
	}
	if tr.known {
		s.Evidence = append(s.Evidence, tr.ev)
	}
	drained := tr.known && tr.last < tr.first
	stuck := listed && age > SettleWindow
	switch {
	case stuck && drained:
		s.Status, s.Detail = tbops.StatusOK, tbops.RawOf(fmt.Sprintf("a credit has been pending %s, but %s went down from %g to %g over %s: the backlog drains",
			age.Round(time.Second), MetricPendingCredits, tr.first, tr.last, SettleWindow))
	case stuck:
		s.Firing, s.Status = true, tbops.StatusWarning
		s.Detail = tbops.RawOf(fmt.Sprintf("the oldest pending credit was created %s ago", age.Round(time.Second)))
	case listed && g.pendingComplete && !undated:
		s.Status = tbops.StatusOK
		s.Detail = tbops.RawOf(fmt.Sprintf("%d credits pending, none for over %s", len(g.pending), SettleWindow))
	case drained:
		s.Status = tbops.StatusOK
		s.Detail = tbops.RawOf(fmt.Sprintf("%s went down from %g to %g over %s", MetricPendingCredits, tr.first, tr.last, SettleWindow))
	default:
		s.Value = nil // the list is cut or undated: its oldest age is not the backlog's
		why := "the pending list is incomplete"
		if !listed {
			why = MethodCredits + " failed"
		}
		if tr.why != "" {
			why += "; " + tr.why
		}
		d.warn(fmt.Sprintf("%s unknown: %s", SymptomPendingCredits, why))
	}
	return s
}

// newestSettlement is the newest last_settlement of the providers looked up
// (0: none ever settled) and whether it is every provider's: the whole market
// looked up, each answer carrying the field.
func (d *diag) newestSettlement() (newest int64, all bool) {
	g := &d.g
	all = g.marketErr == nil && len(g.providers) == len(g.market.Providers)
	for _, l := range g.providers {
		if l.err != nil || l.p.LastSettlement == nil {
			all = false
			continue
		}
		newest = max(newest, *l.p.LastSettlement)
	}
	return newest, all
}

// settlingSymptom is "provider readings not settling": no settlement in
// SettleWindow while credits are pending, decided from the exact RPC evidence
// (the providers' last_settlement, the pending credits): a settlement inside
// the window, or nothing pending, is ok; every provider's last settlement older
// than the window while credits are pending fires. Otherwise (a provider not
// looked up, energy.provider not served) the EnergySettlementStalled rule's
// evaluation decides, which needs the window covered.
func (d *diag) settlingSymptom() tbops.Symptom {
	g := &d.g
	s := tbops.Symptom{ID: SymptomNotSettling, Summary: fmt.Sprintf("no settlement in %s while credits are pending", SettleWindow),
		Threshold: tbops.Num(SettleWindow.Seconds())}
	newest, all := d.newestSettlement()
	s.Evidence = append(s.Evidence, d.rpcEv(MethodProvider+" | max(last_settlement)", newest, nil))
	if all && newest > 0 { // the market's newest settlement, not just of the providers seen
		s.Value = tbops.Num(d.since(newest).Round(time.Second).Seconds())
	}
	pending := len(g.pending)
	switch {
	case g.pendingErr == nil && pending == 0:
		s.Status, s.Detail = tbops.StatusOK, tbops.RawOf("no credit is pending: nothing waits to settle")
	case newest > 0 && d.since(newest) <= SettleWindow:
		s.Status, s.Detail = tbops.StatusOK, tbops.RawOf("last settlement "+d.ago(&newest))
	case all && g.pendingErr == nil:
		s.Firing, s.Status = true, tbops.StatusCritical
		s.Detail = tbops.RawOf(fmt.Sprintf("no provider settled in %s (newest settlement %s) while %d credits are pending", SettleWindow, d.ago(&newest), pending))
	default:
		st := d.rules[AlertSettlementStalled]
		s.Evidence = append(s.Evidence, st.Evidence...)
		s.Status, s.Firing = st.Status(), st.Known && st.Firing
		s.Detail = tbops.RawOf(fmt.Sprintf("not every provider's last settlement is known: decided by %s", AlertSettlementStalled))
		if !st.Known {
			d.warnAll(ruleWarnings(st))
		}
	}
	return s
}

// disputeSymptom is "disputes backlog increasing": more than one dispute more
// opened than resolved in SettleWindow, decided from energy.disputes' opened_at
// and resolved_at when the page holds every dispute of the window, else from
// energy_active_disputes_total over the covered window. Critical when
// EnergyDisputeBacklogCritical fires (more than 50 active).
func (d *diag) disputeSymptom() tbops.Symptom {
	s := tbops.Symptom{ID: SymptomDisputes, Summary: fmt.Sprintf("active disputes increasing over %s", SettleWindow),
		Threshold: tbops.Num(1), Status: tbops.StatusUnknown}
	growth, known := d.disputeGrowth(&s)
	if !known {
		return s
	}
	s.Value, s.Firing = tbops.Num(round2(growth)), growth > 1
	s.Status = tbops.StatusOK
	if s.Firing {
		s.Status = tbops.StatusWarning
		if crit := d.rules[AlertDisputeBacklogCritical]; crit.Known && crit.Firing {
			s.Status = tbops.StatusCritical
			s.Evidence = append(s.Evidence, crit.Evidence...)
		}
	}
	return s
}

// disputeGrowth is how many more disputes were opened than resolved in the
// window: from the RPC when its page covers the window, else the gauge's rise.
func (d *diag) disputeGrowth(s *tbops.Symptom) (float64, bool) {
	g, tr := &d.g, d.m.disputeTrend
	since := d.now.Add(-SettleWindow).Unix()
	if g.disputesErr == nil {
		opened, resolved, dated := 0, 0, true
		for _, ds := range g.disputes {
			if ds.OpenedAt == nil {
				dated = false
				continue
			}
			if *ds.OpenedAt >= since {
				opened++
			}
			if ds.ResolvedAt != nil && *ds.ResolvedAt >= since {
				resolved++
			}
		}
		s.Evidence = append(s.Evidence, d.rpcEv(fmt.Sprintf(`%s {"limit":%d} | opened_at, resolved_at >= %d`, MethodDisputes, disputeLimit, since),
			map[string]int{"opened": opened, "resolved": resolved}, nil))
		if dated && g.disputesComplete {
			s.Detail = tbops.RawOf(fmt.Sprintf("%d disputes opened and %d resolved in %s", opened, resolved, SettleWindow))
			return float64(opened - resolved), true
		}
	} else {
		s.Evidence = append(s.Evidence, d.rpcEv(MethodDisputes, nil, g.disputesErr))
	}
	if tr.known {
		s.Evidence = append(s.Evidence, tr.ev)
		s.Detail = tbops.RawOf(fmt.Sprintf("%s went from %g to %g over %s", MetricActiveDisputes, tr.first, tr.last, SettleWindow))
		return tr.last - tr.first, true
	}
	why := tr.why
	if why == "" {
		why = "no metrics source"
	}
	d.warn(fmt.Sprintf("%s unknown: %s does not list every dispute of the window, and %s", SymptomDisputes, MethodDisputes, why))
	return 0, false
}
