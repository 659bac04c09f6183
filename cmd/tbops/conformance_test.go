package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// Conformance: the alert a report shows and the rule `tbops rules` exports are
// one definition. For every simulated scenario, the node runs on a fake clock
// long enough to cover every rule's window and `for` (the longest is 1h + 5m),
// scraped every 15 s as Prometheus would. The same samples then go two ways:
// into a `promtool test rules` file (input_series) whose expected alerts are
// the ones doctor's reports say fire, and into the runbooks' Diagnose through
// a nodetest.Source. promtool passing means both agree on every alert of every
// scenario: which alerts fire, for which series, and which do not.
const (
	conformanceScrape = 15 * time.Second
	conformanceSpan   = 70 * time.Minute
)

// conformanceStart is the node's clock at promtool's time 0. Any minute works:
// the rule grid (1m) lines up with promtool's from there.
var conformanceStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func TestAlertsConformToPromtool(t *testing.T) {
	bin := promtool(t)
	dir := t.TempDir()
	_, rules := renderRules(t, dir, nil)
	byName := ruleAnnotations(t, rules)
	rbs := newTestApp(nil).runbooks()
	names := nodetest.Scenarios()
	tests := make([]promtoolCase, len(names))
	t.Run("scenarios", func(t *testing.T) {
		for i, name := range names {
			t.Run(name, func(t *testing.T) {
				t.Parallel() // each scenario has its own node and clock
				tests[i] = conformanceCase(t, name, rbs, byName)
			})
		}
	})
	if t.Failed() {
		return
	}
	file := filepath.Join(dir, "conformance.yml")
	raw, err := yaml.Marshal(map[string]any{"rule_files": []string{"tbops-rules.yml"}, "evaluation_interval": "1m", "tests": tests})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, raw, 0o644))
	out, err := runPromtool(t, "test", "rules", file)
	require.NoError(t, err, "promtool and the reports disagree (%s):\n%s", bin, out)
	require.Contains(t, out, "SUCCESS", out)
}

// promtoolCase is one `tests:` entry of a promtool rule test file.
type promtoolCase struct {
	Name     string          `yaml:"name"`
	Interval string          `yaml:"interval"`
	Inputs   []promtoolInput `yaml:"input_series"`
	Alerts   []promtoolAlert `yaml:"alert_rule_test"`
}

type promtoolInput struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type promtoolAlert struct {
	EvalTime  string             `yaml:"eval_time"`
	Alertname string             `yaml:"alertname"`
	Exp       []promtoolExpected `yaml:"exp_alerts"`
}

type promtoolExpected struct {
	Labels      map[string]string `yaml:"exp_labels"`
	Annotations map[string]string `yaml:"exp_annotations"`
}

// ruleAnnotations reads the rendered rules: each alert's rule labels and
// annotations, which promtool wants in every expected alert.
func ruleAnnotations(t *testing.T, rendered []byte) map[string]ruleEntry {
	t.Helper()
	var f ruleFile
	require.NoError(t, yaml.Unmarshal(rendered, &f))
	out := map[string]ruleEntry{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r
		}
	}
	return out
}

// conformanceCase runs one scenario for the whole span and returns its promtool
// case: every series the node exposed, and each alert as the reports see it.
func conformanceCase(t *testing.T, scenario string, rbs []runbook, rules map[string]ruleEntry) promtoolCase {
	t.Helper()
	ctx := context.Background()
	clock := nodetest.NewFakeClock(conformanceStart)
	n := nodetest.Start(t, nodetest.WithClock(clock.Now), nodetest.WithScenarioName(scenario))
	src, err := nodetest.NewSource(ctx, n, clock, conformanceScrape)
	require.NoError(t, err, scenario)
	defer src.Close()
	require.NoError(t, src.Advance(ctx, conformanceSpan), scenario)

	tc := promtoolCase{Name: scenario, Interval: model.Duration(conformanceScrape).String(), Inputs: inputSeries(t, ctx, src)}
	tgt := &target{rpcURL: n.URL(), metricsURL: n.MetricsURL(), src: src, now: clock.Now, slo: true, explorer: n.ExplorerURL()}
	seen := map[string]bool{}
	for _, rb := range rbs {
		r, err := rb.diagnose(ctx, tgt)
		require.NoError(t, err, "%s on %s", rb.id, scenario)
		reportcheck.Valid(t, r)
		for _, a := range r.Alerts {
			entry, ok := rules[a.Name]
			if !ok || seen[a.Name] {
				continue
			}
			seen[a.Name] = true
			tc.Alerts = append(tc.Alerts, expectedAlert(t, scenario, a, entry))
		}
	}
	for name := range rules {
		if !seen[name] {
			t.Errorf("%s: no report shows alert %s: every rule must appear in its runbook's Alerts block", scenario, name)
		}
	}
	sort.Slice(tc.Alerts, func(i, j int) bool { return tc.Alerts[i].Alertname < tc.Alerts[j].Alertname })
	return tc
}

