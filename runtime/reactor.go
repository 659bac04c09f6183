package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// RunbookID is the id of the reactor-health diagnosis.
const RunbookID = "runtime-reactor"

// Metric names (PROTOCOL.md section 7).
const (
	MetricReadWithoutReady  = "runtime_read_without_ready_total"
	MetricWriteWithoutReady = "runtime_write_without_ready_total"
	MetricConfigReload      = "config_reload_total"
)

// The windows of the rules. "Sustained growth" (the runbook's words) is an
// increase over every 5-minute window, held for 10 minutes: 15 minutes of
// growth without a 5-minute pause. A failed reload counts for 15 minutes.
const (
	growthWindow = 5 * time.Minute
	growthFor    = 10 * time.Minute
	reloadWindow = 15 * time.Minute
)

// Symptom ids of the reactor diagnosis.
const (
	SymptomReadWithoutReady  = "read-without-ready-growing"
	SymptomWriteWithoutReady = "write-without-ready-growing"
	SymptomReloadErrors      = "config-reload-errors"
)

// Rules returns the reactor runbook's alerting rules, the only definition of
// its checks: `tbops rules` prints them and DiagnoseReactor evaluates them
// (promq.EvalRule), its symptoms being the same evaluations. None aggregates:
// each series is one node's (config_reload_total keeps its result label), so
// a Prometheus scraping a fleet alerts per instance.
func Rules() []promq.Rule {
	growing := func(alert, metric, what string) promq.Rule {
		return promq.Rule{Alert: alert, Runbook: RunbookID, Severity: tbops.StatusWarning,
			Expr: promq.GTc(promq.Increase(promq.Select(metric), growthWindow), 0), For: growthFor,
			Summary: what + " keep succeeding without readiness events: the reactor misses IO wakeups (reactor/event-mapping issue)"}
	}
	return []promq.Rule{
		growing("RuntimeReadWithoutReadyGrowing", MetricReadWithoutReady, "reads"),
		growing("RuntimeWriteWithoutReadyGrowing", MetricWriteWithoutReady, "writes"),
		{Alert: "ConfigReloadFailing", Runbook: RunbookID, Severity: tbops.StatusWarning,
			Expr:    promq.GTc(promq.Increase(promq.Select(MetricConfigReload, "result", ReloadError), reloadWindow), 0),
			Summary: "a config reload failed: the node keeps running its last good configuration, not the file on disk"},
	}
}

// check is one symptom and the rule that decides it.
type check struct {
	symptom, summary string
	rule             promq.Rule
}

func checks() []check {
	rules := Rules()
	return []check{
		{SymptomReadWithoutReady, MetricReadWithoutReady + " grows steadily: reads succeed without a readiness event (missed IO wakeups)", rules[0]},
		{SymptomWriteWithoutReady, MetricWriteWithoutReady + " grows steadily: writes succeed without a readiness event (missed IO wakeups)", rules[1]},
		{SymptomReloadErrors, "config reloads fail: the node keeps its last good configuration, not the file on disk", rules[2]},
	}
}

// ReactorOptions tunes DiagnoseReactor.
type ReactorOptions struct {
	// Target names the node whose metrics src reads (its RPC URL), for the
	// report's target. Required.
	Target string
	// Now is the clock (default time.Now): the rules are evaluated at Now.
	Now func() time.Time
	// Settings, when given, say where each knob's value came from
	// (LoadNodeConfig's second result); they are shown with the knobs.
	Settings []Setting
	// ConfigPath names the config file the knobs came from, for the advice.
	ConfigPath string
	// Eval configures the rule evaluations: promq.WithEvalInterval to match a
	// Prometheus' evaluation_interval, promq.WithHistoryHint to say what would
	// decide an undecided window.
	Eval []promq.EvalOption
}

// Runbook is the runtime-reactor runbook bound to one node's metrics and the
// knobs in force: a tbops.Runbook.
type Runbook struct {
	src   promq.Source
	knobs Knobs
	opts  ReactorOptions
}

// NewRunbook binds the reactor diagnosis to src (the node's metrics, scoped to
// it; nil leaves the metric symptoms unknown), the knobs in force and opts,
// whose Target names the node.
func NewRunbook(src promq.Source, knobs Knobs, opts ReactorOptions) *Runbook {
	return &Runbook{src: src, knobs: knobs, opts: opts}
}

// ID is RunbookID.
func (rb *Runbook) ID() string { return RunbookID }

// Diagnose is DiagnoseReactor with the runbook's source, knobs and options.
func (rb *Runbook) Diagnose(ctx context.Context) (tbops.Report, error) {
	return DiagnoseReactor(ctx, rb.src, rb.knobs, rb.opts)
}

