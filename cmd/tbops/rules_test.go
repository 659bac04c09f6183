package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/theblock/tbops/energy"
)

// promtool returns the promtool binary. It is skipped when missing, except
// with CI=true, where the test fails: CI must check the rules with the real
// thing (the same rule as internal/promtest).
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PROMTOOL")
	if p == "" {
		p = "/usr/bin/promtool"
	}
	if _, err := os.Stat(p); err != nil {
		lp, lerr := exec.LookPath("promtool")
		if lerr != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("promtool not found (%s, PATH) and CI=true: install prometheus (Debian: apt-get install prometheus) or set PROMTOOL", p)
			}
			t.Skipf("promtool not found (%s, PATH); CI=true makes this a failure", p)
		}
		p = lp
	}
	return p
}

// runPromtool runs promtool with args and returns its combined output. The
// bound is generous: the rule unit tests take about 30 s of CPU on a loaded
// 2-core machine, and a bound is there to stop a hung promtool, not to time it.
func runPromtool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool(t), args...).CombinedOutput()
	return string(out), err
}

// renderRules runs `tbops rules args…` in-process and writes the output to
// dir/tbops-rules.yml.
func renderRules(t *testing.T, dir string, env map[string]string, args ...string) (string, []byte) {
	t.Helper()
	code, out, errOut := runCLI(t, env, append([]string{"rules"}, args...)...)
	require.Equal(t, 0, code, errOut)
	path := filepath.Join(dir, "tbops-rules.yml")
	require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
	return path, []byte(out)
}

type promRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type promRuleFile struct {
	Groups []struct {
		Name  string     `yaml:"name"`
		Rules []promRule `yaml:"rules"`
	} `yaml:"groups"`
}

// parseRules parses a rules file into alert name → rule and group name → alert
// names. An alert restated as one rule per market (perMarket) is kept as its
// first rule; any other repeated name fails.
func parseRules(t *testing.T, b []byte) (map[string]promRule, map[string][]string) {
	t.Helper()
	var f promRuleFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&f))
	rules := map[string]promRule{}
	groups := map[string][]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			_, dup := rules[r.Alert]
			if dup && perMarket[r.Alert] {
				continue
			}
			require.False(t, dup, "alert %s appears twice", r.Alert)
			rules[r.Alert] = r
			groups[g.Name] = append(groups[g.Name], r.Alert)
		}
	}
	return rules, groups
}

// wantRule is what the rules file must say about one alert.
type wantRule struct {
	runbook  string
	severity string
	forDur   string // "" when the rule has no for
	slo      string
	anchor   string
}

// perMarket are the alerts restated as one rule per market, each with a
// static market label (promq has no label_replace).
var perMarket = map[string]bool{"ReceiptsMarketSeriesMissing": true}

