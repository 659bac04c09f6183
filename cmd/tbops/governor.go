package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/governor"
)

// defaultDecisionsDir is where verify and audit look without --dir: the
// runbook's governor/decisions, relative to the node's data directory (run
// tbops from it, or pass --dir).
const defaultDecisionsDir = governor.DecisionsSubdir

func (a *app) governorClient() (*governor.Client, error) {
	rc, err := a.rpcClient(a.rpcURL(), "")
	if err != nil {
		return nil, &exitError{code: 3, err: fmt.Errorf("%v; pass --rpc URL or set TB_RPC_URL", err)}
	}
	return governor.NewClientFromRPC(rc), nil
}

// rpcFail turns a failed node call into exit 3 with one line.
func rpcFail(err error) error { return &exitError{code: 3, err: err} }

func (a *app) governorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "governor",
		Short: "Economics autopilot gate: status, intents, snapshot hashes, audit, rollback",
		Long: `governor covers the runbook's "Economics Autopilot Gate" and "Ad Market Quality +
Cost Signals" sections: the governor's status and gates, its intents and their
snapshot hashes, the decision files in <data_dir>/governor/decisions (canonical
JSON, BLAKE3 snapshot hashes, Ed25519 .sig sidecars), the audit that ties hashes
and Prometheus gauges to those files, and the rollback play.`,
	}
	cmd.AddCommand(a.governorStatusCmd(), a.governorIntentsCmd(), a.governorVerifyCmd(), a.governorAuditCmd(),
		a.governorHashCmd(), a.governorRollbackCmd())
	return cmd
}

func (a *app) governorStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Governor mode, telemetry gauges (ppm), last_economics_snapshot_hash, gates and pending intents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.governorClient()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return rpcFail(err)
			}
			if a.output == "json" {
				return a.printJSON(st)
			}
			writeGovernorStatus(a.stdout, st)
			if m, err := governor.ModeFromEnv(a.getenv); err != nil {
				fmt.Fprintf(a.stderr, "tbops: warning: %v\n", err)
			} else if len(m.Set) > 0 {
				fmt.Fprintf(a.stdout, "\nthis host's environment: %s (%s)\n", m, strings.Join(m.Set, ", "))
			}
			return nil
		},
	}
}

// writeGovernorStatus prints the status the way tb-cli governor status does,
// with the "telemetry gauges (ppm)" section.
func writeGovernorStatus(w io.Writer, st governor.Status) {
	mode := governor.Mode{Enabled: st.Enabled, ShadowOnly: st.ShadowOnly}
	fmt.Fprintf(w, "governor: %s (enabled=%t shadow_only=%t)\n", mode, st.Enabled, st.ShadowOnly)
	fmt.Fprintf(w, "economics_autopilot=%t\n", st.EconomicsAutopilot)
	fmt.Fprintf(w, "epoch: %d (window %ds)\n", st.Epoch, st.WindowSecs)
	h := st.LastEconomicsSnapshotHash
	if h == "" {
		h = "null"
	}
	fmt.Fprintf(w, "last_economics_snapshot_hash: %s\n", h)
	if st.EconomicsSample != nil {
		s := st.EconomicsSample
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		fmt.Fprintf(w, "economics sample: tx count %s, tx volume %s BLOCK, treasury inflow %s BLOCK, block reward %s BLOCK\n",
			f(s.EpochTxCount), f(s.EpochTxVolume), f(s.EpochTreasuryInflow), f(s.BlockReward))
	}
	fmt.Fprintln(w, "\ntelemetry gauges (ppm):")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  MARKET\tUTILIZATION\tPROVIDER_MARGIN")
	tg := st.TelemetryGaugesPPM
	for _, m := range tg.Markets() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", m, ppmCell(tg.Utilization, m), ppmCell(tg.ProviderMargin, m))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\ngates:")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  GATE\tSTATE\tENTER\tEXIT\tREQUIRED\tPROGRESS\tLAST_REASON")
	for _, g := range st.Gates {
		dir, s, req := g.Progress()
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%s %d/%d\t%s\n", g.Name, g.State, g.EnterStreak, g.ExitStreak, g.StreakRequired, dir, s, req, g.LastReason)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\npending intents:")
	if len(st.Pending) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	writeIntents(w, st.Pending, "  ")
}

func ppmCell(m map[string]int64, k string) string {
	v, ok := m[k]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%d (%s)", v, tbops.PPM(v))
}

