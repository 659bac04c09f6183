package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver for migrate-explorer

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/treasury"
)

func (a *app) treasuryClient() (*treasury.Client, error) {
	rc, err := a.rpcClient(a.rpcURL(), "")
	if err != nil {
		return nil, &exitError{code: 3, err: fmt.Errorf("%v; check --rpc or TB_RPC_URL", err)}
	}
	return treasury.NewClientFromRPC(rc), nil
}

func (a *app) treasuryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "treasury", Short: "Treasury Stuck runbook, settlement audit, explorer migration"}
	cmd.AddCommand(a.treasuryDiagnoseCmd(), a.treasuryBalanceCmd(), a.treasuryListCmd(), a.treasuryShowCmd(),
		a.treasuryRollbackCmd(), a.treasuryAuditCmd(), a.treasuryMigrateCmd())
	return cmd
}

func (a *app) treasuryDiagnoseCmd() *cobra.Command {
	var (
		apply     bool
		bundle    string
		globs     []string
		slo       bool
		leaseHold string
	)
	cmd := &cobra.Command{
		Use:   "diagnose",
		Short: "Run the Treasury Stuck runbook: symptoms, diagnosis steps, resolution paths A–D, alerts",
		Long: `diagnose runs the Treasury Stuck runbook against the node and prints what fires, why,
and what to do. It changes nothing unless --apply is given, which executes Path A's
rollbacks (disbursements whose dependency was rolled back). --bundle PATH writes
Path D's incident bundle (a directory, or a .tar.gz).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.treasuryClient()
			if err != nil {
				return err
			}
			src, closeSrc, srcErr := a.metricsSource(ctx, a.metricsURLFor(a.rpcURL()))
			defer closeSrc()
			opts := treasury.Options{LogGlobs: globs, SLO: slo, ExpectedLeaseHolder: leaseHold}
			rb := treasury.NewRunbook(c, src, opts)
			r, err := rb.Diagnose(ctx)
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			if srcErr != nil {
				r.Warnf("no metrics source: %v", srcErr)
			}
			if apply {
				done, err := rb.Apply(ctx, r)
				fmt.Fprintf(a.stderr, "tbops: applied %d rollbacks\n", appliedRollbacks(done))
				if err != nil {
					done.Warnf("apply: %v", err)
				}
				r = done
			}
			if bundle != "" {
				b, err := treasury.WriteBundle(ctx, bundle, c, src, opts, &r)
				if err != nil {
					return &exitError{code: 3, err: err}
				}
				fmt.Fprintf(a.stderr, "tbops: incident bundle written to %s (%s)\n", b.Path, strings.Join(b.Files, ", "))
			}
			return a.printReport(r)
		},
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "execute Path A's rollbacks (otherwise they are only planned)")
	cmd.Flags().StringVar(&bundle, "bundle", "", "write Path D's incident bundle to this directory or .tar.gz")
	cmd.Flags().StringArrayVar(&globs, "log-glob", []string{treasury.DefaultLogGlob}, "node log files to search (repeatable)")
	cmd.Flags().BoolVar(&slo, "slo", false, "also evaluate the Treasury SLO table")
	cmd.Flags().StringVar(&leaseHold, "lease-holder", "", "the node that should hold the executor lease (flags a foreign lease)")
	return cmd
}

func (a *app) treasuryBalanceCmd() *cobra.Command {
	return &cobra.Command{
		Use: "balance", Short: "Treasury balance and executor snapshot (contract-cli gov treasury balance)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.treasuryClient()
			if err != nil {
				return err
			}
			b, err := c.Balance(cmd.Context())
			if err != nil {
				return rpcErr(err)
			}
			if a.output == "json" {
				return a.printJSON(b)
			}
			fmt.Fprintf(a.stdout, "balance: %s\n", b.Balance)
			if e := b.Executor; e != nil {
				now := time.Now()
				tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "executor.last_error\t%s\n", treasuryNull(e.LastError))
				fmt.Fprintf(tw, "executor.last_error_at\t%s\n", treasuryWhen(now, e.LastErrorAt))
				fmt.Fprintf(tw, "executor.last_success_at\t%s\n", treasuryWhen(now, e.LastSuccessAt))
				fmt.Fprintf(tw, "executor.last_tick_at\t%s\n", treasuryWhen(now, e.LastTickAt))
				fmt.Fprintf(tw, "executor.pending_matured\t%s\n", treasuryNull(e.PendingMatured))
				fmt.Fprintf(tw, "executor.staged_intents\t%s\n", treasuryNull(e.StagedIntents))
				fmt.Fprintf(tw, "executor.lease_holder\t%s\n", treasuryNull(e.LeaseHolder))
				fmt.Fprintf(tw, "executor.lease_expires_at\t%s\n", treasuryWhen(now, e.LeaseExpiresAt))
				_ = tw.Flush()
			} else {
				fmt.Fprintln(a.stdout, "executor: (none reported)")
			}
			return nil
		},
	}
}

// treasuryNull prints *p, "null" for nil: what the node sent.
func treasuryNull[T any](p *T) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// treasuryWhen prints a Unix time with how long ago it was; null when the node sent none.
func treasuryWhen(now time.Time, unix *int64) string {
	if unix == nil {
		return "null"
	}
	t := time.Unix(*unix, 0).UTC()
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		return fmt.Sprintf("%s (in %s)", t.Format(time.RFC3339), -d)
	}
	return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), d)
}

func (a *app) treasuryListCmd() *cobra.Command {
	var (
		status string
		limit  int
		cursor int64
		all    bool
	)
	cmd := &cobra.Command{
		Use: "list", Short: "List disbursements (contract-cli gov treasury list)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.treasuryClient()
			if err != nil {
				return err
			}
			o := treasury.ListOptions{Status: treasury.State(status), Limit: limit}
			if cmd.Flags().Changed("cursor") {
				o.Cursor = &cursor
			}
			var page treasury.Page
			if all {
				for d, err := range c.All(cmd.Context(), o) {
					if err != nil {
						if errors.Is(err, treasury.ErrRecord) {
							fmt.Fprintf(a.stderr, "tbops: skipped: %v\n", err)
							continue
						}
						return rpcErr(err)
					}
					page.Disbursements = append(page.Disbursements, d)
				}
				page.Total = int64(len(page.Disbursements))
			} else {
				page, err = c.Disbursements(cmd.Context(), o)
				if err != nil {
					if errors.Is(err, treasury.ErrInvalidArgument) {
						return &exitError{code: 3, err: fmt.Errorf("%w; see tbops treasury list --help", err)}
					}
					return rpcErr(err)
				}
			}
			if a.output == "json" {
				return a.printJSON(page)
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tAMOUNT\tCREATED\tUPDATED\tDEPS")
			for _, d := range page.Disbursements {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Status.State, d.Amount, d.Created().Format(time.RFC3339),
					d.Updated().Format(time.RFC3339), treasuryDeps(d.Proposal.Deps))
			}
			_ = tw.Flush()
			for _, inv := range page.Invalid {
				fmt.Fprintf(a.stderr, "tbops: record %d skipped: %s\n", inv.Index, inv.Err)
			}
			next := "end"
			if page.NextCursor != nil {
				next = fmt.Sprintf("--cursor %d", *page.NextCursor)
			}
			fmt.Fprintf(a.stdout, "%d shown of %d; next: %s\n", len(page.Disbursements), page.Total, next)
			return nil
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only this state: draft, voting, queued, timelocked, executed, finalized, rolled_back")
	cmd.Flags().IntVar(&limit, "limit", 0, "page size (default 50, max 500)")
	cmd.Flags().Int64Var(&cursor, "cursor", 0, "continue after this cursor (from the previous page)")
	cmd.Flags().BoolVar(&all, "all", false, "page through everything")
	return cmd
}

func treasuryDeps(deps []uint64) string {
	if len(deps) == 0 {
		return "-"
	}
	parts := make([]string, len(deps))
	for i, d := range deps {
		parts[i] = strconv.FormatUint(d, 10)
	}
	return strings.Join(parts, ",")
}

func (a *app) treasuryShowCmd() *cobra.Command {
	var id uint64
	cmd := &cobra.Command{
		Use: "show --id N", Short: "Show one disbursement and its dependencies' states", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("id") {
				return &exitError{code: 3, err: errors.New("show needs --id N")}
			}
			c, err := a.treasuryClient()
			if err != nil {
				return err
			}
			d, err := c.Disbursement(cmd.Context(), id)
			if err != nil {
				if errors.Is(err, treasury.ErrNotFound) {
					return &exitError{code: 3, err: fmt.Errorf("no disbursement %d; list them with tbops treasury list", id)}
				}
				return rpcErr(err)
			}
			if a.output == "json" {
				return a.printJSON(d) // the record itself, so the runbook's jq paths work
			}
			deps := map[string]string{}
			for _, dep := range d.Proposal.Deps {
				x, err := c.Disbursement(cmd.Context(), dep)
				switch {
				case err == nil:
					deps[strconv.FormatUint(dep, 10)] = string(x.Status.State)
				case errors.Is(err, treasury.ErrNotFound):
					deps[strconv.FormatUint(dep, 10)] = "missing"
				default:
					deps[strconv.FormatUint(dep, 10)] = "unknown: " + err.Error()
				}
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "id\t%d\n", d.ID)
			fmt.Fprintf(tw, "title\t%s\n", d.Proposal.Title)
			fmt.Fprintf(tw, "state\t%s\n", d.Status.State)
			if d.Status.Reason != "" {
				fmt.Fprintf(tw, "reason\t%s\n", d.Status.Reason)
			}
			if d.Status.TxHash != "" {
				fmt.Fprintf(tw, "tx_hash\t%s\n", d.Status.TxHash)
			}
			fmt.Fprintf(tw, "amount\t%s\n", d.Amount)
			fmt.Fprintf(tw, "destination\t%s\n", d.Destination)
			fmt.Fprintf(tw, "memo\t%s\n", d.Memo)
			fmt.Fprintf(tw, "scheduled_epoch\t%d\n", d.ScheduledEpoch)
			fmt.Fprintf(tw, "created_at\t%s\n", treasuryWhen(time.Now(), &d.CreatedAt))
			fmt.Fprintf(tw, "updated_at\t%s\n", treasuryWhen(time.Now(), &d.UpdatedAt))
			for _, dep := range d.Proposal.Deps {
				k := strconv.FormatUint(dep, 10)
				fmt.Fprintf(tw, "dependency %s\t%s\n", k, deps[k])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Uint64Var(&id, "id", 0, "disbursement id")
	return cmd
}

// rollbackPlan is what tbops treasury rollback prints.
type rollbackPlan struct {
	ID      uint64                   `json:"id"`
	State   treasury.State           `json:"state"`
	Amount  tbops.Amount             `json:"amount"`
	Reason  string                   `json:"reason"`
	Applied bool                     `json:"applied"`
	Result  *treasury.RollbackResult `json:"result,omitempty"`
}

func (a *app) treasuryRollbackCmd() *cobra.Command {
	var (
		id     uint64
		reason string
		apply  bool
	)
	cmd := &cobra.Command{
		Use: "rollback --id N --reason S [--apply]", Short: "Roll a disbursement back (prints the plan; --apply does it)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("id") || strings.TrimSpace(reason) == "" {
				return &exitError{code: 3, err: errors.New("rollback needs --id N and --reason S")}
			}
			c, err := a.treasuryClient()
			if err != nil {
				return err
			}
			d, err := c.Disbursement(cmd.Context(), id)
			if err != nil {
				if errors.Is(err, treasury.ErrNotFound) {
					return &exitError{code: 3, err: fmt.Errorf("no disbursement %d; nothing to roll back", id)}
				}
				return rpcErr(err)
			}
			if !d.Status.State.Rollbackable() {
				return &exitError{code: 3, err: fmt.Errorf("disbursement %d is %s: the node refuses to roll back executed, finalized or rolled_back disbursements", id, d.Status.State)}
			}
			plan := rollbackPlan{ID: id, State: d.Status.State, Amount: d.Amount, Reason: reason}
			if apply {
				res, err := c.Rollback(cmd.Context(), id, reason)
				if err != nil {
					return rpcErr(err)
				}
				plan.Applied, plan.Result = true, &res
			}
			if a.output == "json" {
				return a.printJSON(plan)
			}
			if !apply {
				fmt.Fprintf(a.stdout, "plan: roll back disbursement %d (%s, %s) with reason %q\nnothing changed; re-run with --apply to do it\n",
					id, d.Status.State, d.Amount, reason)
				return nil
			}
			fmt.Fprintf(a.stdout, "rolled back disbursement %d: %s\n", id, plan.Result.Message)
			return nil
		},
	}
	cmd.Flags().Uint64Var(&id, "id", 0, "disbursement id")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded with the rollback)")
	cmd.Flags().BoolVar(&apply, "apply", false, "do it (otherwise only print the plan)")
	return cmd
}

func (a *app) treasuryAuditCmd() *cobra.Command {
	var from, to int64
	cmd := &cobra.Command{
		Use:   "audit [--from-epoch N --to-epoch M]",
		Short: "Settlement audit: ledger conservation over the balance history (exit 0 verified, 2 failed)",
		Long: `audit checks initial + accruals − executed + refunds = final over the treasury's
balance history (env STARTING_EPOCH / ENDING_EPOCH when the flags are not given)
and investigates any discrepancy. Exit 0 when conservation is verified, 2 when not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var o treasury.AuditOptions
			pick := func(flag, env string, v int64) (*int64, error) {
				if cmd.Flags().Changed(flag) {
					return &v, nil
				}
				if s := a.getenv(env); s != "" {
					n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
					if err != nil || n < 0 {
						return nil, &exitError{code: 3, err: fmt.Errorf("%s=%q: want a non-negative epoch number", env, s)}
					}
					return &n, nil
				}
				return nil, nil
			}
			var err error
			if o.FromEpoch, err = pick("from-epoch", "STARTING_EPOCH", from); err != nil {
				return err
			}
			if o.ToEpoch, err = pick("to-epoch", "ENDING_EPOCH", to); err != nil {
				return err
			}
			c, err := a.treasuryClient()
			if err != nil {
				return err
			}
			res, err := treasury.Audit(cmd.Context(), c, o)
			if err != nil {
				return rpcErr(err)
			}
			if a.output == "json" {
				err = a.printJSON(res)
			} else {
				err = res.WriteText(a.stdout)
			}
			if err != nil {
				return err
			}
			if !res.OK {
				return exitCode(2)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&from, "from-epoch", 0, "first epoch (env STARTING_EPOCH)")
	cmd.Flags().Int64Var(&to, "to-epoch", 0, "last epoch (env ENDING_EPOCH)")
	return cmd
}

func (a *app) treasuryMigrateCmd() *cobra.Command {
	var busy time.Duration
	cmd := &cobra.Command{
		Use:   "migrate-explorer [DB]",
		Short: "Migrate the explorer's treasury_disbursements table (default explorer.db); stop explorer first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "explorer.db"
			if len(args) == 1 {
				path = args[0]
			}
			db, err := treasury.OpenExplorerDB(cmd.Context(), "sqlite", path)
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("%v; pass its path (e.g. /var/lib/explorer/explorer.db)", err)}
			}
			defer db.Close()
			res, err := treasury.MigrateExplorer(cmd.Context(), db, treasury.MigrateOptions{BusyTimeout: busy})
			if errors.Is(err, treasury.ErrDatabaseBusy) {
				return &exitError{code: 3, err: fmt.Errorf("%s: %w; stop explorer first, then re-run", path, err)}
			}
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("%s: %w", path, err)}
			}
			if a.output == "json" {
				return a.printJSON(res)
			}
			for _, s := range res.Steps {
				fmt.Fprintf(a.stdout, "%-28s %-8s %s\n", s.Name, s.Status, s.Detail)
			}
			fmt.Fprintf(a.stdout, "verified: %d rows, Σ amount %d before and after\n", res.RowsAfter, res.SumAfter)
			if res.Changed() {
				fmt.Fprintln(a.stdout, "next: restart explorer, then check /governance/treasury/disbursements and the treasury dashboards")
			} else {
				fmt.Fprintln(a.stdout, "already migrated: nothing changed")
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&busy, "busy-timeout", 200*time.Millisecond, "how long to wait for another process's lock before refusing")
	return cmd
}