// wantRules is every alert `tbops rules` must print: removing one, or adding
// one without listing it here, fails the test. "for N epochs" is N × 2m.
var wantRules = map[string]wantRule{
	// Treasury Stuck: Alert Thresholds.
	"TreasuryBacklogCritical": {"treasury-stuck", "critical", "6m", "", "#treasury-stuck"},
	"TreasuryExecutorFailing": {"treasury-stuck", "critical", "", "", "#treasury-stuck"},
	"TreasuryNoProgress":      {"treasury-stuck", "critical", "", "", "#treasury-stuck"},
	"TreasuryLatencyHigh":     {"treasury-stuck", "warning", "", "", "#treasury-stuck"},
	"TreasuryBacklogWarning":  {"treasury-stuck", "warning", "4m", "", "#treasury-stuck"},
	// Treasury System SLOs.
	"TreasurySLOAvailability":        {"treasury-stuck", "warning", "5m", "Availability", "#slo-definitions"},
	"TreasurySLOExecutionLatencyp95": {"treasury-stuck", "warning", "10m", "Execution Latency p95", "#slo-definitions"},
	"TreasurySLOErrorRate":           {"treasury-stuck", "warning", "", "Error Rate", "#slo-definitions"},
	"TreasurySLOQueueDepth":          {"treasury-stuck", "warning", "6m", "Queue Depth", "#slo-definitions"},
	// Energy Stalled: Alert Thresholds.
	"EnergyOracleLatencyCritical":     {"energy-stalled", "critical", "", "", "#energy-stalled"},
	"EnergySignatureFailuresCritical": {"energy-stalled", "critical", "", "", "#energy-stalled"},
	"EnergySettlementStalled":         {"energy-stalled", "critical", "", "", "#energy-stalled"},
	"EnergyDisputeBacklogCritical":    {"energy-stalled", "critical", "", "", "#energy-stalled"},
	"EnergyOracleLatencyHigh":         {"energy-stalled", "warning", "", "", "#energy-stalled"},
	"EnergySignatureFailures":         {"energy-stalled", "warning", "", "", "#energy-stalled"},
	"EnergyDisputeBacklog":            {"energy-stalled", "warning", "", "", "#energy-stalled"},
	// Energy System SLOs.
	"EnergyOracleLatencySLO":       {"energy-stalled", "warning", "5m", "Oracle Latency p95", "#slo-definitions"},
	"EnergySignatureValidationSLO": {"energy-stalled", "warning", "", "Signature Validation", "#slo-definitions"},
	// Receipts System SLOs (the Receipts Flatlining section has no Alert Thresholds block).
	"ReceiptsMarketNotEmitting":         {"receipts-flatlining", "critical", "5s", "Emission Rate", "#slo-definitions"},
	"ReceiptsMarketSeriesMissing":       {"receipts-flatlining", "warning", "5m", "Emission Rate", "#slo-definitions"},
	"ReceiptsValidationSuccessLow":      {"receipts-flatlining", "critical", "10m", "Validation Success", "#slo-definitions"},
	"ReceiptsMinPaymentRejectionsSpike": {"receipts-flatlining", "warning", "5m", "Min-Payment Rejections", "#slo-definitions"},
	"ReceiptsQueryLatencyHigh":          {"receipts-flatlining", "warning", "5m", "Query Latency p99", "#slo-definitions"},
	// Economics Autopilot Gate: the audit needs the economics_* gauges.
	"GovernorEconomicsTelemetryMissing": {"governor-audit", "warning", "10m", "", "#economics-autopilot-gate"},
	// Runtime Reactor: "sustained growth indicates reactor/event-mapping issues";
	// Config Hot-Reload: a failed reload keeps the old configuration.
	"RuntimeReadWithoutReadyGrowing":  {"runtime-reactor", "warning", "10m", "", "#runtime-reactor"},
	"RuntimeWriteWithoutReadyGrowing": {"runtime-reactor", "warning", "10m", "", "#runtime-reactor"},
	"ConfigReloadFailing":             {"runtime-reactor", "warning", "", "", "#runtime-reactor"},
	// Node health: the height moves (Receipts Flatlining step 4, "block progression").
	"NodeHeightNotProgressing":      {"node-health", "critical", "", "", "#receipts-flatlining"},
	"NodeHeightGaugeNotProgressing": {"node-health", "critical", "", "", "#receipts-flatlining"},
}

// runbookAlertLines is every line of the runbook's "Alert Thresholds" blocks,
// with its block's severity and the rule that carries it.
var runbookAlertLines = []struct {
	line, severity, alert string
}{
	{"treasury_disbursement_backlog > 100 for 3 epochs", "critical", "TreasuryBacklogCritical"},
	{"rate(treasury_execution_errors_total[5m]) > 1", "critical", "TreasuryExecutorFailing"},
	{`increase(governance_disbursements_total{status="finalized"}[10m]) == 0`, "critical", "TreasuryNoProgress"},
	{"histogram_quantile(0.95, treasury_disbursement_lag_seconds_bucket) > 600", "warning", "TreasuryLatencyHigh"},
	{"treasury_disbursement_backlog > 50 for 2 epochs", "warning", "TreasuryBacklogWarning"},
	{"oracle_latency_seconds_p95 > 30", "critical", "EnergyOracleLatencyCritical"},
	{"energy_signature_verification_failures_total > 10", "critical", "EnergySignatureFailuresCritical"},
	{"increase(energy_settlements_total[10m]) == 0", "critical", "EnergySettlementStalled"},
	{"energy_active_disputes_total > 50", "critical", "EnergyDisputeBacklogCritical"},
	{"oracle_latency_seconds_p95 > 10", "warning", "EnergyOracleLatencyHigh"},
	{"rate(energy_signature_verification_failures_total[5m]) > 1", "warning", "EnergySignatureFailures"},
	{"energy_active_disputes_total > 20", "warning", "EnergyDisputeBacklog"},
}

