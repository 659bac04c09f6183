package energy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/logscan"
	"github.com/theblock/tbops/promq"
)

// Symptom ids of the energy-stalled report (the runbook's five checkboxes).
const (
	SymptomOracleLatency     = "oracle-latency-high"
	SymptomSignatureFailures = "signature-failures"
	SymptomPendingCredits    = "pending-credits-not-decreasing"
	SymptomNotSettling       = "readings-not-settling"
	SymptomDisputes          = "dispute-backlog-increasing"
)

// Resolution path ids (the runbook's letters).
const (
	PathOracleLatency = "A"
	PathSignatures    = "B"
	PathTimestampSkew = "C"
	PathReputation    = "D"
)

// Defaults of Options.
const (
	// DefaultCreditLimit caps the pending credits step 3 lists (the runbook's --limit 200).
	DefaultCreditLimit = 200
	// DefaultProviderLookups caps the energy.provider calls of step 4 (the runbook's head -10).
	DefaultProviderLookups = 10
	// DefaultLogGlob is where the runbook greps the node's logs (on the node's
	// own host): the command line's default, never the library's.
	DefaultLogGlob = "/var/log/node/*.log"
	// disputeLimit is the energy.disputes page the dispute trend reads (the
	// protocol's maximum).
	disputeLimit = 500
	// settledLimit caps the settled credits the settlement-rate SLO counts.
	settledLimit = 2000
	// keyLookups is how many providers' keys Path B compares (the runbook's head -5).
	keyLookups = 5
)

// Options tunes Diagnose. The zero value is the runbook's, and touches nothing
// on the machine running tbops: no file is read and its clock is not checked
// unless LogGlobs or HostClock ask.
type Options struct {
	// Now stamps the report and is when the rules are evaluated and ages
	// measured (default: the client's clock, rpc.WithClock).
	Now func() time.Time
	// Eval is passed to every promq.EvalRule and promq.Eval:
	// promq.WithEvalInterval to match a Prometheus' evaluation_interval,
	// promq.WithHistoryHint for what the warnings of an undecided window suggest.
	Eval []promq.EvalOption
	// CreditLimit caps the pending credits listed (DefaultCreditLimit when 0).
	CreditLimit int
	// ProviderLookups caps the energy.provider calls (DefaultProviderLookups when 0).
	ProviderLookups int
	// LogGlobs are the node's log files steps 2 and 4 grep for signature
	// failures and timestamp_skew (DefaultLogGlob on the node's host); none:
	// no file is read and Path C rests on the providers' settlement times.
	LogGlobs []string
	// LogMaxBytes is how much of the end of each log file is read (16 MiB when 0).
	LogMaxBytes int64
	// HostClock, when set, reads the clock state of the machine running tbops
	// (HostClockSync does): a finding of step 4 about that machine, never a
	// symptom of the node.
	HostClock func(ctx context.Context) ClockSync
	// SLO also evaluates the Energy SLO table.
	SLO bool
}

// check refuses negative limits, naming the field.
func (o Options) check() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{{"CreditLimit", int64(o.CreditLimit)}, {"ProviderLookups", int64(o.ProviderLookups)}, {"LogMaxBytes", o.LogMaxBytes}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%w: Options.%s = %d: must not be negative (0 takes the default)", ErrInvalidArgument, f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.CreditLimit == 0 {
		o.CreditLimit = DefaultCreditLimit
	}
	if o.ProviderLookups == 0 {
		o.ProviderLookups = DefaultProviderLookups
	}
	return o
}

// Runbook is the Energy Stalled runbook bound to one node: its client, its
// metrics source and the options (a tbops.Runbook). It only diagnoses: every
// action it plans is a command for a person (DryRun).
type Runbook struct {
	c    *Client
	src  promq.Source
	opts Options
}

var _ tbops.Runbook = (*Runbook)(nil)

// NewRunbook binds the runbook to a client, a metrics source (nil: the metric
// symptoms and every alert are unknown) and options.
func NewRunbook(c *Client, src promq.Source, opts Options) *Runbook {
	return &Runbook{c: c, src: src, opts: opts}
}

// ID is RunbookID.
func (rb *Runbook) ID() string { return RunbookID }

// Diagnose is Diagnose with the runbook's client, source and options.
func (rb *Runbook) Diagnose(ctx context.Context) (tbops.Report, error) {
	return Diagnose(ctx, rb.c, rb.src, rb.opts)
}

