package treasury

import (
	"fmt"
	"time"

	"github.com/theblock/tbops"
)

// symptoms evaluates the runbook's five checkboxes and Path D's indicator.
func (d *diagnosis) symptoms() {
	d.r.Symptoms = append(d.r.Symptoms, d.backlogSymptom(), d.lagSymptom(), d.executorErrorSymptom(),
		d.staleSymptom(), d.noTransitions(), d.inconsistentSymptom())
}

// backlogSymptom is "backlog > 50 for 2+ epochs": the TreasuryBacklogWarning
// rule's evaluation (the same condition). When the metrics do not decide it,
// the records may: more than 50 disbursements queued since before the window
// kept the backlog above 50 throughout it, and 50 or fewer queued on a node
// without the gauge cannot have held above 50.
func (d *diagnosis) backlogSymptom() tbops.Symptom {
	s := tbops.Symptom{ID: SymptomBacklog, Summary: fmt.Sprintf("%s > %d for 2+ epochs (%s)", MetricBacklog, BacklogWarning, BacklogWarningFor),
		Threshold: tbops.Num(BacklogWarning)}
	st := d.m.rules[AlertBacklogWarning]
	ruleSymptom(&s, st, tbops.StatusWarning)
	if s.Status != tbops.StatusUnknown || !d.g.complete() {
		return s
	}
	since := d.now.Add(-BacklogWarningFor).Unix()
	held := 0
	for _, x := range d.queued {
		if at := x.Status.changed(); at != 0 && at <= since {
			held++
		}
	}
	q := len(d.queued)
	s.Evidence = append(s.Evidence, d.rpcEv(fmt.Sprintf(`%s {"status":"queued"} | status.changed_at <= %d | length`, MethodDisbursements, since), held))
	switch {
	case held > BacklogWarning:
		s.Value, s.Firing, s.Status = tbops.Num(q), true, tbops.StatusWarning
		s.Detail = tbops.RawOf(fmt.Sprintf("%d disbursements have been queued since before the last 2 epochs", held))
	case st.Worst == nil && q <= BacklogWarning:
		s.Value, s.Status = tbops.Num(q), tbops.StatusOK
		s.Detail = tbops.RawOf(fmt.Sprintf("no %s gauge: %d disbursements queued now", MetricBacklog, q))
	}
	return s
}

// lagSymptom is "lag p95 > 300 s", on the node's p95 gauge or the histogram's
// last 5 minutes, as the latency rule.
func (d *diagnosis) lagSymptom() tbops.Symptom {
	s := tbops.Symptom{ID: SymptomLag, Summary: fmt.Sprintf("disbursement lag p95 > %gs", LagP95Symptom), Threshold: tbops.Num(LagP95Symptom)}
	ruleSymptom(&s, d.m.lag, tbops.StatusWarning)
	if src := lagSource(d.m.lag); src != "" {
		s.Detail = tbops.RawOf(src)
	}
	return s
}

// executorErrorSymptom is "executor reports last_error != null".
func (d *diagnosis) executorErrorSymptom() tbops.Symptom {
	g := d.g
	s := tbops.Symptom{ID: SymptomExecutorError, Summary: "executor reports last_error != null", Status: tbops.StatusUnknown,
		Evidence: []tbops.Evidence{d.rpcEv(MethodBalance+" | .executor.last_error", nil)}}
	switch {
	case g.balanceErr != nil:
		s.Evidence[0].Value = tbops.RawOf(g.balanceErr.Error())
	case g.balance.Executor == nil:
		d.warn(fmt.Sprintf("%s: the node sent no executor snapshot", MethodBalance))
		s.Evidence[0].Value = tbops.RawOf("no executor object")
	default:
		e := g.balance.Executor
		s.Evidence[0].Value = tbops.RawOf(e.LastError)
		if e.LastError != nil {
			s.Detail, s.Firing, s.Status = tbops.RawOf(*e.LastError), true, tbops.StatusCritical
			s.Summary = fmt.Sprintf("executor reports last_error %q (%s)", *e.LastError, ClassifyError(*e.LastError))
		} else {
			s.Status = tbops.StatusOK
		}
	}
	return s
}