func writeIntents(w io.Writer, ins []governor.Intent, indent string) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%sID\tGATE\tACTION\tEPOCH\tAPPLY\tSTATE\tSNAPSHOT_HASH\tREASON\n", indent)
	for _, in := range ins {
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", indent, in.ID, in.Gate, in.Action, in.Epoch, in.EpochApply, in.State, in.SnapshotHash, in.Reason)
	}
	_ = tw.Flush()
}

func (a *app) governorIntentsCmd() *cobra.Command {
	var gate string
	cmd := &cobra.Command{
		Use:   "intents",
		Short: "Intents with their snapshot_hash (governor.intents; governor.decisions on the reference node)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.governorClient()
			if err != nil {
				return err
			}
			ins, err := c.Intents(cmd.Context(), gate)
			if err != nil {
				return rpcFail(err)
			}
			if a.output == "json" {
				if ins == nil {
					ins = []governor.Intent{}
				}
				return a.printJSON(ins)
			}
			if len(ins) == 0 {
				fmt.Fprintln(a.stdout, "no intents")
				return nil
			}
			writeIntents(a.stdout, ins, "")
			return nil
		},
	}
	cmd.Flags().StringVar(&gate, "gate", "", "only this gate (economics, ad_contextual, ad_presence, …)")
	return cmd
}

// verifyFlags are the file-check flags verify and audit share.
type verifyFlags struct {
	dir         string
	requireSigs bool
	trusted     []string
	concurrency int
}

func (f *verifyFlags) add(cmd *cobra.Command, dirDefault, dirHelp string) {
	cmd.Flags().StringVar(&f.dir, "dir", dirDefault, dirHelp)
	cmd.Flags().BoolVar(&f.requireSigs, "require-signatures", false, "a decision file without a .sig sidecar fails (default: reported, not failed)")
	cmd.Flags().StringArrayVar(&f.trusted, "trusted-key", nil, "hex Ed25519 public key a sidecar must be signed by (repeatable; default: any key)")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 0, "files hashed at once (default: number of CPUs)")
}

func (f *verifyFlags) options() (governor.VerifyOptions, error) {
	o := governor.VerifyOptions{RequireSignatures: f.requireSigs, Concurrency: f.concurrency}
	for _, k := range f.trusted {
		b, err := hex.DecodeString(k)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return o, &exitError{code: 3, err: fmt.Errorf("--trusted-key %q: want %d bytes of hex", k, ed25519.PublicKeySize)}
		}
		o.TrustedKeys = append(o.TrustedKeys, ed25519.PublicKey(b))
	}
	return o, nil
}

// verifyOutput is what verify -o json prints.
type verifyOutput struct {
	Dir     string                 `json:"dir"`
	Summary governor.VerifySummary `json:"summary"`
	Files   []governor.FileResult  `json:"files"`
}