// diag is one diagnosis in progress: what was gathered, and the report.
type diag struct {
	c     *Client
	src   promq.Source
	o     Options
	now   time.Time
	r     tbops.Report
	rules map[string]promq.RuleState
	m     metricFacts
	g     rpcFacts
	h     hostFacts
}

// Diagnose runs the Energy Stalled runbook: it gathers steps 1–5 from the node
// (c), the metrics source (src, may be nil) and, when the options ask, the
// node's log files and this host's clock; it decides the five symptoms (from
// exact RPC evidence where the runbook allows, else from the rules evaluated
// on src), evaluates Rules() into the Alerts block (and the SLO table with
// Options.SLO), and matches paths A–D. It changes nothing. The error is
// non-nil only for a cancelled ctx or invalid options; missing data makes the
// affected symptoms unknown, with a warning.
func Diagnose(ctx context.Context, c *Client, src promq.Source, opts Options) (tbops.Report, error) {
	if c == nil {
		return tbops.Report{}, fmt.Errorf("%w: Diagnose needs a Client", ErrInvalidArgument)
	}
	if err := opts.check(); err != nil {
		return tbops.Report{}, err
	}
	d := &diag{c: c, src: src, o: opts.withDefaults(), now: c.Now()}
	if opts.Now != nil {
		d.now = opts.Now()
	}
	d.r = tbops.NewReport(RunbookID, c.URL(), d.now)
	if src != nil {
		d.r.Scope = src.Name()
	} else {
		d.warn("no metrics source: oracle latency, signature failures and every alert are unknown")
	}
	d.evalRules(ctx)
	d.gatherMetrics(ctx)
	d.gatherRPC(ctx)
	if err := d.gatherHost(ctx); err != nil {
		return d.r, err
	}
	if err := ctx.Err(); err != nil {
		return d.r, err
	}
	d.r.Symptoms = append(d.r.Symptoms, d.oracleSymptom(), d.signatureSymptom(), d.pendingSymptom(), d.settlingSymptom(), d.disputeSymptom())
	d.steps()
	d.paths()
	if d.o.SLO {
		d.slos(ctx)
	}
	d.r.Finalize()
	return d.r, nil
}

// warn records a warning once.
func (d *diag) warn(w string) {
	if !slices.Contains(d.r.Warnings, w) {
		d.r.Warnings = append(d.r.Warnings, w)
	}
}

func (d *diag) warnAll(ws []string) {
	for _, w := range ws {
		d.warn(w)
	}
}

// rpcEv is evidence of one RPC read: the method with its params (or a jq-like
// projection), and v or the error.
func (d *diag) rpcEv(query string, v any, err error) tbops.Evidence {
	if err != nil {
		v = err.Error()
	}
	return tbops.Evidence{Source: tbops.SourceRPC, Query: query, Value: tbops.RawOf(v), At: d.now.UTC()}
}

// evalRules evaluates every rule on the source: the Alerts block, and the
// states the metric symptoms are decided from.
func (d *diag) evalRules(ctx context.Context) {
	d.rules = map[string]promq.RuleState{}
	for _, rule := range Rules() {
		st := promq.RuleState{Rule: rule}
		if d.src != nil {
			s, err := promq.EvalRule(ctx, d.src, rule, d.now, d.o.Eval...)
			if err != nil {
				d.warn(fmt.Sprintf("%s: %v", rule.Alert, err))
			} else {
				st = s
			}
		}
		d.rules[rule.Alert] = st
		d.r.Alerts = append(d.r.Alerts, st.ReportAlert())
	}
}

// metricFacts are what steps 1–3 and Path B read from the metrics, beyond the rules.
type metricFacts struct {
	// cumulative are step 1's quantiles over the cumulative buckets (the
	// runbook's own queries): since the node started, not a window.
	cumulative   map[float64]float64
	cumulativeEv []tbops.Evidence
	// failMetric is the failure counter the node exports (the contract's or
	// the reference node's name), "" for neither; failTotals its values by reason.
	failMetric string
	failTotals promq.Result
	// failRates is the failure rate a minute by reason; pathB Path B's
	// indicator, more than 1 a minute with reason verification_failed or
	// invalid_format.
	failRates promq.Evaluation
	pathB     promq.Evaluation
	// pendingTrend and disputeTrend are the gauges over SettleWindow.
	pendingTrend, disputeTrend trend
}