// sloCells is every "Alert Threshold" cell of the runbook's SLO tables, with
// the rules that carry it, or why none can.
var sloCells = []struct {
	table, slo, threshold string
	alerts                []string
	noRule                string
}{
	{"Treasury System", "Availability", "Errors > 0.1% for 5 min", []string{"TreasurySLOAvailability"}, ""},
	{"Treasury System", "Execution Latency p95", "> 600s for 10 min", []string{"TreasurySLOExecutionLatencyp95"}, ""},
	{"Treasury System", "Error Rate", "> 1 error/sec", []string{"TreasurySLOErrorRate"}, ""},
	{"Treasury System", "Queue Depth", "> 100 for 3 epochs", []string{"TreasurySLOQueueDepth"}, ""},
	{"Energy System", "Oracle Latency p95", "> 10s for 5 min", []string{"EnergyOracleLatencySLO"}, ""},
	{"Energy System", "Signature Validation", "> 1 failure/min", []string{"EnergySignatureValidationSLO"}, ""},
	{"Energy System", "Settlement Rate", "< 90% for 10 min", nil,
		"no metric counts readings submitted vs settled; energy.Diagnose evaluates it from energy.credits"},
	{"Energy System", "Dispute Resolution", "Unresolved > 2 hours", nil,
		"no metric carries dispute ages; energy.Diagnose evaluates it from energy.disputes"},
	{"Receipts System", "Emission Rate", "Any market = 0 for 5 blocks", []string{"ReceiptsMarketNotEmitting", "ReceiptsMarketSeriesMissing"}, ""},
	{"Receipts System", "Validation Success", "< 99% for 10 min", []string{"ReceiptsValidationSuccessLow"}, ""},
	{"Receipts System", "Min-Payment Rejections", "Sudden increase in `receipt_min_payment_rejected_total`", []string{"ReceiptsMinPaymentRejectionsSpike"}, ""},
	{"Receipts System", "Storage", "Storage > 1 week", nil,
		"no metric carries receipt retention; receipts are kept by the explorer, not the node"},
	{"Receipts System", "Query Latency p99", "> 500ms for 5 min", []string{"ReceiptsQueryLatencyHigh"}, ""},
}

func TestRulesPromtoolCheck(t *testing.T) {
	promtool(t)
	dir := t.TempDir()
	path, _ := renderRules(t, dir, nil)
	res, err := runPromtool(t, "check", "rules", path)
	require.NoError(t, err, res)
	assert.Contains(t, res, "SUCCESS: "+strconv.Itoa(len(allRules()))+" rules found", res)
}

func TestRulesStructure(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "rules")
	require.Equal(t, 0, code, errOut)
	rules, groups := parseRules(t, []byte(out))

	// One group per runbook id, in a stable order.
	var names []string
	var f promRuleFile
	require.NoError(t, yaml.Unmarshal([]byte(out), &f))
	for _, g := range f.Groups {
		names = append(names, g.Name)
	}
	assert.Equal(t, []string{"tbops-energy-stalled", "tbops-governor-audit", "tbops-node-health", "tbops-receipts-flatlining",
		"tbops-runtime-reactor", "tbops-treasury-stuck"}, names)

	// Exactly the listed alerts, each in its runbook's group.
	for name, w := range wantRules {
		r, ok := rules[name]
		if !assert.True(t, ok, "rule %s missing from `tbops rules`", name) {
			continue
		}
		assert.Contains(t, groups["tbops-"+w.runbook], name)
		assert.Equal(t, w.severity, r.Labels["severity"], name)
		assert.Equal(t, w.runbook, r.Labels["runbook"], name)
		assert.Equal(t, w.slo, r.Labels["slo"], name)
		assert.Equal(t, w.forDur, r.For, name)
		assert.NotEmpty(t, strings.TrimSpace(r.Annotations["summary"]), name)
		assert.Equal(t, defaultRunbookURL+w.anchor, r.Annotations["runbook_url"], name)
		assert.NotEmpty(t, r.Expr, name)
		wantLabels := 2
		if w.slo != "" {
			wantLabels = 3
		}
		if perMarket[name] {
			wantLabels++
			assert.Equal(t, "storage", r.Labels["market"], name)
			assert.Equal(t, 4, strings.Count(out, "alert: "+name+"\n"), "%s: one rule per market", name)
		}
		assert.Len(t, r.Labels, wantLabels, "%s labels %v", name, r.Labels)
		assert.Len(t, r.Annotations, 3, "%s annotations %v", name, r.Annotations)
		assert.Equal(t, "{{ $labels.instance }}: "+r.Annotations["summary"]+" (runbook "+w.runbook+")", r.Annotations["description"], name)
	}
	for name, r := range rules {
		_, ok := wantRules[name]
		assert.True(t, ok, "rule %s (%s) is not listed in wantRules: say which runbook line or SLO cell it carries", name, r.Expr)
		assert.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], name)
	}

	// Every runbook Alert Thresholds line is a rule of its block's severity.
	for _, l := range runbookAlertLines {
		r, ok := rules[l.alert]
		if assert.True(t, ok, "runbook line %q: rule %s missing", l.line, l.alert) {
			assert.Equal(t, l.severity, r.Labels["severity"], "runbook line %q", l.line)
			assert.Empty(t, r.Labels["slo"], "runbook line %q", l.line)
		}
	}
	// Every SLO Alert Threshold cell is a rule labelled with its SLO, or says why not.
	bySLO := map[string][]string{}
	for name, r := range rules {
		if s := r.Labels["slo"]; s != "" {
			bySLO[s] = append(bySLO[s], name)
		}
	}
	cells := map[string]bool{}
	for _, c := range sloCells {
		cells[c.slo] = true
		if c.noRule != "" {
			assert.Empty(t, bySLO[c.slo], "%s %s: a rule now exists, list it", c.table, c.slo)
			continue
		}
		assert.ElementsMatch(t, c.alerts, bySLO[c.slo], "%s SLO %q (%s)", c.table, c.slo, c.threshold)
	}
	for s := range bySLO {
		assert.True(t, cells[s], "slo label %q is not a runbook SLO row", s)
	}
	// The energy package agrees that its two unexpressed SLOs have no PromQL.
	for _, s := range energy.SLOs() {
		if s.Name == "Settlement Rate" || s.Name == "Dispute Resolution" {
			assert.Empty(t, s.Expr, s.Name)
		} else {
			assert.NotEmpty(t, s.Expr, s.Name)
		}
	}

	// "for N epochs" is N × 2m.
	assert.Equal(t, "6m", rules["TreasuryBacklogCritical"].For)
	assert.Equal(t, "4m", rules["TreasuryBacklogWarning"].For)
}

