package promq

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exprStrings is every constructor's output and every precedence case.
var exprStrings = []struct {
	e    Expr
	want string
}{
	{Metric("treasury_disbursement_backlog"), `treasury_disbursement_backlog`},
	{Metric("governance_disbursements_total", "status", "finalized", "job", "node"), `governance_disbursements_total{job="node",status="finalized"}`},
	{Metric("x", "path", `a"b\c`), `x{path="a\"b\\c"}`},
	{Rate(Select("x"), 5*time.Minute), `rate(x[5m])`},
	{Increase(Select("x", "a", "b"), 90*time.Second), `increase(x{a="b"}[1m30s])`},
	{HistogramQuantile(0.95, Rate(Select("lat_bucket"), 5*time.Minute)), `histogram_quantile(0.95, rate(lat_bucket[5m]))`},
	{HistogramQuantile(0.5, SumBy(Rate(Select("lat_bucket"), time.Hour), "le")), `histogram_quantile(0.5, sum by (le) (rate(lat_bucket[1h])))`},
	{Sum(Metric("x")), `sum(x)`},
	{SumWithout(Rate(Select("e_total"), 5*time.Minute), "reason"), `sum without (reason) (rate(e_total[5m]))`},
	{SumBy(Metric("x"), "instance", "job"), `sum by (instance, job) (x)`},
	{GroupWithout(Metric("r_total"), "market"), `group without (market) (r_total)`},
	{GroupBy(Metric("r_total")), `group(r_total)`},
	{Add(Metric("a"), Metric("b")), `a + b`},
	{Sub(Num(1), Metric("a")), `1 - a`},
	{Mul(Metric("a"), Num(60)), `a * 60`},
	{Div(Metric("a"), Metric("b"), On("instance")), `a / on (instance) b`},
	{Div(Metric("a"), Metric("b"), Ignoring("reason")), `a / ignoring (reason) b`},
	{GTc(Metric("a"), 10), `a > 10`},
	{GEc(Metric("a"), 0.0166667), `a >= 0.0166667`},
	{LTc(Metric("a"), 0.99), `a < 0.99`},
	{LEc(Metric("a"), -1), `a <= -1`},
	{EQc(Metric("a"), 0), `a == 0`},
	{NEc(Metric("a"), 1e6), `a != 1e+06`},
	{GTc(Metric("a"), math.Inf(1)), `a > +Inf`},
	{Compare(Num(3), LT, Metric("a")), `3 < a`},
	{Compare(Rate(Select("x"), 5*time.Minute), GT, Mul(Num(3), Rate(Select("x"), time.Hour))), `rate(x[5m]) > 3 * rate(x[1h])`},
	{And(Metric("a"), Metric("b"), On("instance", "job")), `a and on (instance, job) b`},
	{Or(Metric("a"), Metric("b")), `a or b`},
	{Unless(Metric("a"), Metric("b"), Ignoring("market")), `a unless ignoring (market) b`},
	{And(Metric("a"), Metric("b"), On()), `a and on () b`},
	// Parentheses exactly where precedence and left associativity need them.
	{Mul(Add(Metric("a"), Metric("b")), Num(60)), `(a + b) * 60`},
	{Add(Metric("a"), Mul(Metric("b"), Num(60))), `a + b * 60`},
	{Sub(Sub(Metric("a"), Metric("b")), Metric("c")), `a - b - c`},
	{Sub(Metric("a"), Sub(Metric("b"), Metric("c"))), `a - (b - c)`},
	{Div(Metric("a"), Mul(Metric("b"), Metric("c"))), `a / (b * c)`},
	{GTc(Mul(Or(Metric("a"), Metric("b")), Num(60)), 10), `(a or b) * 60 > 10`},
	{And(EQc(Or(Metric("a"), Metric("b")), 0), GTc(Metric("c"), 0), On("instance", "job")), `(a or b) == 0 and on (instance, job) c > 0`},
	{Or(Metric("a"), And(Metric("b"), Metric("c"))), `a or b and c`},
	{And(Or(Metric("a"), Metric("b")), Metric("c")), `(a or b) and c`},
	{Unless(Metric("a"), Unless(Metric("b"), Metric("c"))), `a unless (b unless c)`},
	{Compare(GTc(Metric("a"), 1), GT, Metric("b")), `a > 1 > b`},
	{Compare(Metric("a"), GT, GTc(Metric("b"), 1)), `a > (b > 1)`},
	{LTc(Sub(Num(1), Div(Metric("e"), Add(Or(Metric("ok"), Mul(Num(0), Metric("e"))), Metric("e")))), 0.99),
		`1 - e / ((ok or 0 * e) + e) < 0.99`},
}