func (d *diag) gatherMetrics(ctx context.Context) {
	if d.src == nil {
		return
	}
	m := &d.m
	m.cumulative = map[float64]float64{}
	for _, q := range []float64{0.50, 0.95, 0.99} {
		res, err := d.src.Quantile(ctx, q, promq.Select(MetricOracleLatency), 0)
		if err != nil {
			d.warn(fmt.Sprintf("%s quantile %g: %v", MetricOracleLatency, q, err))
			continue
		}
		if v, ok := res.Value(); ok && !math.IsNaN(v) {
			m.cumulative[q] = v
			m.cumulativeEv = append(m.cumulativeEv, res.Evidence)
		}
	}
	for _, name := range []string{MetricFailures, MetricFailuresRef} {
		res, err := d.src.Instant(ctx, promq.Select(name))
		if err == nil && len(res.Vector) > 0 {
			m.failMetric, m.failTotals = name, res
			break
		}
	}
	if m.failMetric != "" {
		m.failRates = d.eval(ctx, promq.Mul(promq.Rate(promq.Select(m.failMetric), RateWindow), promq.Num(60)))
	}
	m.pathB = d.eval(ctx, promq.GTc(failuresPerMin(ReasonVerificationFailed, ReasonInvalidFormat), FailuresPerMinWarning))
	m.pendingTrend = d.gaugeTrend(ctx, MetricPendingCredits)
	m.disputeTrend = d.gaugeTrend(ctx, MetricActiveDisputes)
}

// eval evaluates an expression that is not an alert (a step's breakdown, a
// path's indicator); an error leaves it unknown, with a warning.
func (d *diag) eval(ctx context.Context, e promq.Expr) promq.Evaluation {
	ev, err := promq.Eval(ctx, d.src, e, d.now, d.o.Eval...)
	if err != nil {
		d.warn(fmt.Sprintf("%s: %v", e, err))
		return promq.Evaluation{Expr: e.String()}
	}
	return ev
}

// trend is a gauge's first and last value over SettleWindow, known only when
// its samples cover the window (the promq rule: a first sample within one
// sample interval of the window's start, a last one within the lookback).
type trend struct {
	known       bool
	first, last float64
	ev          tbops.Evidence
	// why says what was missing when the trend is not known.
	why string
}

func (d *diag) gaugeTrend(ctx context.Context, metric string) trend {
	rr, err := d.src.Samples(ctx, promq.Select(metric), SettleWindow)
	t := trend{ev: rr.Evidence}
	switch {
	case err != nil:
		t.why = fmt.Sprintf("%s: %v", metric, err)
		return t
	case len(rr.Matrix) == 0:
		t.why = "no data for " + metric
		return t
	case len(rr.Matrix) > 1:
		t.why = fmt.Sprintf("%s has %d series: scope the source to one node", metric, len(rr.Matrix))
		return t
	}
	vals := rr.Matrix[0].Values
	if len(vals) < 2 {
		t.why = fmt.Sprintf("%s: one sample, not a trend over %s", metric, SettleWindow)
		return t
	}
	first, last := vals[0], vals[len(vals)-1]
	span := last.Timestamp.Time().Sub(first.Timestamp.Time())
	interval := span / time.Duration(len(vals)-1)
	start := d.now.Add(-SettleWindow)
	if first.Timestamp.Time().Sub(start) > interval || d.now.Sub(last.Timestamp.Time()) > promq.Lookback {
		t.why = fmt.Sprintf("%s: only %s of the %s window observed", metric, span.Round(time.Second), SettleWindow)
		return t
	}
	t.known, t.first, t.last = true, float64(first.Value), float64(last.Value)
	return t
}

// rpcFacts are what the node answered.
type rpcFacts struct {
	// pending are the pending credits, oldest age known; pendingComplete is
	// false when the list stopped at CreditLimit.
	pending         []Credit
	pendingErr      error
	pendingComplete bool
	market          Market
	marketErr       error
	marketMethod    string
	// providers are the energy.provider answers of the first ProviderLookups
	// providers, in market order.
	providers []providerLookup
	keys      OracleKeys
	keysErr   error
	// disputes are the newest disputes, disputesComplete when the page held
	// them all.
	disputes         []Dispute
	disputesErr      error
	disputesComplete bool
	settled          int
	settledErr       error
}

// providerLookup is one energy.provider call.
type providerLookup struct {
	id  string
	p   Provider
	err error
}