// fleetWide matches PromQL that reads across every node a Prometheus scrapes:
// an aggregation with no grouping (sum(…), count(…), …), a by () list, an
// empty on(), or absent() (which only fires when no node exports the series).
var (
	aggNoGrouping = regexp.MustCompile(`\b(sum|avg|min|max|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\s*\(`)
	aggBy         = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
	emptyOn       = regexp.MustCompile(`\bon\s*\(\s*\)`)
	onList        = regexp.MustCompile(`\bon\s*\(([^)]*)\)`)
)

// TestRulesPerNode keeps every rule per node for a Prometheus that scrapes a
// fleet: aggregations name what they drop (without) or keep instance and job
// (by), set and ratio joins match on instance and job, and missing series are
// found per node, not with absent().
func TestRulesPerNode(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "rules")
	require.Equal(t, 0, code, errOut)
	rules, _ := parseRules(t, []byte(out))
	require.NotEmpty(t, rules)
	for name, r := range rules {
		assert.NotRegexp(t, aggNoGrouping, r.Expr, "%s aggregates across nodes", name)
		assert.NotContains(t, r.Expr, "absent(", "%s: absent() only fires when no node exports the series", name)
		assert.NotRegexp(t, emptyOn, r.Expr, "%s joins across nodes with on()", name)
		for _, m := range aggBy.FindAllStringSubmatch(r.Expr, -1) {
			assert.Contains(t, m[1], "instance", "%s: by (%s) drops the node", name, m[1])
			assert.Contains(t, m[1], "job", "%s: by (%s) drops the node", name, m[1])
		}
		for _, m := range onList.FindAllStringSubmatch(r.Expr, -1) {
			assert.Contains(t, m[1], "instance", "%s: on (%s) joins different nodes", name, m[1])
		}
	}
}

func TestRulesRunbookURLOverride(t *testing.T) {
	anchorOf := func(out string) map[string]string {
		rules, _ := parseRules(t, []byte(out))
		m := map[string]string{}
		for n, r := range rules {
			m[n] = r.Annotations["runbook_url"]
		}
		return m
	}
	code, out, errOut := runCLI(t, nil, "rules", "--runbook-url", "https://wiki.example/ops/RUNBOOK.md#")
	require.Equal(t, 0, code, errOut)
	urls := anchorOf(out)
	assert.Equal(t, "https://wiki.example/ops/RUNBOOK.md#treasury-stuck", urls["TreasuryBacklogCritical"])
	assert.Equal(t, "https://wiki.example/ops/RUNBOOK.md#slo-definitions", urls["TreasurySLOQueueDepth"])
	assert.Equal(t, "https://wiki.example/ops/RUNBOOK.md#economics-autopilot-gate", urls["GovernorEconomicsTelemetryMissing"])

	env := map[string]string{"TB_RUNBOOK_URL": "https://env.example/RUNBOOK.md"}
	code, out, errOut = runCLI(t, env, "rules")
	require.Equal(t, 0, code, errOut)
	urls = anchorOf(out)
	assert.Equal(t, "https://env.example/RUNBOOK.md#energy-stalled", urls["EnergySettlementStalled"])
	assert.Equal(t, "https://env.example/RUNBOOK.md#runtime-reactor", urls["ConfigReloadFailing"])

	// The flag wins over the environment.
	code, out, errOut = runCLI(t, env, "rules", "--runbook-url", "https://flag.example/R.md")
	require.Equal(t, 0, code, errOut)
	urls = anchorOf(out)
	assert.Equal(t, "https://flag.example/R.md#slo-definitions", urls["ReceiptsMarketNotEmitting"])
	assert.Equal(t, "https://flag.example/R.md#treasury-stuck", urls["TreasuryNoProgress"])
	assert.NotContains(t, out, "env.example")
	assert.NotContains(t, out, defaultRunbookURL)
}

