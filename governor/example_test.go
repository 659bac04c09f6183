package governor_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/governor"
	"github.com/theblock/tbops/nodetest"
)

// The runbook's auditing workflow as a tbops.Runbook, run with other runbooks
// by tbops.Diagnose: one simulated node whose gauges drifted from the sample
// the governor evaluated, with ten minutes of scraped history behind it.
func ExampleRunbook() {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	node, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("governor-gauge-drift"))
	if err != nil {
		panic(err)
	}
	defer node.Close()
	src, err := nodetest.NewSource(ctx, node, clk, 0)
	if err != nil {
		panic(err)
	}
	defer src.Close()
	if err := src.Advance(ctx, 10*time.Minute); err != nil {
		panic(err)
	}
	c, err := governor.NewClient(node.URL())
	if err != nil {
		panic(err)
	}
	rb := governor.NewRunbook(c, src, governor.Options{Now: clk.Now})
	for _, r := range tbops.Diagnose(ctx, clk.Now, rb) {
		fmt.Println(r.Runbook, r.Status)
		for _, s := range r.Firing() {
			fmt.Printf("  %s %s: %s\n", s.Status, s.ID, s.Summary)
		}
		for _, a := range r.Alerts {
			fmt.Printf("  alert %s: %s\n", a.Name, a.Status)
		}
		for _, p := range r.Matched() {
			fmt.Printf("  path %s: %s\n", p.ID, p.Title)
		}
	}
	// Output:
	// governor-audit warning
	//   warning gauge-drift: 5 economics gauges do not mirror the sample in governor.snapshot {"epoch":9998}
	//   alert GovernorEconomicsTelemetryMissing: ok
	//   path rollback: Rollback play (economics autopilot gate)
}

// Apply carries out the rollback play an audit planned: the exit intent is
// submitted once; the environment steps stay instructions for the governor's
// host.
func ExampleRunbook_Apply() {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	node, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("governor-hash-mismatch"))
	if err != nil {
		panic(err)
	}
	defer node.Close()
	c, err := governor.NewClient(node.URL())
	if err != nil {
		panic(err)
	}
	rb := governor.NewRunbook(c, nil, governor.Options{Now: clk.Now, Reason: "replayed another sample"})
	plan, err := rb.Diagnose(ctx)
	if err != nil {
		panic(err)
	}
	done, err := rb.Apply(ctx, plan)
	if err != nil {
		panic(err)
	}
	p, _ := done.Path("rollback")
	for _, a := range p.Actions {
		result := a.Result
		if i := strings.Index(result, " (state"); i > 0 {
			result = result[:i]
		}
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%-6s dry_run=%-5t %s", a.Kind, a.DryRun, result)))
	}
	fmt.Println("submit calls:", len(node.Calls("governor.submit_intent")))
	// Output:
	// config dry_run=true
	// config dry_run=true
	// submit dry_run=false exit intent economics-exit-10001 submitted
	// check  dry_run=false economics_autopilot is still true: exit intent economics-exit-10001 applies at epoch 10002; read governor.status again then
	// config dry_run=true
	// submit calls: 1
}

// Audit without a metrics source: the hash checks need only the node and its
// decision files.
func ExampleAudit() {
	clk := nodetest.NewFakeClock(time.Unix(1_780_000_000, 0))
	n, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("governor-hash-mismatch"))
	if err != nil {
		panic(err)
	}
	defer n.Close()
	c, err := governor.NewClient(n.URL())
	if err != nil {
		panic(err)
	}
	r, err := governor.Audit(context.Background(), c, nil, governor.Options{Dir: n.GovernorDecisionsDir(), Now: clk.Now})
	if err != nil {
		panic(err)
	}
	for _, s := range r.Firing() {
		fmt.Println(s.Status, s.ID)
	}
	// Output:
	// critical status-hash-mismatch
	// critical intent-hash-mismatch
	// critical file-hash-mismatch
}