// shippedRules are the expressions `tbops rules` prints today, written with the
// constructors: each prints the shipped PromQL (Prometheus' own spacing, `on (`,
// aside). The two that need what promq does not offer are rewritten: a regular
// expression matcher becomes the or of two selectors, and label_replace
// becomes one rule per market with a static market label.
var shippedRules = []struct {
	shipped string
	e       Expr
}{
	{`histogram_quantile(0.95, rate(oracle_latency_seconds_bucket[5m])) > 30`,
		GTc(HistogramQuantile(0.95, Rate(Select("oracle_latency_seconds_bucket"), 5*time.Minute)), 30)},
	{`(sum without (reason) (rate(energy_signature_verification_failures_total[5m])) or sum without (reason) (rate(energy_reading_reject_total[5m]))) * 60 > 10`,
		GTc(Mul(Or(SumWithout(Rate(Select("energy_signature_verification_failures_total"), 5*time.Minute), "reason"),
			SumWithout(Rate(Select("energy_reading_reject_total"), 5*time.Minute), "reason")), Num(60)), 10)},
	{`(increase(energy_settlements_total[10m]) or increase(energy_settlement_total[10m])) == 0 and on(instance, job) energy_pending_credits_total > 0`,
		And(EQc(Or(Increase(Select("energy_settlements_total"), 10*time.Minute), Increase(Select("energy_settlement_total"), 10*time.Minute)), 0),
			GTc(Metric("energy_pending_credits_total"), 0), On("instance", "job"))},
	{`energy_active_disputes_total > 50`, GTc(Metric("energy_active_disputes_total"), 50)},
	{`(block_height_total or block_height) unless on(instance, job) economics_block_reward_per_block`,
		Unless(Or(Metric("block_height_total"), Metric("block_height")), Metric("economics_block_reward_per_block"), On("instance", "job"))},
	{`increase(receipt_emitted_total[1m]) == 0`, EQc(Increase(Select("receipt_emitted_total"), time.Minute), 0)},
	{`group without (market) (receipt_emitted_total) unless ignoring (market) receipt_emitted_total{market="storage"}`, // with Labels market=storage
		Unless(GroupWithout(Metric("receipt_emitted_total"), "market"), Metric("receipt_emitted_total", "market", "storage"), Ignoring("market"))},
	{`1 - sum without (reason) (rate(receipt_validation_errors_total[5m])) / ((sum without (market) (rate(receipt_emitted_total[5m])) or 0 * sum without (reason) (rate(receipt_validation_errors_total[5m]))) + sum without (reason) (rate(receipt_validation_errors_total[5m]))) < 0.99`,
		func() Expr {
			errs := SumWithout(Rate(Select("receipt_validation_errors_total"), 5*time.Minute), "reason")
			ok := SumWithout(Rate(Select("receipt_emitted_total"), 5*time.Minute), "market")
			return LTc(Sub(Num(1), Div(errs, Add(Or(ok, Mul(Num(0), errs)), errs))), 0.99)
		}()},
	{`rate(receipt_min_payment_rejected_total[5m]) > 0.0166667 and rate(receipt_min_payment_rejected_total[5m]) > 3 * rate(receipt_min_payment_rejected_total[1h])`,
		func() Expr {
			sel := Select("receipt_min_payment_rejected_total")
			return And(GTc(Rate(sel, 5*time.Minute), 0.0166667), Compare(Rate(sel, 5*time.Minute), GT, Mul(Num(3), Rate(sel, time.Hour))))
		}()},
	{`histogram_quantile(0.99, rate(receipt_query_duration_seconds_bucket[5m])) > 0.5`,
		GTc(HistogramQuantile(0.99, Rate(Select("receipt_query_duration_seconds_bucket"), 5*time.Minute)), 0.5)},
	{`increase(runtime_read_without_ready_total[5m]) > 0`, GTc(Increase(Select("runtime_read_without_ready_total"), 5*time.Minute), 0)},
	{`increase(config_reload_total{result="error"}[15m]) > 0`, GTc(Increase(Select("config_reload_total", "result", "error"), 15*time.Minute), 0)},
	{`treasury_disbursement_backlog > 100`, GTc(Metric("treasury_disbursement_backlog"), 100)},
	{`sum without (reason) (rate(treasury_execution_errors_total[5m])) > 1`,
		GTc(SumWithout(Rate(Select("treasury_execution_errors_total"), 5*time.Minute), "reason"), 1)},
	{`increase(governance_disbursements_total{status="finalized"}[10m]) == 0 and on(instance, job) treasury_disbursement_backlog > 0`,
		And(EQc(Increase(Select("governance_disbursements_total", "status", "finalized"), 10*time.Minute), 0),
			GTc(Metric("treasury_disbursement_backlog"), 0), On("instance", "job"))},
	{`histogram_quantile(0.95, treasury_disbursement_lag_seconds_bucket) > 600`,
		GTc(HistogramQuantile(0.95, Metric("treasury_disbursement_lag_seconds_bucket")), 600)},
	// Shipped with status=~"executed|finalized" and redundant outer parentheses.
	{`sum without (reason) (rate(treasury_execution_errors_total[5m])) / (sum without (reason) (rate(treasury_execution_errors_total[5m])) + (sum without (status) (rate(governance_disbursements_total{status="executed"}[5m]) or rate(governance_disbursements_total{status="finalized"}[5m])) or 0 * sum without (reason) (rate(treasury_execution_errors_total[5m])))) > 0.001`,
		func() Expr {
			errs := SumWithout(Rate(Select("treasury_execution_errors_total"), 5*time.Minute), "reason")
			done := SumWithout(Or(Rate(Select("governance_disbursements_total", "status", "executed"), 5*time.Minute),
				Rate(Select("governance_disbursements_total", "status", "finalized"), 5*time.Minute)), "status")
			return GTc(Div(errs, Add(errs, Or(done, Mul(Num(0), errs)))), 0.001)
		}()},
}