func (a *app) governorVerifyCmd() *cobra.Command {
	var f verifyFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Hash every decision file and check names, strict JSON, stored hashes and .sig sidecars",
		Long: `verify reads every entry of the decisions directory (streamed; bounded concurrency),
parses each epoch-{E}.json strictly, computes its BLAKE3 snapshot hash, compares a
stored snapshot_hash with it, and verifies the .sig sidecar (Ed25519 over the 32
digest bytes; payload_hash_hex must match). A missing sidecar is reported but
fails only with --require-signatures.
Exit codes: 0 all files ok, 2 some file failed (each is named), 3 the directory
could not be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options()
			if err != nil {
				return err
			}
			var files []governor.FileResult
			sum, err := governor.VerifyDir(cmd.Context(), f.dir, opts, func(r governor.FileResult) error {
				files = append(files, r)
				if len(files)%1000 == 0 {
					a.progress("verified %d files", len(files))
				}
				return nil
			})
			a.progressDone()
			if err != nil {
				hint := ""
				if errors.Is(err, os.ErrNotExist) {
					hint = "; pass --dir <data_dir>/governor/decisions"
				}
				return &exitError{code: 3, err: fmt.Errorf("%v%s", err, hint)}
			}
			sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
			if a.output == "json" {
				if files == nil {
					files = []governor.FileResult{}
				}
				if err := a.printJSON(verifyOutput{Dir: f.dir, Summary: sum, Files: files}); err != nil {
					return err
				}
			} else {
				for _, r := range files {
					switch {
					case r.Failed:
						fmt.Fprintf(a.stdout, "FAIL  %s\n", r.Err())
					case quiet:
					default:
						sig := "signed"
						if !r.Signed {
							sig = "unsigned"
						}
						fmt.Fprintf(a.stdout, "ok    %s  %s  %s  %s\n", r.Name, r.Hash, r.Gate, sig)
					}
				}
				fmt.Fprintf(a.stdout, "%s: %d files, %d ok, %d failed, %d signed, %d unsigned\n", f.dir, sum.Files, sum.OK, sum.Failed, sum.Signed, sum.Unsigned)
			}
			if sum.Failed > 0 {
				return exitCode(2)
			}
			return nil
		},
	}
	f.add(cmd, defaultDecisionsDir, "decisions directory (<data_dir>/governor/decisions)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only failed files and the summary")
	return cmd
}

func (a *app) governorAuditCmd() *cobra.Command {
	var f verifyFlags
	var apply bool
	var reason string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The runbook's auditing workflow: status and intent hashes, stored hashes and gauges against the decisions",
		Long: `audit compares governor.status's last_economics_snapshot_hash, each intent's
snapshot_hash and any snapshot_hash stored in a decision with the decisions
themselves, each economics_* gauge with the sample field it mirrors, and the ad
tiers' streak gauges with the ad_contextual/ad_presence gates. With --dir the
decisions are the files (also checked as verify does); without it they are the
node's governor.snapshot answers. Every mismatch shows both values and where each
came from; a comparison the evidence cannot decide yet is unknown, with a warning
saying what would decide it. With --apply, when the rollback play matched, the
exit intent is submitted (once, never retried, not when one is already pending)
and the gate's state re-read; the environment steps stay instructions.
Exit codes: 0 ok, 1 warning (gauge drift, bad files), 2 critical (hash mismatch,
bad signature), 3 unknown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options()
			if err != nil {
				return err
			}
			c, err := a.governorClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			src, closeSrc, srcErr := a.metricsSource(ctx, a.metricsURLFor(a.rpcURL()))
			if srcErr != nil {
				fmt.Fprintf(a.stderr, "tbops: metrics unavailable: %v\n", srcErr)
			} else {
				defer closeSrc()
			}
			rb := governor.NewRunbook(c, src, governor.Options{Dir: f.dir, Verify: opts, Getenv: a.getenv, Reason: reason})
			r, err := rb.Diagnose(ctx)
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			if apply {
				if p, _ := r.Path("rollback"); !p.Matched {
					fmt.Fprintln(a.stderr, "tbops: --apply: the rollback play did not match; nothing was submitted")
				} else if r, err = rb.Apply(ctx, r); err != nil {
					r.Warnf("apply: %v (nothing was retried; run tbops governor status before trying again)", err)
				}
			}
			if srcErr != nil {
				r.Warnf("no metrics source: %v", srcErr)
			}
			return a.printReport(r)
		},
	}
	f.add(cmd, "", "decisions directory (<data_dir>/governor/decisions); without it the node's governor.snapshot answers are compared")
	cmd.Flags().BoolVar(&apply, "apply", false, "when the rollback play matched, submit the exit intent (otherwise it is only planned)")
	cmd.Flags().StringVar(&reason, "reason", governor.DefaultRollbackReason, "reason recorded with the exit intent (with --apply)")
	return cmd
}

func (a *app) governorHashCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hash FILE",
		Short: "Print a decision file's snapshot hash (lower-case hex BLAKE3-256 of its canonical JSON; - reads stdin)",
		Long: `hash parses FILE strictly (duplicate keys, trailing data and invalid UTF-8 are
errors), drops its snapshot_hash and attestation keys, encodes it canonically
(PROTOCOL.md section 6) and prints the BLAKE3-256 hash in lower-case hex.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			var data []byte
			var err error
			if name == "-" {
				data, err = io.ReadAll(io.LimitReader(a.stdin, governor.MaxFileBytes+1))
				name = "stdin"
			} else {
				data, err = os.ReadFile(name)
			}
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			if len(data) > governor.MaxFileBytes {
				return &exitError{code: 3, err: fmt.Errorf("%s: larger than %d bytes", name, governor.MaxFileBytes)}
			}
			h, err := governor.HashBytes(data)
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("%s: %w", name, err)}
			}
			if a.output == "json" {
				return a.printJSON(map[string]string{"file": name, "snapshot_hash": h})
			}
			fmt.Fprintln(a.stdout, h)
			return nil
		},
	}
}

func (a *app) governorRollbackCmd() *cobra.Command {
	var gate, reason string
	var apply bool
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "The rollback play with current values; --apply submits the exit intent (governor.submit_intent)",
		Long: `rollback prints the runbook's rollback play for a gate with the node's current