// VerifyDir checks a decisions directory: each file's name, strict JSON, the
// snapshot_hash it stores and its .sig sidecar. Here one decision is signed,
// one was edited after its hash was stored, and one is misnamed.
func ExampleVerifyDir() {
	dir, err := os.MkdirTemp("", "decisions")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	write := func(name string, epoch uint64, sign bool, edit func(map[string]any)) {
		d := map[string]any{"action": "enter", "epoch": epoch, "gate": "economics", "intent_id": fmt.Sprintf("econ-%d", epoch),
			"metrics_raw": nil, "metrics_summary": map[string]any{"block_reward": 12}, "params_patch": map[string]any{}, "reason": "inside band"}
		h, err := governor.SnapshotHash(d)
		if err != nil {
			panic(err)
		}
		d[governor.KeySnapshotHash] = h
		if edit != nil {
			edit(d)
		}
		data, err := governor.Canonical(d)
		if err != nil {
			panic(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			panic(err)
		}
		if sign {
			sc, err := governor.SignDigest(key, h)
			if err != nil {
				panic(err)
			}
			sig, _ := governor.Canonical(sc)
			if err := os.WriteFile(filepath.Join(dir, name+governor.SigSuffix), sig, 0o644); err != nil {
				panic(err)
			}
		}
	}
	write(governor.FileName(1), 1, true, nil)
	write(governor.FileName(2), 2, false, func(d map[string]any) { d["metrics_summary"] = map[string]any{"block_reward": 13} })
	write("epoch-3.json", 3, false, nil)

	var results []governor.FileResult
	sum, err := governor.VerifyDir(context.Background(), dir, governor.VerifyOptions{}, func(r governor.FileResult) error {
		results = append(results, r)
		return nil
	})
	if err != nil {
		panic(err)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Name < results[j].Name })
	for _, r := range results {
		var kinds []string
		for _, p := range r.Problems {
			kinds = append(kinds, p.Kind)
		}
		fmt.Printf("%s failed=%t signed=%t %v\n", r.Name, r.Failed, r.SignatureOK, kinds)
	}
	fmt.Printf("%d files, %d ok, %d failed\n", sum.Files, sum.OK, sum.Failed)
	// Output:
	// epoch-00000000000000000001.json failed=false signed=true []
	// epoch-00000000000000000002.json failed=true signed=false [hash-mismatch signature-missing]
	// epoch-3.json failed=true signed=false [bad-name signature-missing]
	// 3 files, 1 ok, 2 failed
}

// SnapshotHash of PROTOCOL.md's test vector: the decision object without its
// snapshot_hash key, canonically encoded and hashed with BLAKE3-256. A stored
// snapshot_hash is left out of the hash, so storing it changes nothing.
func ExampleSnapshotHash() {
	d := map[string]any{"action": "enter", "epoch": 7, "gate": "operational", "intent_id": "op-1",
		"metrics_raw": nil, "metrics_summary": "ok", "params_patch": map[string]any{}, "reason": "tests"}
	h, err := governor.SnapshotHash(d)
	if err != nil {
		panic(err)
	}
	fmt.Println(h)
	d[governor.KeySnapshotHash] = h
	again, _ := governor.SnapshotHash(d)
	fmt.Println(again == h)
	// Output:
	// 4ea8dc130a2256e030f460c604a77f1a76a96a144a1d92ccd51038543cf997b0
	// true
}

// HashBytes hashes a file's bytes as they are parsed, number literals kept;
// Canonical writes the encoding the hash is taken over.
func ExampleHashBytes() {
	file := []byte(`{"action":"enter","epoch":7,"gate":"operational","intent_id":"op-1","metrics_raw":null,"metrics_summary":"ok","params_patch":{},"reason":"tests"}`)
	h, err := governor.HashBytes(file)
	if err != nil {
		panic(err)
	}
	fmt.Println(h)
	enc, _ := governor.Canonical(map[string]any{"b": 3.0, "a": "\u007f</>", "c": 1e21})
	fmt.Println(string(enc))
	// Output:
	// 4ea8dc130a2256e030f460c604a77f1a76a96a144a1d92ccd51038543cf997b0
	// {"a":"\u007F</>","b":3.0,"c":1000000000000000000000.0}
}
