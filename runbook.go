package tbops

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Runbook is one runbook's diagnosis bound to one node: what `tbops doctor`,
// `tbops serve` and any third-party doctor iterate. Each domain package has a
// constructor (treasury.NewRunbook, energy.NewRunbook, …) that binds its client,
// metrics source and options.
type Runbook interface {
	// ID is the runbook id: treasury-stuck, energy-stalled, receipts-flatlining,
	// governor-audit, runtime-reactor, node-health.
	ID() string
	// Diagnose gathers the runbook's evidence and returns its report, with
	// Target set. The error is non-nil only when no report could be made (a
	// cancelled context, invalid options); missing data is reported inside the
	// report as unknown symptoms and warnings.
	Diagnose(ctx context.Context) (Report, error)
}

// Applier is a Runbook that can carry out what its reports plan.
type Applier interface {
	Runbook
	// Apply carries out the planned actions of the matched paths of plan, a
	// report this runbook's Diagnose returned, and returns the report with what
	// was done: each executed action has DryRun false and its Result. An action
	// already done (DryRun false) is never repeated. The error is non-nil when
	// an action failed; the returned report still says which actions ran.
	Apply(ctx context.Context, plan Report) (Report, error)
}

// Diagnose runs the runbooks concurrently and returns their reports in the
// runbooks' order. A runbook that returns an error still yields a report: an
// unknown one with the error as a warning, so one failure never hides the
// others. now stamps those reports (time.Now when nil).
func Diagnose(ctx context.Context, now func() time.Time, runbooks ...Runbook) []Report {
	if now == nil {
		now = time.Now
	}
	out := make([]Report, len(runbooks))
	var wg sync.WaitGroup
	for i, rb := range runbooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := rb.Diagnose(ctx)
			if err != nil {
				target := r.Target
				r = NewReport(rb.ID(), target, now())
				r.Warnf("diagnosis failed: %s", RedactText(err.Error()))
				r.Finalize()
			}
			if r.Runbook == "" {
				r.Runbook = rb.ID()
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// Func adapts a function to a Runbook, for runbooks that are not part of tbops.
func Func(id string, diagnose func(ctx context.Context) (Report, error)) Runbook {
	return funcRunbook{id: id, f: diagnose}
}

type funcRunbook struct {
	id string
	f  func(ctx context.Context) (Report, error)
}

func (f funcRunbook) ID() string { return f.id }

func (f funcRunbook) Diagnose(ctx context.Context) (Report, error) {
	if f.f == nil {
		return Report{}, fmt.Errorf("runbook %s: no diagnose function", f.id)
	}
	return f.f(ctx)
}
