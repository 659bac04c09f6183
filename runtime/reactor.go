package runtime

import (
	"context"
	"fmt"
	"math"
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

// Defaults of ReactorOptions: growth is sustained when the counter rose in each
// of the last 3 five-minute sub-windows, i.e. for 15 minutes without a pause.
const (
	DefaultSubWindow  = 5 * time.Minute
	DefaultSubWindows = 3
)

// Symptom ids of the reactor diagnosis.
const (
	SymptomReadWithoutReady  = "read-without-ready-growing"
	SymptomWriteWithoutReady = "write-without-ready-growing"
	SymptomReloadErrors      = "config-reload-errors"
)

// Rules returns the reactor runbook's alerting rules. The wakeup rules are the
// PromQL form of Diagnose's "sustained": increase over 5m > 0, held for 10m, so
// that when they fire the counter has grown throughout the last 15 minutes.
// None aggregates: each series is one node's (config_reload_total keeps its
// result label), so a Prometheus scraping a fleet alerts per instance.
func Rules() []tbops.Rule {
	held := DefaultSubWindow * (DefaultSubWindows - 1)
	return []tbops.Rule{
		{Alert: "RuntimeReadWithoutReadyGrowing", Runbook: RunbookID, Severity: tbops.StatusWarning,
			Expr: fmt.Sprintf("increase(%s[%s]) > 0", MetricReadWithoutReady, model.Duration(DefaultSubWindow)), For: held,
			Summary: "reads keep succeeding without readiness events: the reactor misses IO wakeups (reactor/event-mapping issue)"},
		{Alert: "RuntimeWriteWithoutReadyGrowing", Runbook: RunbookID, Severity: tbops.StatusWarning,
			Expr: fmt.Sprintf("increase(%s[%s]) > 0", MetricWriteWithoutReady, model.Duration(DefaultSubWindow)), For: held,
			Summary: "writes keep succeeding without readiness events: the reactor misses IO wakeups (reactor/event-mapping issue)"},
		{Alert: "ConfigReloadFailing", Runbook: RunbookID, Severity: tbops.StatusWarning,
			Expr: fmt.Sprintf(`increase(%s{result="error"}[%s]) > 0`, MetricConfigReload,
				model.Duration(DefaultSubWindow*DefaultSubWindows)),
			Summary: "a config reload failed: the node keeps running its last good configuration, not the file on disk"},
	}
}

// ReactorOptions tunes DiagnoseReactor.
type ReactorOptions struct {
	// Target names the node whose metrics src reads (its RPC URL), for the
	// report's target.
	Target string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SubWindow and SubWindows define "sustained growth": the counter rose in
	// each of the last SubWindows sub-windows of length SubWindow (default 3 × 5m).
	SubWindow  time.Duration
	SubWindows int
	// Settings, when given, say where each knob's value came from (LoadKnobs'
	// second result); they are shown with the knobs.
	Settings []Setting
	// ConfigPath names the config file the knobs came from, for the advice.
	ConfigPath string
}

// growth is what the samples of one counter say.
type growth struct {
	known     bool
	sustained bool
	increase  float64
	grew, of  int // sub-windows that grew, of how many judged
	observed  time.Duration
	partial   bool
	evidence  tbops.Evidence
	warnings  []string
}

// judgeGrowth reads the counter's samples over sub×n and decides whether it grew
// in every sub-window. When the source has seen less than the whole window (a
// scrape source that just started), the observed span is split into as many
// sub-windows as there are sample intervals, up to n, and judged the same way.
func judgeGrowth(ctx context.Context, src promq.Source, metric string, sub time.Duration, n int) (growth, error) {
	window := sub * time.Duration(n)
	// One sub-window more than judged, so the sample at the window's start is
	// there as the baseline of the first sub-window.
	rr, err := src.Samples(ctx, promq.Select(metric), window+sub)
	var g growth
	g.evidence = tbops.Evidence{Source: tbops.SourcePrometheus, Query: fmt.Sprintf("increase(%s[%s]) > 0 in each of the last %d %s windows",
		metric, model.Duration(sub), n, model.Duration(sub))}
	if err != nil {
		if ctx.Err() != nil {
			return g, ctx.Err()
		}
		g.warnings = append(g.warnings, fmt.Sprintf("%s: %v", metric, err))
		g.evidence.Value = tbops.RawOf(err.Error())
		return g, nil
	}
	g.evidence.Source, g.evidence.At = rr.Evidence.Source, rr.Evidence.At
	if rr.Evidence.Query != "" {
		// What the source actually ran (with any scope it added), so a person can re-run it.
		g.evidence.Query = fmt.Sprintf("%s: increase > 0 in each of the last %d %s windows", rr.Evidence.Query, n, model.Duration(sub))
	}
	if g.evidence.Source == "" {
		g.evidence.Source = tbops.SourcePrometheus
	}
	g.warnings = append(g.warnings, rr.Warnings...)
	for _, series := range rr.Matrix {
		s := judgeSeries(series.Values, sub, n)
		if !s.known {
			continue
		}
		if !g.known || (s.sustained && !g.sustained) || (s.sustained == g.sustained && s.increase > g.increase) {
			s.evidence, s.warnings = g.evidence, g.warnings
			g = s
		}
	}
	if len(rr.Matrix) == 0 {
		g.warnings = append(g.warnings, fmt.Sprintf("no data for %s: the node does not export it or the source has not scraped it yet", metric))
	} else if !g.known {
		g.warnings = append(g.warnings, fmt.Sprintf("%s: fewer than two samples in the last %s: growth unknown", metric, model.Duration(window)))
	} else if g.partial {
		g.warnings = append(g.warnings, fmt.Sprintf("%s: only %s of the %s window observed; growth judged on what was seen",
			metric, model.Duration(g.observed.Round(time.Second)), model.Duration(window)))
	}
	g.increase = math.Round(g.increase*1000) / 1000 // a short observation's float noise helps nobody
	g.evidence.Value = tbops.RawOf(map[string]any{"increase": g.increase, "grew_windows": g.grew, "windows": g.of, "known": g.known,
		"observed_seconds": g.observed.Seconds()})
	return g, nil
}

// judgeSeries applies the rule to one series' samples (oldest first).
func judgeSeries(pts []model.SamplePair, sub time.Duration, n int) growth {
	var g growth
	if len(pts) < 2 {
		return g
	}
	first, last := pts[0].Timestamp.Time(), pts[len(pts)-1].Timestamp.Time()
	g.known = true
	g.observed = last.Sub(first)
	step := g.observed / time.Duration(len(pts)-1)
	window := sub * time.Duration(n)
	start, parts, width := last.Add(-window), n, sub
	if g.observed > window {
		g.observed = window
	}
	if first.After(start.Add(step)) {
		// Partial coverage: judge the observed span in up to n equal parts.
		g.partial = true
		parts = min(n, len(pts)-1)
		width = g.observed / time.Duration(parts)
		start = first
	}
	incs := make([]float64, parts)
	for i := 1; i < len(pts); i++ {
		t := pts[i].Timestamp.Time()
		if !t.After(start) {
			continue
		}
		d := float64(pts[i].Value - pts[i-1].Value)
		if d < 0 {
			d = float64(pts[i].Value) // a counter reset: it counted up from zero
		}
		k := int(t.Sub(start) / width)
		if t.Sub(start)%width == 0 && k > 0 {
			k-- // a sample on a boundary closes the earlier sub-window
		}
		k = min(max(k, 0), parts-1)
		incs[k] += d
		g.increase += d
	}
	g.of = parts
	for _, v := range incs {
		if v > 0 {
			g.grew++
		}
	}
	g.sustained = g.grew == parts
	return g
}

// DiagnoseReactor is the runtime-reactor runbook: it judges the growth of the
// missed-wakeup counters and of failed config reloads from src, shows the knobs
// in force, and says how to tune them. It changes nothing. src may be nil (the
// metric symptoms are then unknown). The error is non-nil only for a cancelled
// ctx or invalid options.
func DiagnoseReactor(ctx context.Context, src promq.Source, knobs Knobs, opts ReactorOptions) (tbops.Report, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SubWindow == 0 {
		opts.SubWindow = DefaultSubWindow
	}
	if opts.SubWindows == 0 {
		opts.SubWindows = DefaultSubWindows
	}
	if opts.SubWindow < time.Second || opts.SubWindows < 1 || opts.SubWindows > 100 {
		return tbops.Report{}, fmt.Errorf("runtime: DiagnoseReactor: want SubWindow ≥ 1s and 1 ≤ SubWindows ≤ 100, got %s × %d",
			opts.SubWindow, opts.SubWindows)
	}
	if err := ctx.Err(); err != nil {
		return tbops.Report{}, err
	}
	now := opts.Now()
	r := tbops.NewReport(RunbookID, opts.Target, now)
	rules := Rules()
	window := opts.SubWindow * time.Duration(opts.SubWindows)

	type counter struct {
		id, metric, what string
		rule             tbops.Rule
	}
	counters := []counter{
		{SymptomReadWithoutReady, MetricReadWithoutReady, "reads", rules[0]},
		{SymptomWriteWithoutReady, MetricWriteWithoutReady, "writes", rules[1]},
	}
	var wakeupFiring []string
	var findings []string
	for _, c := range counters {
		sym := tbops.Symptom{ID: c.id, Threshold: tbops.Num(0),
			Summary: fmt.Sprintf("%s grows steadily: %s succeed without a readiness event (missed IO wakeups)", c.metric, c.what)}
		alert := tbops.Alert{Name: c.rule.Alert, Severity: c.rule.Severity, Expr: c.rule.Expr, ForSeconds: c.rule.For.Seconds()}
		if src == nil {
			sym.Status, alert.Status = tbops.StatusUnknown, tbops.StatusUnknown
			r.Warnf("%s: no metrics source", c.metric)
		} else {
			g, err := judgeGrowth(ctx, src, c.metric, opts.SubWindow, opts.SubWindows)
			if err != nil {
				return r, err
			}
			for _, w := range g.warnings {
				r.Warnf("%s", w)
			}
			sym.Evidence = []tbops.Evidence{g.evidence}
			switch {
			case !g.known:
				sym.Status, alert.Status = tbops.StatusUnknown, tbops.StatusUnknown
			case g.sustained && g.increase > 0:
				sym.Firing, sym.Status, sym.Value = true, tbops.StatusWarning, tbops.Num(g.increase)
				alert.Firing, alert.Status, alert.Value = true, alert.Severity, tbops.Num(g.increase)
				wakeupFiring = append(wakeupFiring, c.metric)
			default:
				sym.Status, sym.Value, alert.Status, alert.Value = tbops.StatusOK, tbops.Num(g.increase), tbops.StatusOK, tbops.Num(g.increase)
			}
			if g.known {
				findings = append(findings, fmt.Sprintf("%s: +%g over the last %s; grew in %d of %d sub-windows",
					c.metric, g.increase, model.Duration(min(window, g.observed.Round(time.Second))), g.grew, g.of))
			}
		}
		r.Symptoms = append(r.Symptoms, sym)
		r.Alerts = append(r.Alerts, alert)
	}
	r.Steps = append(r.Steps, tbops.Step{ID: "wakeup-counters", Title: "Missed IO wakeups (read/write without readiness)",
		Findings: findings, Evidence: evidenceOf(r.Symptoms[:2])})

	// Config reload errors: the node's running configuration is stale.
	rule := rules[2]
	reloadWindow := window
	rsym := tbops.Symptom{ID: SymptomReloadErrors, Threshold: tbops.Num(0),
		Summary: "config reloads fail: the node keeps its last good configuration, not the file on disk"}
	ralert := tbops.Alert{Name: rule.Alert, Severity: rule.Severity, Expr: rule.Expr}
	var reloadFindings []string
	if src == nil {
		rsym.Status, ralert.Status = tbops.StatusUnknown, tbops.StatusUnknown
		r.Warnf("%s: no metrics source", MetricConfigReload)
	} else {
		sel := promq.Select(MetricConfigReload, "result", ReloadError)
		res, err := src.Increase(ctx, sel, reloadWindow)
		if err != nil && ctx.Err() != nil {
			return r, ctx.Err()
		}
		ev := res.Evidence
		if ev.Query == "" {
			ev.Query = fmt.Sprintf("increase(%s[%s])", sel, model.Duration(reloadWindow))
		}
		if ev.Source == "" {
			ev.Source = tbops.SourcePrometheus
		}
		for _, w := range res.Warnings {
			r.Warnf("%s", w)
		}
		v, ok := res.Sum()
		switch {
		case err != nil:
			ev.Value = tbops.RawOf(err.Error())
			r.Warnf("%s: %v", sel, err)
			rsym.Status, ralert.Status = tbops.StatusUnknown, tbops.StatusUnknown
		case !ok:
			r.Warnf("no data for %s: the node does not export it or the source has not scraped it yet", sel)
			rsym.Status, ralert.Status = tbops.StatusUnknown, tbops.StatusUnknown
		case v > 0:
			rsym.Firing, rsym.Status, rsym.Value = true, tbops.StatusWarning, tbops.Num(v)
			ralert.Firing, ralert.Status, ralert.Value = true, ralert.Severity, tbops.Num(v)
			reloadFindings = append(reloadFindings, fmt.Sprintf("%g failed reloads in the last %s: the node runs its last good configuration", v, model.Duration(reloadWindow)))
		default:
			rsym.Status, rsym.Value, ralert.Status, ralert.Value = tbops.StatusOK, tbops.Num(v), tbops.StatusOK, tbops.Num(v)
			reloadFindings = append(reloadFindings, fmt.Sprintf("no failed reloads observed (window %s)", model.Duration(reloadWindow)))
		}
		rsym.Evidence = []tbops.Evidence{ev}
	}
	r.Symptoms = append(r.Symptoms, rsym)
	r.Alerts = append(r.Alerts, ralert)
	r.Steps = append(r.Steps, tbops.Step{ID: "config-reload", Title: "Config hot-reload", Findings: reloadFindings, Evidence: rsym.Evidence})

	r.Steps = append(r.Steps, knobsStep(knobs, opts))
	r.Steps = append(r.Steps, tbops.Step{ID: "tuning", Title: "When to tune (runbook)", Findings: tuningAdvice(knobs)})

	r.Paths = append(r.Paths, wakeupPath(knobs, wakeupFiring, opts), reloadPath(rsym.Firing, opts))
	r.Finalize()
	return r, nil
}

func evidenceOf(syms []tbops.Symptom) []tbops.Evidence {
	var out []tbops.Evidence
	for _, s := range syms {
		out = append(out, s.Evidence...)
	}
	return out
}

func knobsStep(k Knobs, opts ReactorOptions) tbops.Step {
	src := map[string]string{}
	for _, s := range opts.Settings {
		src[s.Key] = s.Source
	}
	var f []string
	for _, s := range Specs() {
		ms, _ := k.Millis(s.Name)
		line := fmt.Sprintf("%s = %d ms (env %s, default %d)", s.Key(), ms, s.Env, s.Default)
		if from, ok := src[s.Key()]; ok {
			line = fmt.Sprintf("%s = %d ms from %s (env %s, default %d)", s.Key(), ms, from, s.Env, s.Default)
		}
		f = append(f, line)
	}
	ev := tbops.Evidence{Source: tbops.SourceFile, Query: "tbops runtime knobs", Value: tbops.RawOf(k), At: opts.Now().UTC()}
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

func knobSpec(name string) KnobSpec {
	for _, s := range Specs() {
		if s.Name == name {
			return s
		}
	}
	return KnobSpec{}
}

func wakeupPath(k Knobs, firing []string, opts ReactorOptions) tbops.Path {
	p := tbops.Path{ID: "A", Title: "Missed IO wakeups: reactor/event-mapping issue"}
	if len(firing) == 0 {
		p.Why = "the missed-wakeup counters are not growing steadily"
		return p
	}
	p.Matched = true
	p.Why = strings.Join(firing, " and ") + " grew in every sub-window: reads/writes succeed without readiness events, so the reactor relies on its fallback backoff"
	file, arg := "the node config", "FILE"
	if opts.ConfigPath != "" {
		file, arg = opts.ConfigPath, opts.ConfigPath
	}
	var acts []tbops.Action
	for _, name := range []string{"io_read_backoff_ms", "io_write_backoff_ms"} {
		s := knobSpec(name)
		cur, _ := k.Millis(name)
		next := min(cur*2, s.Max)
		acts = append(acts, tbops.Action{Kind: "config", Target: s.Key(), DryRun: true,
			Command: fmt.Sprintf("set [runtime] %s = %d in %s (or %s=%d)", name, next, file, s.Env, next),
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

func reloadPath(firing bool, opts ReactorOptions) tbops.Path {
	p := tbops.Path{ID: "B", Title: "Config reload failing: the running configuration is stale"}
	if !firing {
		p.Why = "no failed config reloads"
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
			Note: "shows the first bad key, its value and the allowed range (p2p_* keys too)"},
		{Kind: "config", DryRun: true, Target: file, Note: "fix the file; the watcher reloads it without restart (up to one poll interval late where file events are unavailable)"},
		{Kind: "wait", DryRun: true, Command: "tbops runtime watch --config " + file, Note: `confirm the next reload is ok and config_reload_total{result="ok"} increases`},
	}
	return p
}
