package treasury

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Options configures Diagnose, the Runbook and WriteBundle. The zero value is
// usable and hermetic: it reads no file of the machine it runs on.
type Options struct {
	// Now is the clock ages are judged by (default: the client's, rpc.WithClock).
	Now func() time.Time
	// LogGlobs are the node's log files step 4 searches (DefaultLogGlob on the
	// node's own host). None: no file is read, and step 4 says so.
	LogGlobs []string
	// LogTail is how many matching log lines step 4 keeps (default 50).
	LogTail int
	// LogMaxBytes is how much of the end of each log file is read (default 16 MiB).
	LogMaxBytes int64
	// SLO adds the Treasury SLO table, and its alert rules, to the report.
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
	// Eval tunes how the rules and windowed symptoms are evaluated on the
	// metrics: promq.WithEvalInterval to match a Prometheus'
	// evaluation_interval, promq.WithHistoryHint to say what would decide an
	// unknown window.
	Eval []promq.EvalOption
}

// withDefaults fills the zero fields (clock: the default clock) and refuses
// negative ones.
func (o Options) withDefaults(clock func() time.Time) (Options, error) {
	if o.Now == nil {
		o.Now = clock
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
	for _, f := range []struct {
		name string
		v    int64
	}{{"LogTail", int64(o.LogTail)}, {"LogMaxBytes", o.LogMaxBytes}, {"MaxDisbursements", int64(o.MaxDisbursements)},
		{"MaxDepLookups", int64(o.MaxDepLookups)}, {"ListDetail", int64(o.ListDetail)}} {
		if f.v < 0 {
			return o, fmt.Errorf("%w: Options.%s %d: want a positive number (0 for the default)", ErrInvalidArgument, f.name, f.v)
		}
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

// gathered is everything Diagnose read over RPC.
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

// listOK says the listing succeeded; complete, that it also holds every
// record (none capped, none undecodable).
func (g *gathered) listOK() bool   { return g.listErr == nil }
func (g *gathered) complete() bool { return g.listOK() && !g.truncated && len(g.invalid) == 0 }

// Diagnose runs the Treasury Stuck runbook: it reads the executor snapshot and
// every disbursement over RPC, evaluates the runbook's rules and windowed
// symptoms on src (nil: they are unknown), searches the log files the options
// name, and returns the report with the six symptoms, the five diagnosis
// steps, resolution paths A–D and the alert thresholds. It changes nothing (see
// Runbook.Apply). The error is non-nil only for a cancelled context or invalid
// options; missing data is a warning and an unknown symptom.
func Diagnose(ctx context.Context, c *Client, src promq.Source, opts Options) (tbops.Report, error) {
	if c == nil {
		return tbops.Report{}, fmt.Errorf("%w: Diagnose needs a client", ErrInvalidArgument)
	}
	opts, err := opts.withDefaults(c.Now)
	if err != nil {
		return tbops.Report{}, err
	}
	now := opts.Now()
	r := tbops.NewReport(RunbookID, c.URL(), now)
	g, err := gather(ctx, c, opts, now)
	if err != nil {
		return r, err
	}
	d := &diagnosis{r: &r, g: g, opts: opts, now: now, warned: map[string]bool{}}
	if err := d.readMetrics(ctx, src); err != nil {
		return r, err
	}
	if d.logs, err = ScanLogs(opts.LogGlobs, MatchLogLine, opts.LogTail, opts.LogMaxBytes); err != nil {
		return r, err
	}
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

// diagnosis builds the report from what was gathered.
type diagnosis struct {
	r      *tbops.Report
	g      *gathered
	m      metrics
	opts   Options
	logs   LogScan
	now    time.Time
	warned map[string]bool

	queued     []Disbursement // state queued
	pendingSum tbops.Amount
}

// warn adds each warning to the report once.
func (d *diagnosis) warn(ws ...string) {
	for _, w := range ws {
		if !d.warned[w] {
			d.warned[w] = true
			d.r.Warnings = append(d.r.Warnings, w)
		}
	}
}

func (d *diagnosis) rpcEv(query string, value any) tbops.Evidence {
	return tbops.Evidence{Source: tbops.SourceRPC, Query: query, Value: tbops.RawOf(value), At: d.now.UTC()}
}

func (d *diagnosis) reportRPCProblems() {
	g := d.g
	if len(g.unsupported) > 0 {
		d.warn(fmt.Sprintf("the node does not serve %s (JSON-RPC -32601 method not found): it has no treasury RPC (an older or reference node?); the treasury cannot be diagnosed over RPC",
			strings.Join(g.unsupported, ", ")))
	}
	if g.balanceErr != nil && !errors.Is(g.balanceErr, ErrMethodNotFound) {
		d.warn(fmt.Sprintf("%s: %v", MethodBalance, g.balanceErr))
	}
	if g.listErr != nil && !errors.Is(g.listErr, ErrMethodNotFound) {
		d.warn(fmt.Sprintf("%s: %v (listed %d before the error)", MethodDisbursements, g.listErr, len(g.ds)))
	}
	if len(g.invalid) > 0 {
		d.warn(fmt.Sprintf("%d malformed disbursement records skipped; first: %s", len(g.invalid), g.invalid[0]))
	}
	if g.truncated {
		d.warn(fmt.Sprintf("listing stopped at %d disbursements (MaxDisbursements): counts are lower bounds", d.opts.MaxDisbursements))
	}
	for _, x := range g.ds {
		if x.Status.State == StateQueued {
			d.queued = append(d.queued, x)
			d.pendingSum += x.Amount
		}
	}
}

// recent says whether the Unix time t (nil: never) is within the no-progress window.
func (d *diagnosis) recent(t *int64) bool {
	return t != nil && d.now.Sub(time.Unix(*t, 0)) <= NoProgressWindow
}

func seconds(v float64) string {
	return (time.Duration(v * float64(time.Second))).Round(time.Millisecond).String()
}

// ago says how long before now the Unix time was ("never" for 0).
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

// orZero is *p, 0 for nil: for text that says "never" or "-" for 0.
func orZero(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
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

// capped appends items to findings, "… and N more" past ListDetail.
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
	case e.LeaseExpiresAt != nil && *e.LeaseExpiresAt < d.now.Unix():
		return fmt.Sprintf("the executor lease of %s expired %s and was not renewed", *e.LeaseHolder, ago(d.now, *e.LeaseExpiresAt))
	case d.opts.ExpectedLeaseHolder != "" && *e.LeaseHolder != d.opts.ExpectedLeaseHolder:
		return fmt.Sprintf("the executor lease is held by %s, not by the expected %s (foreign lease)", *e.LeaseHolder, d.opts.ExpectedLeaseHolder)
	}
	return ""
}
