package receipts

import (
	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// alerts is the Alerts block: each rule of Rules() as promq.EvalRule decided
// it on the source, nothing evaluated by hand. Its detail names the labels of
// each firing alert (the market among them), or what was observed of what the
// rule needs.
func (d *diagnosis) alerts() {
	for _, res := range d.rules {
		if !res.ok {
			res.state = promq.RuleState{Rule: res.rule} // unknown: not evaluated
		} else if !res.state.Known {
			d.warnAll(res.state.Warnings)
		}
		d.r.Alerts = append(d.r.Alerts, res.state.ReportAlert())
	}
}

// slos evaluates the Receipts SLO table: each row from the symptom or the rule
// that measures it on the node, unknown when nothing does.
func (d *diagnosis) slos() {
	em := tbops.SLO{Name: "Emission Rate", Target: "All markets", AlertThreshold: "Any market = 0 for 5 blocks", Status: tbops.StatusUnknown}
	if s, ok := d.r.Symptom(SymptomMarketNotEmitting); ok {
		em.Evidence = s.Evidence
		switch s.Status {
		case tbops.StatusOK:
			em.Met, em.Status, em.Value = true, tbops.StatusOK, tbops.Num(len(d.markets))
		case tbops.StatusCritical:
			em.Status, em.Value = tbops.StatusCritical, tbops.Num(len(d.markets)-len(d.stalled))
		}
	}
	vs := d.sloFromSymptom(tbops.SLO{Name: "Validation Success", Target: "> 99.99%", AlertThreshold: "< 99% for 10 min"}, SymptomValidationErrors)
	mp := d.sloFromSymptom(tbops.SLO{Name: "Min-Payment Rejections", Target: "Near-zero", AlertThreshold: "Sudden increase in receipt_min_payment_rejected_total"}, SymptomMinPayment)
	d.r.SLOs = append(d.r.SLOs, em, vs, mp, d.queryLatencySLO())
	// "Storage: all receipts, alert when > 1 week" cannot be evaluated: the node
	// exposes no retention (oldest stored receipt) in RPC or metrics.
	d.r.Steps = append(d.r.Steps, tbops.Step{ID: "slo-storage", Title: "SLO: receipt storage",
		Findings: []string{"Storage (all receipts, alert at > 1 week) not checked: the node exposes no receipt retention in its RPC or metrics; check the node's receipt store on the host"}})
}

// sloFromSymptom is an SLO row measured by the symptom of the same window:
// its value, status and evidence.
func (d *diagnosis) sloFromSymptom(slo tbops.SLO, id string) tbops.SLO {
	slo.Status = tbops.StatusUnknown
	if s, ok := d.r.Symptom(id); ok {
		slo.Value, slo.Status, slo.Evidence = s.Value, s.Status, s.Evidence
		slo.Met = s.Status == tbops.StatusOK
	}
	return slo
}

// queryLatencySLO is the node's own p99 receipts query latency, from the
// ReceiptsQueryLatencyHigh rule on receipt_query_duration_seconds: unknown when
// the node exports no such histogram. tbops's round trips never stand in.
func (d *diagnosis) queryLatencySLO() tbops.SLO {
	slo := tbops.SLO{Name: "Query Latency p99", Target: "< 100ms", AlertThreshold: "> 500ms for 5 min", Status: tbops.StatusUnknown}
	res := d.rule(AlertQueryLatencyHigh)
	if !res.ok {
		return slo
	}
	slo.Evidence = res.state.Evidence
	slo.Value = exactValue(res.state.Worst)
	switch {
	case res.state.Known && res.state.Firing:
		slo.Status = tbops.StatusWarning
	case slo.Value == nil:
	case *slo.Value < QueryLatencyTarget.Seconds():
		slo.Met, slo.Status = true, tbops.StatusOK
	default:
		slo.Status = tbops.StatusWarning
	}
	return slo
}