// treasuryRunbookFor is the Treasury Stuck runbook for one of doctor's
// targets: the node's log files at the runbook's path are searched, as
// `treasury diagnose` does by default.
func (a *app) treasuryRunbookFor(t *target) tbops.Runbook {
	rc, err := a.rpcClient(t.rpcURL, "")
	if err != nil {
		return tbops.Func(treasury.RunbookID, func(context.Context) (tbops.Report, error) { return tbops.Report{}, err })
	}
	return treasury.NewRunbook(treasury.NewClientFromRPC(rc), t.src,
		treasury.Options{Now: t.now, SLO: t.slo, LogGlobs: []string{treasury.DefaultLogGlob}})
}

// treasuryRunbook is doctor's entry for the runbook (until doctor iterates
// tbops.Runbook values): it diagnoses, and with --apply applies Path A.
func (a *app) treasuryRunbook() *runbook {
	return &runbook{id: treasury.RunbookID, usesMetrics: true, diagnose: func(ctx context.Context, t *target) (tbops.Report, error) {
		rb := a.treasuryRunbookFor(t)
		r, err := rb.Diagnose(ctx)
		ap, ok := rb.(tbops.Applier)
		if err != nil || !t.apply || !ok {
			return r, err
		}
		done, err := ap.Apply(ctx, r)
		if err != nil {
			done.Warnf("apply: %v", err)
		}
		return done, nil
	}}
}

// appliedRollbacks counts the rollbacks an Apply carried out.
func appliedRollbacks(r tbops.Report) int {
	n := 0
	for _, p := range r.Paths {
		for _, act := range p.Actions {
			if act.Kind == "rollback" && !act.DryRun && strings.HasPrefix(act.Result, "rolled back") {
				n++
			}
		}
	}
	return n
}
