package treasury_test

import (
	"context"
	"fmt"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/treasury"
)

// Diagnose a node whose disbursements wait on a rolled-back dependency: Path A
// plans the rollbacks, and nothing changes until Apply.
func ExampleDiagnose() {
	n, err := nodetest.New(nodetest.WithScenarioName("treasury-dependency-rolled-back"))
	if err != nil {
		panic(err)
	}
	defer n.Close()
	c, err := treasury.NewClient(n.URL())
	if err != nil {
		panic(err)
	}
	r, err := treasury.Diagnose(context.Background(), c, nil, treasury.Options{LogGlobs: []string{"/nonexistent/*.log"}})
	if err != nil {
		panic(err)
	}
	for _, p := range r.Matched() {
		fmt.Printf("Path %s: %s\n", p.ID, p.Title)
		for _, a := range p.Actions {
			fmt.Println(" ", a.Command)
		}
	}
	// Output:
	// Path A: Dependency issue
	//   tbops treasury rollback --id 4541 --reason 'Dependency 4540 was rolled back'
	//   tbops treasury rollback --id 4542 --reason 'Dependency 4540 was rolled back'
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
