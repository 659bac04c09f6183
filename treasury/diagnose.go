package treasury

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Options configures Diagnose and WriteBundle. The zero value is usable.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// LogGlobs are the node's log files (default /var/log/node/*.log).
	LogGlobs []string
	// LogTail is how many matching log lines step 4 keeps (default 50).
	LogTail int
	// LogMaxBytes is how much of the end of each log file is read (default 16 MiB).
	LogMaxBytes int64
	// SLO adds the Treasury SLO table to the report.
	SLO bool
	// MaxDisbursements caps how many records are listed (default 1 000 000).
	MaxDisbursements int
	// MaxDepLookups caps the gov.treasury.disbursement calls made for dependencies
	// missing from the listing (default 100).
	MaxDepLookups int
	// ExpectedLeaseHolder, when set, is the node that should hold the executor
	// lease; a lease held by another node is reported as foreign.
	ExpectedLeaseHolder string
	// ListDetail caps how many items a finding lists before "… and N more" (default 20).
	ListDetail int
}

func (o Options) withDefaults() (Options, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.LogGlobs) == 0 {
		o.LogGlobs = []string{DefaultLogGlob}
	}
	if o.LogTail == 0 {
		o.LogTail = DefaultLogTail
	}
	if o.LogMaxBytes == 0 {
		o.LogMaxBytes = DefaultLogMaxBytes
	}
	if o.MaxDisbursements == 0 {
		o.MaxDisbursements = 1_000_000
	}
	if o.MaxDepLookups == 0 {
		o.MaxDepLookups = 100
	}
	if o.ListDetail == 0 {
		o.ListDetail = 20
	}
	switch {
	case o.LogTail < 0:
		return o, fmt.Errorf("treasury: LogTail %d: want a positive count", o.LogTail)
	case o.MaxDisbursements < 0:
		return o, fmt.Errorf("treasury: MaxDisbursements %d: want a positive count", o.MaxDisbursements)
	case o.MaxDepLookups < 0:
		return o, fmt.Errorf("treasury: MaxDepLookups %d: want a positive count", o.MaxDepLookups)
	case o.ListDetail < 0:
		return o, fmt.Errorf("treasury: ListDetail %d: want a positive count", o.ListDetail)
	}
	return o, nil
}

// Symptom ids (stable).
const (
	SymptomBacklog       = "backlog-high"
	SymptomLag           = "lag-p95-high"
	SymptomExecutorError = "executor-error"
	SymptomStale         = "stale-disbursements"
	SymptomNoTransitions = "no-transitions"
	// SymptomInconsistent is Path D's indicator made a symptom (not one of the
	// runbook's five checkboxes) so that corrupted records never report healthy.
	SymptomInconsistent = "inconsistent-records"
)

// Step ids (stable).
const (
	StepExecutor     = "executor-health"
	StepStuck        = "stuck-disbursements"
	StepDependencies = "dependency-failures"
	StepErrors       = "executor-errors"
	StepBalance      = "balance"
)

// gathered is everything Diagnose read.
type gathered struct {
	now time.Time

	balance    Balance
	balanceErr error

	ds          []Disbursement
	listErr     error
	invalid     []string
	truncated   bool
	lookups     []tbops.Evidence
	unsupported []string // methods the node answered -32601

	analysis Analysis
}

func (g *gathered) listOK() bool { return g.listErr == nil }