// staleSymptom is "created more than 3 days ago and still queued".
func (d *diagnosis) staleSymptom() tbops.Symptom {
	s := tbops.Symptom{ID: SymptomStale, Summary: "disbursements created > 3 days ago still queued", Threshold: tbops.Num(0), Status: tbops.StatusUnknown}
	if !d.g.listOK() {
		s.Evidence = []tbops.Evidence{d.rpcEv(MethodDisbursements, errString(d.g.listErr))}
		return s
	}
	cut := d.now.Add(-StaleAfter).Unix()
	var ids []uint64
	for _, x := range d.queued {
		if x.CreatedAt < cut {
			ids = append(ids, x.ID)
		}
	}
	s.Value, s.Firing = tbops.Num(len(ids)), len(ids) > 0
	s.Status = sev(s.Firing, tbops.StatusWarning)
	s.Evidence = []tbops.Evidence{d.rpcEv(fmt.Sprintf(`%s {"status":"queued"} | created_at < %d`, MethodDisbursements, cut), d.firstIDs(ids))}
	return s
}

// inconsistentSymptom is Path D's indicator: inconsistent or undecodable records.
func (d *diagnosis) inconsistentSymptom() tbops.Symptom {
	g := d.g
	s := tbops.Symptom{ID: SymptomInconsistent, Summary: "disbursement records with inconsistent states (Path D)", Threshold: tbops.Num(corruptionMinimum), Status: tbops.StatusUnknown}
	if !g.listOK() {
		s.Evidence = []tbops.Evidence{d.rpcEv(MethodDisbursements, errString(g.listErr))}
		return s
	}
	inc := Inconsistencies(g.ds, g.analysis.Duplicates)
	s.Value = tbops.Num(len(inc) + len(g.invalid))
	s.Firing = len(inc) >= corruptionMinimum || len(g.invalid) > 0
	s.Status = sev(s.Firing, tbops.StatusWarning)
	s.Evidence = []tbops.Evidence{d.rpcEv(MethodDisbursements+" | inconsistent records", map[string]any{"inconsistent": inc, "undecodable": len(g.invalid)})}
	return s
}

// noTransitions decides "no state transitions occurring" from the exact RPC
// evidence: its value is the seconds since the newest change the node shows
// (a record's updated_at or status.changed_at, or the executor's
// last_success_at), and it fires when that is more than 10 minutes while
// disbursements are queued. A change within 10 minutes, or an empty queue,
// decides ok at once. Firing needs the whole listing and the executor
// snapshot; without them the TreasuryNoProgress rule's evaluation decides (its
// unknown stays unknown).
func (d *diagnosis) noTransitions() tbops.Symptom {
	g := d.g
	s := tbops.Symptom{ID: SymptomNoTransitions, Summary: "no state transitions in 10m while disbursements are queued",
		Threshold: tbops.Num(NoProgressWindow.Seconds())}
	if g.listOK() {
		s.Evidence = append(s.Evidence, d.rpcEv(MethodDisbursements+` {"status":"queued"} | length`, len(d.queued)))
	} else {
		s.Evidence = append(s.Evidence, d.rpcEv(MethodDisbursements, errString(g.listErr)))
	}
	last, what := d.lastChange()
	s.Evidence = append(s.Evidence, d.rpcEv(MethodDisbursements+" | max(updated_at, status.changed_at), "+MethodBalance+" | .executor.last_success_at", unixUTC(last)))
	age := d.now.Sub(time.Unix(last, 0))
	if last != 0 {
		s.Value = tbops.Num(age.Round(time.Second).Seconds())
		s.Detail = tbops.RawOf(fmt.Sprintf("last change %s: %s", ago(d.now, last), what))
	}
	switch {
	case g.complete() && len(d.queued) == 0:
		s.Status, s.Detail = tbops.StatusOK, tbops.RawOf("no disbursement is queued: nothing needs to move")
	case last != 0 && age <= NoProgressWindow:
		s.Status = tbops.StatusOK
	case g.complete() && g.balanceErr == nil && g.balance.Executor != nil:
		s.Firing, s.Status = true, tbops.StatusCritical
	default:
		st := d.m.rules[AlertNoProgress]
		s.Value = nil // the listing is partial: the age is not exact
		s.Evidence = append(s.Evidence, st.Evidence...)
		s.Status = st.Status()
		s.Firing = st.Known && st.Firing
	}
	return s
}

// lastChange is the newest change the node shows, Unix seconds (0: none),
// and what it was.
func (d *diagnosis) lastChange() (int64, string) {
	var last int64
	what := ""
	for _, x := range d.g.ds {
		if t := max(x.UpdatedAt, x.Status.changed()); t > last {
			last, what = t, fmt.Sprintf("disbursement %d (%s)", x.ID, x.Status.State)
		}
	}
	if e := d.g.balance.Executor; e != nil && e.LastSuccessAt != nil && *e.LastSuccessAt > last {
		last, what = *e.LastSuccessAt, "the executor's last success"
	}
	return last, what
}