// TestRulesPromtoolUnitTests runs testdata/rules_test.yml (every rule fed series
// that make it fire, checked before and after its for, and healthy series where
// it stays silent) against the rules `tbops rules` prints now.
func TestRulesPromtoolUnitTests(t *testing.T) {
	promtool(t)
	dir := t.TempDir()
	renderRules(t, dir, nil, "--runbook-url", "https://runbook.test/RUNBOOK.md")
	spec, err := os.ReadFile(filepath.Join("testdata", "rules_test.yml"))
	require.NoError(t, err)
	testFile := filepath.Join(dir, "rules_test.yml")
	require.NoError(t, os.WriteFile(testFile, spec, 0o644))

	// Every rule is exercised: named in an alert_rule_test with expected alerts.
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			Name   string `yaml:"name"`
			Inputs []struct {
				Series string `yaml:"series"`
			} `yaml:"input_series"`
			Cases []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []struct {
					Labels map[string]string `yaml:"exp_labels"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(spec, &tests))
	assert.Equal(t, []string{"tbops-rules.yml"}, tests.RuleFiles)
	instanceOf := regexp.MustCompile(`\binstance="([^"]+)"`)
	// fires: cases where the rule fires; silent: where it does not; beside: cases
	// where it fires for some nodes of the input while another node is healthy.
	fires, silent, beside := map[string]int{}, map[string]int{}, map[string]int{}
	for _, tc := range tests.Tests {
		// One Prometheus scrapes the fleet: every series is some node's.
		nodes := map[string]bool{}
		for _, in := range tc.Inputs {
			m := instanceOf.FindStringSubmatch(in.Series)
			if assert.NotNil(t, m, "%s: series %s has no instance label", tc.Name, in.Series) {
				nodes[m[1]] = true
			}
			assert.Contains(t, in.Series, `job="`, "%s: series %s has no job label", tc.Name, in.Series)
		}
		for _, c := range tc.Cases {
			if len(c.ExpAlerts) == 0 {
				silent[c.Alertname]++
				continue
			}
			fires[c.Alertname]++
			firing := map[string]bool{}
			for _, a := range c.ExpAlerts {
				assert.NotEmpty(t, a.Labels["instance"], "%s: %s alert without the node's instance label", tc.Name, c.Alertname)
				assert.NotEmpty(t, a.Labels["job"], "%s: %s alert without the node's job label", tc.Name, c.Alertname)
				firing[a.Labels["instance"]] = true
			}
			if len(nodes) > len(firing) {
				beside[c.Alertname]++
			}
		}
	}
	for name := range wantRules {
		assert.Positive(t, fires[name], "%s: no promtool case where it fires", name)
		assert.GreaterOrEqual(t, silent[name], 2, "%s: want a no-alert case before it fires and a healthy one", name)
		assert.Positive(t, beside[name], "%s: no promtool case where it fires for a bad node next to a healthy one", name)
	}
	for name := range fires {
		_, ok := wantRules[name]
		assert.True(t, ok, "rules_test.yml tests unknown alert %s", name)
	}

	res, err := runPromtool(t, "test", "rules", testFile)
	require.NoError(t, err, res)
	assert.Contains(t, res, "SUCCESS", res)
}

func TestRulesJSON(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "rules", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var f ruleFile
	require.NoError(t, json.Unmarshal([]byte(out), &f))
	require.NotEmpty(t, f.Groups)
	n := 0
	for _, g := range f.Groups {
		n += len(g.Rules)
	}
	assert.Equal(t, len(allRules()), n, "the JSON carries every rule")
}