func (d *diag) gatherRPC(ctx context.Context) {
	g := &d.g
	filter := CreditFilter{Status: "pending", Limit: min(d.o.CreditLimit, MaxLimit)}
	// One more than the limit tells a complete list from a cut one.
	for cr, err := range d.c.AllCredits(ctx, filter, d.o.CreditLimit+1) {
		if err != nil {
			g.pendingErr = err
			break
		}
		g.pending = append(g.pending, cr)
	}
	g.pendingComplete = g.pendingErr == nil && len(g.pending) <= d.o.CreditLimit
	g.pending = g.pending[:min(len(g.pending), d.o.CreditLimit)]
	if g.pendingErr != nil {
		d.warn(fmt.Sprintf("%s: %v", MethodCredits, g.pendingErr))
	}
	g.market, g.marketErr = d.c.Market(ctx)
	g.marketMethod = d.c.MarketMethod()
	if g.marketErr != nil {
		d.warn(fmt.Sprintf("%s: %v", g.marketMethod, g.marketErr))
	}
	for _, p := range g.market.Providers[:min(len(g.market.Providers), d.o.ProviderLookups)] {
		pd, err := d.c.Provider(ctx, p.ProviderID)
		g.providers = append(g.providers, providerLookup{id: p.ProviderID, p: pd, err: err})
		if isMethodNotFound(err) { // the reference node: asking for the next one tells nothing new
			d.warn(problem(MethodProvider, err) + ": the providers' settlement times and keys are unknown")
			break
		}
		if err != nil {
			d.warn(fmt.Sprintf("%s %s: %v", MethodProvider, p.ProviderID, err))
		}
	}
	g.keys, g.keysErr = d.c.OracleKeys(ctx)
	g.disputes, g.disputesErr = d.c.Disputes(ctx, "", disputeLimit)
	g.disputesComplete = g.disputesErr == nil && len(g.disputes) < disputeLimit
	if g.disputesErr != nil {
		d.warn(fmt.Sprintf("%s: %v", MethodDisputes, g.disputesErr))
	}
	if d.o.SLO {
		for _, err := range d.c.AllCredits(ctx, CreditFilter{Status: "settled", Limit: MaxLimit}, settledLimit) {
			if err != nil {
				g.settledErr = err
				d.warn(fmt.Sprintf("%s status=settled: %v", MethodCredits, err))
				break
			}
			g.settled++
		}
	}
}

// hostFacts are what was read on the machine running tbops, when the options asked.
type hostFacts struct {
	logs  *logscan.Result
	clock *ClockSync
}

// Log lines of steps 2 and 4: the runbook's greps, substring and
// case-sensitive, as grep matches.
var (
	signatureLogKeys = []string{"signature_verification_failed", "SignatureInvalid"}
	skewLogKeys      = []string{"timestamp_skew", "TimestampSkew"}
)

// Tails of the log greps: step 2's tail -30, and Path C's tail -5.
const (
	signatureLogTail = 30
	skewLogTail      = 5
)

func containsAny(keys []string) func([]byte) bool {
	return func(line []byte) bool {
		return slices.ContainsFunc(keys, func(k string) bool { return bytes.Contains(line, []byte(k)) })
	}
}

func (d *diag) gatherHost(ctx context.Context) error {
	if len(d.o.LogGlobs) > 0 {
		res, err := logscan.Scan(d.o.LogGlobs, d.o.LogMaxBytes,
			logscan.Filter{Match: containsAny(signatureLogKeys), Tail: signatureLogTail},
			logscan.Filter{Match: containsAny(skewLogKeys), Tail: skewLogTail})
		if err != nil {
			return fmt.Errorf("%w: Options.LogGlobs: %v", ErrInvalidArgument, err)
		}
		d.h.logs = &res
		for _, p := range res.Problems {
			d.warn("logs: " + p)
		}
	}
	if d.o.HostClock != nil {
		cs := d.o.HostClock(ctx)
		d.h.clock = &cs
	}
	return nil
}

// logsRead says whether the log greps have counts: some file was read.
func (d *diag) logsRead() bool { return d.h.logs != nil && d.h.logs.Read() }

// grepQuery is the shell command a log grep stands for, for evidence and for
// a person to run on the node's host.
func (d *diag) grepQuery(keys []string, tail string) string {
	globs := d.o.LogGlobs
	if len(globs) == 0 {
		globs = []string{DefaultLogGlob}
	}
	return fmt.Sprintf(`grep "%s" %s | %s`, strings.Join(keys, `\|`), strings.Join(globs, " "), tail)
}

// since is how long ago a Unix time was, from now.
func (d *diag) since(unix int64) time.Duration { return d.now.Sub(time.Unix(unix, 0)) }

// ago prints how long ago a time the node gave was: "never" for 0, "unknown"
// when it gave none.
func (d *diag) ago(unix *int64) string {
	switch {
	case unix == nil:
		return "unknown"
	case *unix <= 0:
		return "never"
	}
	return d.since(*unix).Round(time.Second).String() + " ago"
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