// Diagnose runs the Treasury Stuck runbook: it reads the executor snapshot and
// every disbursement over RPC, the treasury metrics from src (nil: metric
// symptoms are unknown), and the node's logs, and returns the report with the
// five symptoms, the five diagnosis steps, resolution paths A–D and the alert
// thresholds. It changes nothing (see Apply). The error is non-nil only for a
// cancelled context or invalid options; missing data is a warning and an
// unknown symptom.
func Diagnose(ctx context.Context, c *Client, src promq.Source, opts Options) (tbops.Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return tbops.Report{}, err
	}
	if c == nil {
		return tbops.Report{}, errors.New("treasury: Diagnose needs a client")
	}
	now := opts.Now()
	r := tbops.NewReport(RunbookID, c.URL(), now)
	g, err := gather(ctx, c, opts, now)
	if err != nil {
		return r, err
	}
	m := queryMetrics(ctx, src, &r)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	logs, err := ScanLogs(opts.LogGlobs, MatchLogLine, opts.LogTail, opts.LogMaxBytes)
	if err != nil {
		return r, err
	}
	d := &diagnosis{r: &r, g: g, m: m, opts: opts, logs: logs, now: now}
	d.reportRPCProblems()
	d.symptoms()
	d.steps()
	d.paths()
	d.alerts()
	if opts.SLO {
		d.slos()
	}
	r.Finalize()
	return r, nil
}

