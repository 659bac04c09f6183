package promq_test

import (
	"context"
	"fmt"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// A rule is defined once: its PromQL is what `tbops rules` prints, and EvalRule
// evaluates the same expression. With one scrape the 6-minute `for` is not
// covered, so the rule is unknown, never a page from a guess; after seven
// minutes of scrapes it fires.
func ExampleEvalRule() {
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	sc := nodetest.Scenario{Name: "backlog", Metrics: []nodetest.Metric{
		nodetest.Gauge("treasury_disbursement_backlog", nil, 150),
	}}
	node, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenario(sc))
	if err != nil {
		panic(err)
	}
	defer node.Close()
	src := promq.NewScrape([]string{node.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	defer src.Close()
	ctx := context.Background()

	rule := promq.Rule{
		Alert:    "TreasuryBacklogCritical",
		Expr:     promq.GTc(promq.Metric("treasury_disbursement_backlog"), 100),
		For:      6 * time.Minute,
		Severity: tbops.StatusCritical,
		Summary:  "Treasury backlog accumulating: over 100 disbursements for 3 epochs",
	}
	fmt.Println(rule.PromQL())

	_ = src.Scrape(ctx)
	st, err := promq.EvalRule(ctx, src, rule, clk.Now(), promq.WithHistoryHint("scrape for longer"))
	if err != nil {
		panic(err)
	}
	fmt.Println(st.Status(), *st.Worst.Value, st.Warnings)

	for range 7 {
		clk.Advance(time.Minute)
		_ = src.Scrape(ctx)
	}
	st, _ = promq.EvalRule(ctx, src, rule, clk.Now())
	fmt.Println(st.Status(), "observed", st.Observed, "of", st.Needed)
	// Output:
	// treasury_disbursement_backlog > 100
	// unknown 150 [treasury_disbursement_backlog: only 0s of the 6m window observed: scrape for longer]
	// critical observed 6m0s of 6m0s
}

// A windowed condition from one second of scrapes: a counter that moved is
// known to have increased over the 10-minute window (its observed rise is a
// lower bound), so "no increase" is known false; a flat one is unknown until
// the window is covered.
func ExampleEval() {
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	sc := nodetest.Scenario{Name: "counters", Metrics: []nodetest.Metric{
		nodetest.Counter("settled_total", nil, 10, 2),
		nodetest.Counter("stuck_total", nil, 10, 0),
	}}
	node, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenario(sc))
	if err != nil {
		panic(err)
	}
	defer node.Close()
	src := promq.NewScrape([]string{node.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	defer src.Close()
	ctx := context.Background()
	_ = src.Scrape(ctx)
	clk.Advance(time.Second)
	_ = src.Scrape(ctx)

	for _, name := range []string{"settled_total", "stuck_total"} {
		e := promq.EQc(promq.Increase(promq.Select(name), 10*time.Minute), 0)
		ev, err := promq.Eval(ctx, src, e, clk.Now(), promq.WithHistoryHint(""))
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: known=%v returned=%v %q\n", ev.Expr, ev.Known, ev.Returned, ev.Warnings)
	}
	// Output:
	// increase(settled_total[10m]) == 0: known=true returned=false []
	// increase(stuck_total[10m]) == 0: known=false returned=false ["stuck_total: only 1s of the 10m window observed"]
}