// expectedAlert is what promtool must find for one alert at the end of the
// span. A rule the report could not decide must be undecidable for want of
// data only (a metric the scenario's node does not export), and then Prometheus
// sees no series either: no alert.
func expectedAlert(t *testing.T, scenario string, a tbops.Alert, entry ruleEntry) promtoolAlert {
	t.Helper()
	pa := promtoolAlert{EvalTime: model.Duration(conformanceSpan).String(), Alertname: a.Name}
	if a.Status == tbops.StatusUnknown {
		var why struct {
			Observed float64  `json:"observed_seconds"`
			Needed   float64  `json:"needed_seconds"`
			NoData   []string `json:"no_data"`
		}
		if err := json.Unmarshal(a.Detail, &why); err != nil || len(why.NoData) == 0 {
			t.Errorf("%s: %s undecided after %s of history, and not for want of data: %s", scenario, a.Name, conformanceSpan, a.Detail)
		}
		return pa
	}
	if !a.Firing {
		return pa
	}
	var detail struct {
		Firing []map[string]string `json:"firing"`
	}
	require.NoError(t, json.Unmarshal(a.Detail, &detail), "%s: %s fires without detail.firing", scenario, a.Name)
	require.NotEmpty(t, detail.Firing, "%s: %s fires for no series", scenario, a.Name)
	for _, labels := range detail.Firing {
		exp := promtoolExpected{Labels: map[string]string{}, Annotations: map[string]string{}}
		for k, v := range labels {
			exp.Labels[k] = v
		}
		for k, v := range entry.Labels {
			exp.Labels[k] = v
		}
		for k, v := range entry.Annotations {
			exp.Annotations[k] = expandLabels(t, v, exp.Labels)
		}
		pa.Exp = append(pa.Exp, exp)
	}
	return pa
}

// inputSeries is every series the source scraped, in promtool's notation: one
// value per scrape interval from time 0, "_" where the series was absent.
func inputSeries(t *testing.T, ctx context.Context, src *nodetest.Source) []promtoolInput {
	t.Helper()
	names := map[string]bool{}
	for _, name := range src.MetricNames() {
		names[name] = true
	}
	steps := int(conformanceSpan/conformanceScrape) + 1
	var out []promtoolInput
	for _, name := range sortedKeys(names) {
		rr, err := src.Samples(ctx, promq.Selector{Metric: name}, conformanceSpan+time.Minute)
		require.NoError(t, err)
		for _, ss := range rr.Matrix {
			vals := make([]string, steps)
			for i := range vals {
				vals[i] = "_"
			}
			for _, p := range ss.Values {
				i := int(p.Timestamp.Time().Sub(conformanceStart) / conformanceScrape)
				if i >= 0 && i < steps {
					vals[i] = strconv.FormatFloat(float64(p.Value), 'g', -1, 64)
				}
			}
			out = append(out, promtoolInput{Series: seriesString(ss.Metric), Values: strings.Join(vals, " ")})
		}
	}
	return out
}

// seriesString writes a series as promtool reads it: name{label="value",…}.
func seriesString(m model.Metric) string {
	var b strings.Builder
	b.WriteString(string(m[model.MetricNameLabel]))
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != model.MetricNameLabel {
			keys = append(keys, string(k))
		}
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, string(m[model.LabelName(k)]))
	}
	b.WriteByte('}')
	return b.String()
}

// labelRef is the one template form the rules' annotations use.
var labelRef = regexp.MustCompile(`\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// expandLabels expands {{ $labels.name }} as Prometheus does for an alert
// with these labels; any other template is a failure of this test, which would
// have to learn it.
func expandLabels(t *testing.T, s string, labels map[string]string) string {
	t.Helper()
	out := labelRef.ReplaceAllStringFunc(s, func(m string) string { return labels[labelRef.FindStringSubmatch(m)[1]] })
	if strings.Contains(out, "{{") {
		t.Fatalf("annotation %q uses a template this test does not expand", s)
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