values: (1) pause the governor (TB_GOVERNOR_ENABLED=0), (2) back to shadow
(TB_GOVERNOR_SHADOW_ONLY=1), (3) submit the exit intent, (3b) confirm
economics_autopilot=false, (4) re-enable from the known-good sample.
Only step 3 calls the node, and only with --apply (sent once, never retried);
the environment steps are done on the governor's host.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.governorClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := c.Status(ctx)
			if err != nil {
				return rpcFail(err)
			}
			in := governor.RollbackInput{Status: st, Gate: gate, Reason: reason}
			if m, err := governor.ModeFromEnv(a.getenv); err != nil {
				fmt.Fprintf(a.stderr, "tbops: warning: %v\n", err)
			} else {
				in.Env = &m
			}
			if g, ok := st.Gate(gate); gate != "" && !ok && len(st.Gates) > 0 {
				_ = g
				return &exitError{code: 3, err: fmt.Errorf("--gate %q: the node runs no such gate (gates: %s)", gate, gateNames(st))}
			}
			plan := governor.PlanRollback(in)
			var applyErr error
			if apply {
				plan, applyErr = governor.ExecuteRollback(ctx, c, plan)
			}
			if a.output == "json" {
				if err := a.printJSON(plan); err != nil {
					return err
				}
			} else {
				writeRollback(a.stdout, plan, apply)
			}
			if applyErr != nil {
				return rpcFail(fmt.Errorf("submitting the exit intent: %w (nothing was retried; check governor status before trying again)", applyErr))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&gate, "gate", governor.GateEconomics, "gate to exit")
	cmd.Flags().StringVar(&reason, "reason", governor.DefaultRollbackReason, "reason recorded with the exit intent")
	cmd.Flags().BoolVar(&apply, "apply", false, "submit the exit intent (otherwise only the plan is printed)")
	return cmd
}

func gateNames(st governor.Status) string {
	var out []string
	for _, g := range st.Gates {
		out = append(out, g.Name)
	}
	return strings.Join(out, ", ")
}

func writeRollback(w io.Writer, p governor.RollbackPlan, applied bool) {
	mode := "plan (nothing changed; --apply submits step 3)"
	if applied {
		mode = "applied step 3"
	}
	fmt.Fprintf(w, "rollback play for gate %s: %s\nreason: %s\n", p.Gate, mode, p.Reason)
	for _, s := range p.Steps {
		mark := "[plan]"
		switch {
		case s.Done:
			mark = "[done]"
		case !s.Needed:
			mark = "[skip]"
		}
		fmt.Fprintf(w, "\n%s step %s: %s\n  now: %s\n  do:  %s\n", mark, s.Runbook, s.Title, s.Current, s.Command)
		if s.Result != "" {
			fmt.Fprintf(w, "  result: %s\n", s.Result)
		}
	}
}

// governorRunbookFor is the governor audit of one doctor target. Doctor has no
// decisions directory for a remote node, so it audits against the node's
// governor.snapshot answers (also for the simulated node); `tbops governor
// audit --dir` checks the files. The environment is read for the mode finding.
func (a *app) governorRunbookFor(t *target) tbops.Runbook {
	rc, err := a.rpcClient(t.rpcURL, "")
	if err != nil {
		return tbops.Func(governor.RunbookID, func(context.Context) (tbops.Report, error) { return tbops.Report{}, err })
	}
	return governor.NewRunbook(governor.NewClientFromRPC(rc), t.src, governor.Options{Now: t.now, Getenv: a.getenv})
}

// governorRunbook is doctor's entry for governor-audit (until doctor lists
// tbops.Runbooks built with governorRunbookFor).
func (a *app) governorRunbook() *runbook {
	return &runbook{id: governor.RunbookID, usesMetrics: true, diagnose: func(ctx context.Context, t *target) (tbops.Report, error) {
		return a.governorRunbookFor(t).Diagnose(ctx)
	}}
}
