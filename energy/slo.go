package energy

import (
	"context"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// slos evaluates the Energy SLO table. A row is ok when its target is met,
// warning when not, unknown without the data. Oracle latency p95 is the
// symptom's exact p95. Signature validation = 1 − failures / (failures +
// settlements) over 5m, taking each settlement as one accepted reading (no
// metric counts accepted readings), from exact rates only. Settlement rate =
// settled credits / (settled + credits pending longer than SettleWindow):
// fresh pending credits are in flight, not failures. Dispute resolution = the
// longest a dispute took or is taking, met under an hour.
func (d *diag) slos(ctx context.Context) {
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
	lat := d.rules[AlertOracleLatencyHigh]
	p95, ok := exact(lat.Worst)
	row(0, numIf(round2(p95), ok), p95 < 5, ok, lat.Evidence)
	ratio, ev, ok := d.validationRatio(ctx)
	row(1, numIf(ratio, ok), ratio > 0.999, ok, ev)
	ratio, ok = d.settlementRatio()
	row(2, numIf(ratio, ok), ratio > 0.95, ok, []tbops.Evidence{d.rpcEv(MethodCredits+" | settled / (settled + pending over 10m)", numIf(ratio, ok), d.g.settledErr)})
	longest, ok := d.longestDispute()
	row(3, numIf(longest.Seconds(), ok), longest < time.Hour, ok, []tbops.Evidence{d.rpcEv(MethodDisputes+" | max(resolved_at or now - opened_at)", numIf(longest.Seconds(), ok), d.g.disputesErr)})
}

func numIf(v float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return tbops.Num(v)
}

// validationRatio is the share of readings that passed verification over 5m.
func (d *diag) validationRatio(ctx context.Context) (float64, []tbops.Evidence, bool) {
	if d.src == nil {
		return 0, nil, false
	}
	fails, fok := exact(d.rules[AlertSignatureFailures].Worst)
	settle := promq.Or(promq.Rate(promq.Select(MetricSettlements), RateWindow), promq.Rate(promq.Select(MetricSettlementsRef), RateWindow))
	ev := d.eval(ctx, promq.Mul(settle, promq.Num(60)))
	evidence := append([]tbops.Evidence{ev.Evidence}, d.rules[AlertSignatureFailures].Evidence...)
	if !fok || len(ev.Series) != 1 {
		return 0, evidence, false
	}
	settled, sok := exact(&ev.Series[0])
	if !sok {
		return 0, evidence, false
	}
	if settled+fails == 0 {
		return 1, evidence, true
	}
	return settled / (settled + fails), evidence, true
}

// settlementRatio is settled / (settled + pending longer than SettleWindow).
func (d *diag) settlementRatio() (float64, bool) {
	g := &d.g
	if g.pendingErr != nil || g.settledErr != nil || !g.pendingComplete {
		return 0, false
	}
	stuck := 0
	for _, cr := range g.pending {
		if cr.CreatedAt == nil {
			return 0, false
		}
		if d.since(*cr.CreatedAt) > SettleWindow {
			stuck++
		}
	}
	if g.settled+stuck == 0 {
		return 1, true // nothing settled and nothing stuck: nothing failed to settle
	}
	return float64(g.settled) / float64(g.settled+stuck), true
}

// longestDispute is the longest a dispute took to resolve or has been open.
func (d *diag) longestDispute() (time.Duration, bool) {
	g := &d.g
	if g.disputesErr != nil || !g.disputesComplete {
		return 0, false
	}
	var longest time.Duration
	for _, ds := range g.disputes {
		if ds.OpenedAt == nil {
			return 0, false
		}
		end := d.now
		if ds.ResolvedAt != nil {
			end = time.Unix(*ds.ResolvedAt, 0)
		}
		longest = max(longest, end.Sub(time.Unix(*ds.OpenedAt, 0)))
	}
	return longest, true
}