// DiagnoseReactor is the runtime-reactor runbook: it evaluates Rules on src
// at opts.Now — the missed-wakeup counters' sustained growth and failed config
// reloads — shows the knobs in force, and says how to tune them. It changes
// nothing. A rule is decided only from history that covers its window and
// `for` (or a counter that moved, for the reload rule); otherwise its symptom
// and alert are unknown, with a warning saying how much was observed. src may
// be nil (every symptom is then unknown). The error is non-nil only for a
// cancelled ctx or invalid options.
func DiagnoseReactor(ctx context.Context, src promq.Source, knobs Knobs, opts ReactorOptions) (tbops.Report, error) {
	if opts.Target == "" {
		return tbops.Report{}, errors.New("runtime: DiagnoseReactor: ReactorOptions.Target is empty: name the node whose metrics src reads")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := ctx.Err(); err != nil {
		return tbops.Report{}, err
	}
	now := opts.Now()
	r := tbops.NewReport(RunbookID, opts.Target, now)
	if src != nil {
		r.Scope = src.Name()
	} else {
		r.Warnf("no metrics source: the reactor counters and config reloads are unknown")
	}
	var wakeup, reload []string
	var wakeupFiring []string
	for _, c := range checks() {
		st, err := evaluate(ctx, src, c.rule, now, opts.Eval)
		if err != nil {
			return r, err
		}
		for _, w := range st.Warnings {
			r.Warnf("%s", w)
		}
		a := st.ReportAlert()
		r.Alerts = append(r.Alerts, a)
		r.Symptoms = append(r.Symptoms, tbops.Symptom{ID: c.symptom, Summary: c.summary, Firing: a.Firing, Status: a.Status,
			Value: a.Value, Threshold: a.Threshold, Detail: a.Detail, Evidence: a.Evidence})
		if c.symptom == SymptomReloadErrors {
			reload = append(reload, finding(st, a))
			continue
		}
		wakeup = append(wakeup, finding(st, a))
		if a.Firing {
			wakeupFiring = append(wakeupFiring, c.rule.Expr.String())
		}
	}
	r.Steps = append(r.Steps,
		tbops.Step{ID: "wakeup-counters", Title: "Missed IO wakeups (read/write without readiness)", Findings: wakeup,
			Evidence: evidenceOf(r.Symptoms[:2])},
		tbops.Step{ID: "config-reload", Title: "Config hot-reload", Findings: reload, Evidence: r.Symptoms[2].Evidence},
		knobsStep(knobs, now, opts),
		tbops.Step{ID: "tuning", Title: "When to tune (runbook)", Findings: tuningAdvice(knobs)})
	r.Paths = append(r.Paths, wakeupPath(knobs, wakeupFiring, r.Symptoms[:2], opts), reloadPath(r.Symptoms[2], opts))
	r.Finalize()
	return r, nil
}

// evaluate is the rule's state at now. A source that cannot answer leaves the
// rule unknown with a warning, as missing data does; only a cancelled ctx is
// an error.
func evaluate(ctx context.Context, src promq.Source, rule promq.Rule, now time.Time, opts []promq.EvalOption) (promq.RuleState, error) {
	if src == nil {
		return promq.RuleState{Rule: rule}, nil
	}
	st, err := promq.EvalRule(ctx, src, rule, now, opts...)
	if err == nil {
		return st, nil
	}
	if ctx.Err() != nil {
		return st, ctx.Err()
	}
	return promq.RuleState{Rule: rule, Warnings: []string{fmt.Sprintf("%s: %v", rule.Alert, err)}}, nil
}

// finding is one rule's line in its step: the verdict, the value now and how
// much history decided it.
func finding(st promq.RuleState, a tbops.Alert) string {
	cond := st.Rule.PromQL()
	if st.Rule.For > 0 {
		cond += " for " + model.Duration(st.Rule.For).String()
	}
	value := "no value"
	if a.Value != nil {
		value = fmt.Sprintf("%g", *a.Value)
	}
	return fmt.Sprintf("%s (%s): %s; value now %s; observed %s of %s", st.Rule.Alert, cond, a.Status, value,
		model.Duration(st.Observed.Round(time.Second)), model.Duration(st.Needed))
}

func evidenceOf(syms []tbops.Symptom) []tbops.Evidence {
	var out []tbops.Evidence
	for _, s := range syms {
		out = append(out, s.Evidence...)
	}
	return out
}

func knobsStep(k Knobs, now time.Time, opts ReactorOptions) tbops.Step {
	from := map[string]string{}
	for _, s := range opts.Settings {
		from[s.Key] = s.Source
	}
	var f []string
	value := map[string]int64{}
	for _, s := range Specs() {
		ms, ok := k.Millis(s.Key)
		if !ok {
			continue // a p2p key
		}
		value[s.Key] = ms
		line := fmt.Sprintf("%s = %d ms (env %s, default %d)", s.Key, ms, s.Env, s.Default)
		if src, ok := from[s.Key]; ok {
			line = fmt.Sprintf("%s = %d ms from %s (env %s, default %d)", s.Key, ms, src, s.Env, s.Default)
		}
		f = append(f, line)
	}
	ev := tbops.Evidence{Source: tbops.SourceFile, Query: "tbops runtime knobs", Value: tbops.RawOf(value), At: now.UTC()}
	if opts.ConfigPath != "" {
		ev.Query = "tbops runtime knobs --config " + opts.ConfigPath
	}
	return tbops.Step{ID: "knobs", Title: "Runtime knobs in force (as tbops loads them: defaults < file < environment)", Findings: f,
		Evidence: []tbops.Evidence{ev}}
}

func tuningAdvice(k Knobs) []string {
	return []string{
		fmt.Sprintf("latency-sensitive testnets: lower reactor_idle_poll_ms (now %d) and the read/write backoffs (now %d/%d)",
			k.ReactorIdlePoll.Milliseconds(), k.IOReadBackoff.Milliseconds(), k.IOWriteBackoff.Milliseconds()),
		"CPU saturated by idle peers: raise reactor_idle_poll_ms and the backoffs",
		"validate every change against runtime_read_without_ready_total / runtime_write_without_ready_total and reactor CPU",
		"BSD (kqueue) runs level-triggered (no EV_CLEAR): if wakeups are missed, increase the backoff and ensure update_interest() instrumentation is present",
		"config reloads apply without restart (env vars TB_REACTOR_IDLE_POLL_MS, TB_IO_READ_BACKOFF_MS, TB_IO_WRITE_BACKOFF_MS map to the same knobs)",
	}
}

// notMatched says why a path's symptoms do not match: known not to fire, or
// undecided (too little history, or no data: the warnings say which).
func notMatched(syms []tbops.Symptom, ok string) string {
	for _, s := range syms {
		if s.Status == tbops.StatusUnknown {
			return "undecided: " + s.ID + " is unknown (see the warnings)"
		}
	}
	return ok
}

func wakeupPath(k Knobs, firing []string, syms []tbops.Symptom, opts ReactorOptions) tbops.Path {
	p := tbops.Path{ID: "A", Title: "Missed IO wakeups: reactor/event-mapping issue"}
	if len(firing) == 0 {
		p.Why = notMatched(syms, "the missed-wakeup counters are not growing steadily")
		return p
	}
	p.Matched = true
	p.Why = strings.Join(firing, " and ") + " for " + model.Duration(growthFor).String() +
		": reads/writes succeed without readiness events, so the reactor relies on its fallback backoff"
	file, arg := "the node config", "FILE"
	if opts.ConfigPath != "" {
		file, arg = opts.ConfigPath, opts.ConfigPath
	}
	var acts []tbops.Action
	for _, key := range []string{"runtime.io_read_backoff_ms", "runtime.io_write_backoff_ms"} {
		s := spec(key)
		cur, _ := k.Millis(key)
		next := min(cur*2, s.Max)
		acts = append(acts, tbops.Action{Kind: "config", Target: key, DryRun: true,
			Command: fmt.Sprintf("set [runtime] %s = %d in %s (or %s=%d)", strings.TrimPrefix(key, "runtime."), next, file, s.Env, next),
			Note:    fmt.Sprintf("raise the backoff (now %d ms) when retries without readiness cost CPU; the BSD/kqueue note asks for this too", cur)})
	}
	acts = append(acts,
		tbops.Action{Kind: "check", DryRun: true, Target: "update_interest()",
			Note: "on kqueue (BSD) the reactor is level-triggered without EV_CLEAR: ensure update_interest() instrumentation is present to find the lost interest registration"},
		tbops.Action{Kind: "config", Target: "runtime.reactor_idle_poll_ms", DryRun: true,
			Command: fmt.Sprintf("lower reactor_idle_poll_ms (now %d) for latency-sensitive testnets; raise it when idle peers saturate the CPU", k.ReactorIdlePoll.Milliseconds()),
			Note:    "the idle poll bounds how late a missed wakeup is noticed"},
		tbops.Action{Kind: "wait", DryRun: true, Command: "tbops runtime watch --config " + arg,
			Note: "reloads apply without restart: confirm the reload is ok, then that the counters flatten and reactor CPU stays sane (tbops doctor)"},
	)
	p.Actions = acts
	return p
}

func reloadPath(sym tbops.Symptom, opts ReactorOptions) tbops.Path {
	p := tbops.Path{ID: "B", Title: "Config reload failing: the running configuration is stale"}
	if !sym.Firing {
		p.Why = notMatched([]tbops.Symptom{sym}, "no failed config reloads in the last "+model.Duration(reloadWindow).String())
		return p
	}
	file := "FILE"
	if opts.ConfigPath != "" {
		file = opts.ConfigPath
	}
	p.Matched = true
	p.Why = `config_reload_total{result="error"} increased: the node rejected the file on disk and keeps its last good configuration`
	p.Actions = []tbops.Action{
		{Kind: "check", DryRun: true, Command: "tbops runtime knobs --config " + file,
			Note: "shows every bad key, its value and the allowed range (p2p_* keys too)"},
		{Kind: "config", DryRun: true, Target: file, Note: "fix the file; the watcher reloads it without restart (up to one poll interval late where file events are unavailable)"},
		{Kind: "wait", DryRun: true, Command: "tbops runtime watch --config " + file, Note: `confirm the next reload is ok and config_reload_total{result="ok"} increases`},
	}
	return p
}