func TestShippedRulesExpressible(t *testing.T) {
	for _, c := range shippedRules {
		assert.Equal(t, strings.ReplaceAll(c.shipped, " on(", " on ("), c.e.String())
		assert.NoError(t, checkVector(c.e))
	}
}

func TestExprString(t *testing.T) {
	for _, c := range exprStrings {
		assert.Equal(t, c.want, c.e.String())
		_, err := check(c.e)
		assert.NoError(t, err, c.want)
	}
}

// TestExprStringPromtool: Prometheus' parser accepts every printed expression
// (promtool check rules parses each as an alerting rule; the differential
// tests check that it also means the same).
func TestExprStringPromtool(t *testing.T) {
	bin := promtool(t)
	rf := rulesFile{Groups: []ruleGroup{{Name: "strings"}}}
	printed := make([]string, 0, len(exprStrings)+len(shippedRules))
	for _, c := range exprStrings {
		printed = append(printed, c.e.String())
	}
	for _, c := range shippedRules {
		printed = append(printed, c.e.String())
	}
	for i, p := range printed {
		rf.Groups[0].Rules = append(rf.Groups[0].Rules, ruleLine{Alert: "Printed" + strconv.Itoa(i), Expr: p})
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yml")
	writeYAML(t, path, rf)
	out, err := runBounded(dir, bin, "check", "rules", path)
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "SUCCESS: "+strconv.Itoa(len(printed))+" rules found")
}

// TestExprImmutable: an expression does not change when the slices and maps
// it was built from do.
func TestExprImmutable(t *testing.T) {
	labels := []string{"reason"}
	sel := Select("e_total", "a", "b")
	e := SumWithout(Rate(sel, time.Minute), labels...)
	m := Ignoring(labels...)
	u := Unless(Metric("x"), Metric("y"), m)
	labels[0], sel.Labels["a"] = "changed", "changed"
	assert.Equal(t, `sum without (reason) (rate(e_total{a="b"}[1m]))`, e.String())
	assert.Equal(t, `x unless ignoring (reason) y`, u.String())
}

// TestExprCompare: expressions are comparable values; == is identity and never
// panics.
func TestExprCompare(t *testing.T) {
	a := SumWithout(Metric("x"), "reason")
	b := SumWithout(Metric("x"), "reason")
	assert.True(t, a == a)
	assert.False(t, a == b)
	assert.Equal(t, a.String(), b.String())
}