// gather reads the RPC side: balance and executor, every disbursement, and
// dependencies missing from the listing.
func gather(ctx context.Context, c *Client, opts Options, now time.Time) (*gathered, error) {
	g := &gathered{now: now}
	g.balance, g.balanceErr = c.Balance(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if errors.Is(g.balanceErr, ErrMethodNotFound) {
		g.unsupported = append(g.unsupported, MethodBalance)
	}
	for d, err := range c.All(ctx, ListOptions{}) {
		if err != nil {
			if errors.Is(err, ErrRecord) {
				g.invalid = append(g.invalid, err.Error())
				continue
			}
			g.listErr = err
			break
		}
		if len(g.ds) >= opts.MaxDisbursements {
			g.truncated = true
			break
		}
		g.ds = append(g.ds, d)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if errors.Is(g.listErr, ErrMethodNotFound) {
		g.unsupported = append(g.unsupported, MethodDisbursements)
	}
	g.analysis = Analyze(g.ds)
	if len(g.analysis.Missing) > 0 && g.listErr == nil {
		// Look missing dependencies up one by one: the listing may be capped.
		found := false
		looked := map[uint64]bool{}
		for _, m := range g.analysis.Missing {
			if looked[m.Dep] || len(looked) >= opts.MaxDepLookups {
				continue
			}
			looked[m.Dep] = true
			dep, err := c.Disbursement(ctx, m.Dep)
			ev := tbops.Evidence{Source: tbops.SourceRPC, Query: fmt.Sprintf("%s {\"id\":%d}", MethodDisbursement, m.Dep), At: now.UTC()}
			switch {
			case err == nil:
				ev.Value = tbops.RawOf(dep.Status.State)
				g.ds = append(g.ds, dep)
				found = true
			case errors.Is(err, ErrNotFound):
				ev.Value = tbops.RawOf("not found (-32004)")
			default:
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				ev.Value = tbops.RawOf(err.Error())
			}
			g.lookups = append(g.lookups, ev)
		}
		if found {
			g.analysis = Analyze(g.ds)
		}
	}
	return g, nil
}

// metrics is what Diagnose read from the metrics source; each field's ok says
// whether the data was there.
type metrics struct {
	src                   bool
	backlog50, backlog100 promq.Held
	backlogOK             bool
	lagP95                float64
	lagOK                 bool
	lagEv                 tbops.Evidence
	tickP99               float64
	tickOK                bool
	tickEv                tbops.Evidence
	errRate               promq.Result
	errOK                 bool
	finalizedInc          float64
	finalizedOK           bool
	finalizedEv           tbops.Evidence
	allInc                float64
	allIncOK              bool
	allIncEv              tbops.Evidence
	transRate             promq.Result
	transOK               bool
}

func queryMetrics(ctx context.Context, src promq.Source, r *tbops.Report) metrics {
	var m metrics
	if src == nil {
		r.Warnf("no metrics source: the backlog, lag, error-rate and progress checks are unknown")
		return m
	}
	m.src = true
	warn := func(what string, ws []string, err error) bool {
		for _, w := range ws {
			r.Warnf("%s: %s", what, w)
		}
		if err != nil {
			if ctx.Err() == nil {
				r.Warnf("%s: %v", what, err)
			}
			return false
		}
		return true
	}
	backlog := promq.Select(MetricBacklog)
	h, err := promq.HeldFor(ctx, src, backlog, promq.GT, BacklogWarning, BacklogWarningFor)
	m.backlogOK = warn(MetricBacklog, h.Warnings, err) && h.HasNow
	m.backlog50 = h
	if m.backlogOK {
		h2, err := promq.HeldFor(ctx, src, backlog, promq.GT, BacklogCritical, BacklogCriticalFor)
		if err == nil {
			m.backlog100 = h2
		}
	}
	res, err := src.Quantile(ctx, 0.95, promq.Select(MetricLag), 0)
	if warn("lag p95", res.Warnings, err) {
		m.lagP95, m.lagOK = res.Value()
	}
	m.lagEv = res.Evidence
	res, err = src.Quantile(ctx, 0.99, promq.Select(MetricTickDuration), 0)
	if warn("tick duration p99", res.Warnings, err) {
		m.tickP99, m.tickOK = res.Value()
	}
	m.tickEv = res.Evidence
	res, err = src.Rate(ctx, promq.Select(MetricErrors), ErrorRateWindow)
	if warn("execution error rate", res.Warnings, err) {
		m.errRate, m.errOK = res, len(res.Vector) > 0
	} else {
		m.errRate = res
	}
	res, err = src.Increase(ctx, promq.Select(MetricDisbursements, "status", "finalized"), NoProgressWindow)
	if warn("finalized disbursements", res.Warnings, err) {
		m.finalizedInc, m.finalizedOK = res.Sum()
	}
	m.finalizedEv = res.Evidence
	res, err = src.Increase(ctx, promq.Select(MetricDisbursements), NoProgressWindow)
	if warn("disbursement transitions", res.Warnings, err) && len(res.Vector) > 0 {
		by := res.ByLabel("status")
		m.allInc = by[string(StateExecuted)] + by[string(StateFinalized)] + by[string(StateRolledBack)]
		m.allIncOK = true
	}
	m.allIncEv = res.Evidence
	m.allIncEv.Query = `sum(increase(` + MetricDisbursements + `{status=~"executed|finalized|rolled_back"}[10m]))`
	m.allIncEv.Value = tbops.RawOf(m.allInc)
	res, err = src.Rate(ctx, promq.Select(MetricDisbursements), ErrorRateWindow)
	if err == nil && len(res.Vector) > 0 {
		m.transRate, m.transOK = res, true
	}
	return m
}

// diagnosis builds the report from what was gathered.
type diagnosis struct {
	r    *tbops.Report
	g    *gathered
	m    metrics
	opts Options
	logs LogScan
	now  time.Time

	queued     []Disbursement // state queued
	pendingSum tbops.Amount
}

func (d *diagnosis) rpcEv(query string, value any) tbops.Evidence {
	return tbops.Evidence{Source: tbops.SourceRPC, Query: query, Value: tbops.RawOf(value), At: d.now.UTC()}
}

func (d *diagnosis) reportRPCProblems() {
	g := d.g
	if len(g.unsupported) > 0 {
		d.r.Warnf("the node does not serve %s (JSON-RPC -32601 method not found): it has no treasury RPC (an older or reference node?); the treasury cannot be diagnosed over RPC — check --rpc",
			strings.Join(g.unsupported, ", "))
	}
	if g.balanceErr != nil && !errors.Is(g.balanceErr, ErrMethodNotFound) {
		d.r.Warnf("%s: %v", MethodBalance, g.balanceErr)
	}
	if g.listErr != nil && !errors.Is(g.listErr, ErrMethodNotFound) {
		d.r.Warnf("%s: %v (listed %d before the error)", MethodDisbursements, g.listErr, len(g.ds))
	}
	if len(g.invalid) > 0 {
		d.r.Warnf("%d malformed disbursement records skipped; first: %s", len(g.invalid), g.invalid[0])
	}
	if g.truncated {
		d.r.Warnf("listing stopped at %d disbursements (MaxDisbursements): counts are lower bounds", d.opts.MaxDisbursements)
	}
	for _, x := range g.ds {
		if x.Status.State == StateQueued {
			d.queued = append(d.queued, x)
			d.pendingSum += x.Amount
		}
	}
}

func seconds(v float64) string {
	return (time.Duration(v * float64(time.Second))).Round(time.Millisecond).String()
}

func ago(now time.Time, unix int64) string {
	if unix == 0 {
		return "never"
	}
	d := now.Sub(time.Unix(unix, 0))
	if d < 0 {
		return fmt.Sprintf("in %s", (-d).Round(time.Second))
	}
	return fmt.Sprintf("%s ago", d.Round(time.Second))
}

func unixUTC(t int64) string {
	if t == 0 {
		return "-"
	}
	return time.Unix(t, 0).UTC().Format(time.RFC3339)
}

func (d *diagnosis) symptoms() {
	r, g, m := d.r, d.g, d.m

	// 1. Backlog > 50 for 2+ epochs.
	s := tbops.Symptom{ID: SymptomBacklog, Summary: fmt.Sprintf("%s > %d for 2+ epochs (%s)", MetricBacklog, BacklogWarning, BacklogWarningFor),
		Threshold: tbops.Num(BacklogWarning), Status: tbops.StatusUnknown}
	h := m.backlog50
	if m.src {
		s.Evidence = append(s.Evidence, h.Evidence)
	}
	switch {
	case !m.backlogOK:
		s.Summary += ": no data"
	case h.Now <= BacklogWarning:
		s.Value, s.Status = tbops.Num(h.Now), tbops.StatusOK
	case h.Held:
		s.Value, s.Firing, s.Status = tbops.Num(h.Now), true, tbops.StatusWarning
	case h.Known:
		s.Value, s.Status = tbops.Num(h.Now), tbops.StatusOK // above now, but not for the whole window
	default:
		s.Value = tbops.Num(h.Now)
		r.Warnf("%s is %g (> %d) but only %s of the %s window was observed: cannot tell whether it held", MetricBacklog, h.Now, BacklogWarning,
			h.Observed.Round(time.Second), BacklogWarningFor)
	}
	if g.listOK() {
		s.Evidence = append(s.Evidence, d.rpcEv(MethodDisbursements+` {"status":"queued"}`, len(d.queued)))
	}
	r.Symptoms = append(r.Symptoms, s)

	// 2. Lag p95 > 300 s.
	s = tbops.Symptom{ID: SymptomLag, Summary: fmt.Sprintf("disbursement lag p95 > %gs", LagP95Symptom), Threshold: tbops.Num(LagP95Symptom), Status: tbops.StatusUnknown}
	if m.src {
		s.Evidence = append(s.Evidence, m.lagEv)
	}
	if m.lagOK {
		s.Value = tbops.Num(m.lagP95)
		s.Firing = m.lagP95 > LagP95Symptom
		s.Status = sev(s.Firing, tbops.StatusWarning)
	}
	r.Symptoms = append(r.Symptoms, s)

	// 3. Executor last_error != null.
	s = tbops.Symptom{ID: SymptomExecutorError, Summary: "executor reports last_error != null", Status: tbops.StatusUnknown,
		Evidence: []tbops.Evidence{d.rpcEv(MethodBalance+" | .executor.last_error", nil)}}
	switch {
	case g.balanceErr != nil:
		s.Evidence[0].Value = tbops.RawOf(g.balanceErr.Error())
	case g.balance.Executor == nil:
		r.Warnf("%s: the node sent no executor snapshot", MethodBalance)
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
	r.Symptoms = append(r.Symptoms, s)

	// 4. Stale: created more than 3 days ago and still queued.
	s = tbops.Symptom{ID: SymptomStale, Summary: "disbursements created > 3 days ago still queued", Threshold: tbops.Num(0), Status: tbops.StatusUnknown}
	if g.listOK() {
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
	} else {
		s.Evidence = []tbops.Evidence{d.rpcEv(MethodDisbursements, errString(g.listErr))}
	}
	r.Symptoms = append(r.Symptoms, s)

	// 5. No state transitions while there is a backlog.
	r.Symptoms = append(r.Symptoms, d.noTransitions())

	// Path D's indicator: inconsistent or undecodable records.
	s = tbops.Symptom{ID: SymptomInconsistent, Summary: "disbursement records with inconsistent states (Path D)", Threshold: tbops.Num(corruptionMinimum), Status: tbops.StatusUnknown}
	if g.listOK() {
		inc := Inconsistencies(g.ds, g.analysis.Duplicates)
		n := len(inc) + len(g.invalid)
		s.Value = tbops.Num(n)
		s.Firing = len(inc) >= corruptionMinimum || len(g.invalid) > 0
		s.Status = sev(s.Firing, tbops.StatusWarning)
		s.Evidence = []tbops.Evidence{d.rpcEv(MethodDisbursements+" | inconsistent records", map[string]any{"inconsistent": inc, "undecodable": len(g.invalid)})}
	} else {
		s.Evidence = []tbops.Evidence{d.rpcEv(MethodDisbursements, errString(g.listErr))}
	}
	r.Symptoms = append(r.Symptoms, s)
}

// noTransitions decides "no state transitions occurring": there is a backlog
// (queued disbursements over RPC, else the backlog gauge) and nothing left the
// queue in the last 10 minutes. With the metric: the increase of
// governance_disbursements_total{status=~"executed|finalized|rolled_back"}
// over 10m is 0 (new disbursements being queued is not progress). Without it:
// no disbursement's updated_at or status change within 10 minutes and no
// executor success within 10 minutes either. With no backlog nothing needs to
// move: not firing.
func (d *diagnosis) noTransitions() tbops.Symptom {
	g, m := d.g, d.m
	s := tbops.Symptom{ID: SymptomNoTransitions, Summary: "no state transitions in 10m while disbursements are queued", Threshold: tbops.Num(0), Status: tbops.StatusUnknown}
	backlog, backlogKnown := 0.0, false
	if g.listOK() {
		backlog, backlogKnown = float64(len(d.queued)), true
		s.Evidence = append(s.Evidence, d.rpcEv(MethodDisbursements+` {"status":"queued"} | length`, len(d.queued)))
	} else if m.backlogOK {
		backlog, backlogKnown = m.backlog50.Now, true
		s.Evidence = append(s.Evidence, m.backlog50.Evidence)
	}
	if !backlogKnown {
		return s
	}
	if backlog == 0 {
		s.Value, s.Detail, s.Status = tbops.Num(0), tbops.RawOf("no backlog"), tbops.StatusOK
		return s
	}
	if m.allIncOK {
		s.Evidence = append(s.Evidence, m.allIncEv)
		s.Value = tbops.Num(m.allInc)
		s.Firing = m.allInc == 0
		s.Status = sev(s.Firing, tbops.StatusCritical)
		return s
	}
	if g.listOK() && len(g.ds) > 0 {
		var latest int64
		for _, x := range g.ds {
			latest = max(latest, x.UpdatedAt, x.Status.ChangedAt)
		}
		age := d.now.Sub(time.Unix(latest, 0))
		s.Evidence = append(s.Evidence, d.rpcEv(MethodDisbursements+" | max(updated_at)", unixUTC(latest)))
		s.Detail = tbops.RawOf(fmt.Sprintf("last change %s", ago(d.now, latest)))
		s.Firing = age > NoProgressWindow
		if e := g.balance.Executor; s.Firing && e != nil && e.LastSuccessAt != 0 && d.now.Sub(time.Unix(e.LastSuccessAt, 0)) <= NoProgressWindow {
			s.Firing = false // the executor succeeds: it is waiting, not stuck
			s.Detail = tbops.RawOf(fmt.Sprintf("last change %s, executor succeeded %s", ago(d.now, latest), ago(d.now, e.LastSuccessAt)))
			s.Evidence = append(s.Evidence, d.rpcEv(MethodBalance+" | .executor.last_success_at", unixUTC(e.LastSuccessAt)))
		}
		s.Status = sev(s.Firing, tbops.StatusCritical)
		d.r.Warnf("%s: no increase over 10m available; decided from the records' updated_at instead", MetricDisbursements)
	}
	return s
}

func sev(firing bool, severity tbops.Status) tbops.Status {
	if firing {
		return severity
	}
	return tbops.StatusOK
}

func errString(err error) any {
	if err == nil {
		return nil
	}
	return err.Error()
}

// firstIDs lists up to ListDetail ids for evidence.
func (d *diagnosis) firstIDs(ids []uint64) any {
	if len(ids) > d.opts.ListDetail {
		return map[string]any{"count": len(ids), "first": ids[:d.opts.ListDetail]}
	}
	if ids == nil {
		return []uint64{}
	}
	return ids
}

// more appends "… and N more" when items were cut.
func (d *diagnosis) capped(findings []string, items []string) []string {
	n := d.opts.ListDetail
	if len(items) <= n {
		return append(findings, items...)
	}
	findings = append(findings, items[:n]...)
	return append(findings, fmt.Sprintf("… and %d more", len(items)-n))
}

// leaseProblem describes an absent, expired or foreign executor lease ("" if fine).
func (d *diagnosis) leaseProblem() string {
	e := d.g.balance.Executor
	if e == nil {
		return ""
	}
	switch {
	case e.LeaseHolder == nil || *e.LeaseHolder == "":
		return "no node holds the executor lease: no executor is running"
	case e.LeaseExpiresAt != 0 && e.LeaseExpiresAt < d.now.Unix():
		return fmt.Sprintf("the executor lease of %s expired %s and was not renewed", *e.LeaseHolder, ago(d.now, e.LeaseExpiresAt))
	case d.opts.ExpectedLeaseHolder != "" && *e.LeaseHolder != d.opts.ExpectedLeaseHolder:
		return fmt.Sprintf("the executor lease is held by %s, not by the expected %s (foreign lease)", *e.LeaseHolder, d.opts.ExpectedLeaseHolder)
	}
	return ""
}

func (d *diagnosis) steps() {
	r, g, m := d.r, d.g, d.m

	// Step 1: executor health.
	st := tbops.Step{ID: StepExecutor, Title: "Step 1: executor health"}
	switch {
	case g.balanceErr != nil:
		st.Findings = append(st.Findings, fmt.Sprintf("could not read the executor: %v", g.balanceErr))
		st.Evidence = append(st.Evidence, d.rpcEv(MethodBalance, g.balanceErr.Error()))
	case g.balance.Executor == nil:
		st.Findings = append(st.Findings, "the node sent no executor snapshot")
		st.Evidence = append(st.Evidence, d.rpcEv(MethodBalance, g.balance))
	default:
		e := g.balance.Executor
		st.Evidence = append(st.Evidence, d.rpcEv(MethodBalance+" | .executor", e))
		if e.LastError == nil {
			st.Findings = append(st.Findings, "last_error: null (good)")
		} else {
			st.Findings = append(st.Findings, fmt.Sprintf("last_error: %q (%s), %s", *e.LastError, ClassifyError(*e.LastError), ago(d.now, e.LastErrorAt)))
		}
		success := fmt.Sprintf("last_success_at: %s (%s)", unixUTC(e.LastSuccessAt), ago(d.now, e.LastSuccessAt))
		if e.LastSuccessAt == 0 || d.now.Sub(time.Unix(e.LastSuccessAt, 0)) > NoProgressWindow {
			success += " — not recent"
		}
		st.Findings = append(st.Findings, success,
			fmt.Sprintf("last_tick_at: %s (%s)", unixUTC(e.LastTickAt), ago(d.now, e.LastTickAt)),
			fmt.Sprintf("pending_matured: %d ready to execute, staged_intents: %d", e.PendingMatured, e.StagedIntents))
		lease := fmt.Sprintf("lease_holder: %s, lease_expires_at: %s (%s)", orNull(e.LeaseHolder), unixUTC(e.LeaseExpiresAt), ago(d.now, e.LeaseExpiresAt))
		if p := d.leaseProblem(); p != "" {
			lease += " — " + p
		}
		st.Findings = append(st.Findings, lease)
	}
	r.Steps = append(r.Steps, st)

	// Step 2: disbursements stuck for more than an hour.
	st = tbops.Step{ID: StepStuck, Title: "Step 2: disbursements queued for more than 1 hour"}
	if g.listOK() {
		cut := d.now.Add(-StuckAfter).Unix()
		var items []string
		var ids []uint64
		for _, x := range d.queued {
			if x.CreatedAt < cut {
				ids = append(ids, x.ID)
				items = append(items, fmt.Sprintf("id %d: created %s (%s), updated %s", x.ID, unixUTC(x.CreatedAt), ago(d.now, x.CreatedAt), unixUTC(x.UpdatedAt)))
			}
		}
		st.Findings = append(st.Findings, fmt.Sprintf("%d queued disbursements, %d of them created more than 1 hour ago", len(d.queued), len(ids)))
		st.Findings = d.capped(st.Findings, items)
		st.Evidence = append(st.Evidence, d.rpcEv(fmt.Sprintf(`%s {"status":"queued"} | created_at < %d`, MethodDisbursements, cut), d.firstIDs(ids)))
	} else {
		st.Findings = append(st.Findings, fmt.Sprintf("could not list disbursements: %v", g.listErr))
	}
	r.Steps = append(r.Steps, st)

	// Step 3: dependency failures.
	r.Steps = append(r.Steps, d.dependencyStep())

	// Step 4: logs, tick duration, error rate.
	st = tbops.Step{ID: StepErrors, Title: "Step 4: executor errors (logs, tick duration p99, error rate)"}
	st.Findings = append(st.Findings, d.logs.Problems...)
	if len(d.logs.Files) > 0 {
		st.Findings = append(st.Findings, fmt.Sprintf("%d matching ERROR/WARN lines in %d files (showing the last %d)", d.logs.Matched, len(d.logs.Files), len(d.logs.Lines)))
		for i, l := range d.logs.Lines {
			if i >= len(d.logs.Lines)-5 {
				st.Findings = append(st.Findings, "log: "+l.Line)
			}
		}
	}
	st.Evidence = append(st.Evidence, tbops.Evidence{Source: tbops.SourceLog, Query: fmt.Sprintf(`grep "treasury_executor\|DisbursementError" %s | grep -E "ERROR|WARN" | tail -%d`,
		strings.Join(d.opts.LogGlobs, " "), d.opts.LogTail), Value: tbops.RawOf(d.logs.Lines), At: d.now.UTC()})
	if m.tickOK {
		st.Findings = append(st.Findings, fmt.Sprintf("executor tick duration p99: %s", seconds(m.tickP99)))
	} else if m.src {
		st.Findings = append(st.Findings, "executor tick duration p99: no data")
	}
	if m.src {
		st.Evidence = append(st.Evidence, m.tickEv, m.errRate.Evidence)
	}
	if m.errOK {
		by := m.errRate.ByLabel("reason")
		keys := make([]string, 0, len(by))
		for k := range by {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		total := 0.0
		for _, k := range keys {
			total += by[k]
			if by[k] > 0 {
				parts = append(parts, fmt.Sprintf("%s %.3g/s", orDash(k), by[k]))
			}
		}
		f := fmt.Sprintf("execution error rate: %.3g/s", total)
		if len(parts) > 0 {
			f += " (" + strings.Join(parts, ", ") + ")"
		}
		st.Findings = append(st.Findings, f)
	} else if m.src {
		st.Findings = append(st.Findings, "execution error rate: no data")
	}
	r.Steps = append(r.Steps, st)

	// Step 5: balance against what is waiting.
	st = tbops.Step{ID: StepBalance, Title: "Step 5: treasury balance against pending disbursements"}
	if g.balanceErr == nil && g.listOK() {
		st.Findings = append(st.Findings, fmt.Sprintf("balance %s, pending (queued) %s in %d disbursements", g.balance.Balance, d.pendingSum, len(d.queued)))
		if g.balance.Balance < d.pendingSum {
			st.Findings = append(st.Findings, fmt.Sprintf("INSUFFICIENT FUNDS: short by %s", d.pendingSum-g.balance.Balance))
		}
	} else {
		st.Findings = append(st.Findings, "balance or pending disbursements unavailable")
	}
	st.Evidence = append(st.Evidence, d.rpcEv(MethodBalance+" | .balance", g.balance.Balance),
		d.rpcEv(MethodDisbursements+` {"status":"queued"} | map(.amount) | add`, d.pendingSum))
	r.Steps = append(r.Steps, st)
}

func orNull(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (d *diagnosis) dependencyStep() tbops.Step {
	g, a := d.g, d.g.analysis
	st := tbops.Step{ID: StepDependencies, Title: "Step 3: dependency failures"}
	if !g.listOK() {
		st.Findings = append(st.Findings, fmt.Sprintf("could not list disbursements: %v", g.listErr))
		return st
	}
	withDeps := 0
	for _, x := range d.queued {
		if len(x.Proposal.Deps) > 0 {
			withDeps++
		}
	}
	st.Findings = append(st.Findings, fmt.Sprintf("%d of %d queued disbursements have dependencies; %d pending in all, %d dependency edges",
		withDeps, len(d.queued), a.Pending, a.Edges))
	var items []string
	for _, x := range a.RolledBack {
		items = append(items, fmt.Sprintf("id %d depends on %d: rolled_back", x.ID, x.Dep))
	}
	for _, x := range a.Missing {
		items = append(items, fmt.Sprintf("id %d depends on %d: missing (no such disbursement)", x.ID, x.Dep))
	}
	for _, c := range a.Cycles {
		items = append(items, "dependency cycle: "+cycleString(c))
	}
	for _, b := range a.Blocked {
		items = append(items, fmt.Sprintf("id %d blocked behind %d (chain from %d)", b.ID, b.Via, b.Root))
	}
	if len(items) == 0 {
		st.Findings = append(st.Findings, "every dependency is satisfied or still pending normally")
	}
	st.Findings = d.capped(st.Findings, items)
	if len(a.Duplicates) > 0 {
		st.Findings = append(st.Findings, fmt.Sprintf("duplicate ids in the listing: %v", a.Duplicates))
	}
	st.Evidence = append(st.Evidence, d.rpcEv(MethodDisbursements+" | dependency graph", map[string]any{
		"rolled_back": len(a.RolledBack), "missing": len(a.Missing), "cycles": len(a.Cycles), "blocked": len(a.Blocked), "waiting": a.Waiting}))
	st.Evidence = append(st.Evidence, g.lookups...)
	return st
}

func cycleString(c []uint64) string {
	parts := make([]string, 0, len(c)+1)
	for _, id := range c {
		parts = append(parts, fmt.Sprint(id))
	}
	if len(c) > 0 {
		parts = append(parts, fmt.Sprint(c[0]))
	}
	return strings.Join(parts, " → ")
}

// RollbackReason is the runbook's rollback reason for Path A.
func RollbackReason(dep uint64) string { return fmt.Sprintf("Dependency %d was rolled back", dep) }

// RollbackCommand is the command that rolls a disbursement back by hand: it
// prints the plan, and does it with --apply.
func RollbackCommand(id uint64, reason string) string {
	return fmt.Sprintf("tbops treasury rollback --id %d --reason '%s'", id, strings.ReplaceAll(reason, "'", `'\''`))
}
