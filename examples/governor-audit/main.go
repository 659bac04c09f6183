// Command governor-audit writes governor decision files canonically, proves
// that a hand-edited one is caught (its snapshot hash no longer matches), runs
// the runbook's auditing workflow (governor.NewRunbook) against a simulated
// node whose newest economics decision was edited on disk, and carries out the
// rollback play the audit planned (Runbook.Apply: the exit intent, sent once).
//
//	go run ./examples/governor-audit
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/theblock/tbops/governor"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "governor-audit:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "governor-decisions")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// 1. Write three decisions the way a governor does: hash the object
	// (BLAKE3 of its canonical JSON), store the hash inside, write canonically.
	for epoch := uint64(1); epoch <= 3; epoch++ {
		d := map[string]any{
			"epoch": epoch, "gate": "economics", "action": "enter",
			"intent_id": fmt.Sprintf("econ-%d", epoch), "reason": "economics inside band",
			"metrics_summary": map[string]any{"block_reward": 12, "epoch_tx_count": 48000 + epoch},
			"metrics_raw":     nil, "params_patch": map[string]any{"block_reward_per_block": 12},
		}
		h, err := governor.SnapshotHash(d) // snapshot_hash itself is left out of the hash
		if err != nil {
			return err
		}
		d[governor.KeySnapshotHash] = h
		data, err := governor.Canonical(d)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, governor.FileName(epoch)), data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s  snapshot_hash %s…\n", governor.FileName(epoch), h[:16])
	}

	// Someone "fixes" epoch 2's block reward by hand, keeping the stored hash.
	if err := edit(filepath.Join(dir, governor.FileName(2)), `"block_reward":12`, `"block_reward":13`); err != nil {
		return err
	}
	sum, err := governor.VerifyDir(ctx, dir, governor.VerifyOptions{}, func(r governor.FileResult) error {
		for _, p := range r.Problems {
			if p.Kind == governor.ProblemHashMismatch {
				fmt.Fprintf(w, "TAMPERED %s\n  stored   %s\n  computed %s\n", r.Name, r.StoredHash, r.Hash)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "verify: files=%d ok=%d failed=%d (unsigned=%d: no .sig sidecars here)\n", sum.Files, sum.OK, sum.Failed, sum.Unsigned)

	// 2. The same edit on a node: the sim writes signed decision files into
	// its data dir; edit the newest economics decision and audit.
	node, err := nodetest.New()
	if err != nil {
		return err
	}
	defer node.Close()
	decisions := node.GovernorDecisionsDir()
	if err := edit(filepath.Join(decisions, governor.FileName(9998)), `"block_reward":12`, `"block_reward":13`); err != nil {
		return err
	}
	// One scrape is enough for the gauge-vs-file checks (instant values).
	src := promq.NewScrape([]string{node.MetricsURL()})
	defer src.Close()
	if err := src.Scrape(ctx); err != nil {
		return err
	}
	c, err := governor.NewClient(node.URL())
	if err != nil {
		return err
	}
	rb := governor.NewRunbook(c, src, governor.Options{Dir: decisions, Reason: "decision file edited by hand"})
	r, err := rb.Diagnose(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "audit status: %s\n", r.Status)
	for _, s := range r.Firing() {
		// Every mismatch's detail holds both sides and where each came from;
		// its JSON is what `tbops governor audit -o json` prints as "detail".
		v, err := json.Marshal(s.Detail)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "firing: %s (%s)\n  %s\n", s.ID, s.Status, strings.ReplaceAll(string(v), decisions+string(filepath.Separator), ""))
	}

	// 3. The rollback play the audit matched: Apply submits the exit intent
	// (once, never again while it is pending); the environment steps are
	// instructions for the governor's host.
	done, err := rb.Apply(ctx, r)
	if err != nil {
		return err
	}
	p, _ := done.Path("rollback")
	for _, a := range p.Actions {
		state := "todo on the governor's host"
		if !a.DryRun {
			state = "done: " + a.Result
		}
		fmt.Fprintf(w, "rollback %s: %s\n", a.Kind, state)
	}
	return nil
}

// edit replaces old with new in a file, failing if old is not there.
func edit(path, old, new string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Contains(data, []byte(old)) {
		return fmt.Errorf("%s: %q not found", path, old)
	}
	return os.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644)
}
