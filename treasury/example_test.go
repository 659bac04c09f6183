package treasury_test

import (
	"context"
	"fmt"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/treasury"
)

// The runbook in a doctor's loop: a node whose disbursements wait on a
// rolled-back dependency, observed for 11 minutes so that every window is
// decided. Path A plans the rollbacks; nothing changes until Apply, which
// carries out each once and says that a next level of Path A cases appeared.
func ExampleNewRunbook() {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	node, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("treasury-dependency-rolled-back"))
	if err != nil {
		panic(err)
	}
	defer node.Close()
	src, err := nodetest.NewSource(ctx, node, clk, 15*time.Second)
	if err != nil {
		panic(err)
	}
	defer src.Close()
	_ = src.Advance(ctx, 11*time.Minute)
	c, err := treasury.NewClient(node.URL())
	if err != nil {
		panic(err)
	}
	rb := treasury.NewRunbook(c, src, treasury.Options{Now: clk.Now})

	for _, r := range tbops.Diagnose(ctx, clk.Now, rb) {
		fmt.Println(r.Runbook, r.Status)
		for _, s := range r.Firing() {
			fmt.Printf("  %s: %v\n", s.ID, *s.Value)
		}
		for _, p := range r.Matched() {
			fmt.Printf("  Path %s: %s\n", p.ID, p.Title)
			for _, a := range p.Actions {
				fmt.Println("   ", a.Command)
			}
		}
		done, err := rb.Apply(ctx, r)
		if err != nil {
			panic(err)
		}
		p, _ := done.Path(treasury.PathDependency)
		for _, a := range p.Actions {
			fmt.Printf("  %s %s: %s\n", a.Kind, a.Target, a.Result)
		}
		for _, w := range done.Warnings {
			fmt.Println("  warning:", w)
		}
	}
	// Output:
	// treasury-stuck warning
	//   stale-disbursements: 1
	//   Path A: Dependency issue
	//     tbops treasury rollback --id 4541 --reason 'Dependency 4540 was rolled back'
	//     tbops treasury rollback --id 4542 --reason 'Dependency 4540 was rolled back'
	//   rollback 4541: rolled back: disbursement 4541 rolled back: Dependency 4540 was rolled back
	//   rollback 4542: rolled back: disbursement 4542 rolled back: Dependency 4540 was rolled back
	//   warning: after these rollbacks Path A matches again (1 pending disbursements depend on rolled-back disbursements): the disbursements that depended on them are the next level; review a new diagnosis before applying it
}

// Audit the balance history: the runbook's conservation check.
func ExampleAudit() {
	n, err := nodetest.New()
	if err != nil {
		panic(err)
	}
	defer n.Close()
	c, _ := treasury.NewClient(n.URL())
	res, err := treasury.Audit(context.Background(), c, treasury.AuditOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.OK, res.Initial, res.Actual)
	// Output: true 10,000,000 BLOCK 9,500,000 BLOCK
}
