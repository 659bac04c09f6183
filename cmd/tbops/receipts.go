package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/receipts"
)

func (a *app) receiptsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "receipts", Short: "Receipts Flatlining runbook: diagnose, per-market stats, re-validation"}
	cmd.AddCommand(a.receiptsDiagnoseCmd(), a.receiptsStatsCmd(), a.receiptsValidateCmd())
	return cmd
}

// receiptsClient is the receipts client for url with the global flags.
func (a *app) receiptsClient(url string) (*receipts.Client, error) {
	rc, err := a.rpcClient(url, "")
	if err != nil {
		return nil, &exitError{code: 3, err: fmt.Errorf("%v; pass --rpc URL", err)}
	}
	return receipts.NewClientFromRPC(rc), nil
}

func (a *app) receiptsDiagnoseCmd() *cobra.Command {
	var (
		slo, apply bool
		explorer   string
	)
	cmd := &cobra.Command{Use: "diagnose", Short: "Run the Receipts Flatlining runbook against a node",
		Long: `diagnose runs the Receipts Flatlining runbook: emission per market (receipts.stats
against the current block, in blocks), validation errors and min-payment
rejections, block progression and consensus, and the explorer when --explorer is
given (a URL that answers JSON {"latest_receipt_height": N}). Windowed checks
(validation success over 5m, the alert rules) are decided only on metrics that
cover their window: with the node's /metrics scraped for a second they are
unknown, so pass --prom URL (or run tbops serve) to decide them.
It only reads, unless --apply: then, if validation errors are known to break the
SLO (path B), it resets the node's validation state (receipts.reset_validation_state,
sent once) and re-validates the last 100 blocks. Host-side actions (restarting
receipt-emitter, systemctl) are always printed as plans.
Exit codes: 0 ok, 1 warning, 2 critical, 3 unknown or error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t := &target{rpcURL: a.rpcURL(), metricsURL: a.metricsURLFor(a.rpcURL()), now: time.Now, slo: slo, apply: apply, explorer: explorer}
			src, closeSrc, err := a.metricsSource(ctx, t.metricsURL)
			if err != nil {
				fmt.Fprintf(a.stderr, "tbops: metrics unavailable: %v\n", err)
			} else {
				t.src = src
				defer closeSrc()
			}
			return a.receiptsReport(ctx, t, err)
		}}
	cmd.Flags().BoolVar(&slo, "slo", false, "also evaluate the Receipts SLO table")
	cmd.Flags().BoolVar(&apply, "apply", false, "carry out path B: reset the validation state and re-validate the last 100 blocks")
	cmd.Flags().StringVar(&explorer, "explorer", "", `explorer URL answering {"latest_receipt_height": N} (default: explorer not checked)`)
	return cmd
}

// receiptsReport runs the runbook on t (and Apply with t.apply), prints the
// report and returns what the exit code should be. srcErr says why t has no
// metrics source. An Apply failure is printed with the report (its actions
// say what happened) and exits 3.
func (a *app) receiptsReport(ctx context.Context, t *target, srcErr error) error {
	rb, err := a.receiptsRunbookOf(t)
	if err != nil {
		return err
	}
	r, err := rb.Diagnose(ctx)
	if err != nil {
		return rpcErr(err)
	}
	if srcErr != nil {
		r.Warnf("no metrics source: %v", srcErr)
	}
	var applyErr error
	if t.apply {
		r, applyErr = rb.Apply(ctx, r)
	}
	perr := a.printReport(r)
	if applyErr != nil {
		return &exitError{code: 3, err: fmt.Errorf("--apply: %v", applyErr)}
	}
	return perr
}

// receiptsRunbookOf binds the receipts runbook to one target (t.explorer ""
// leaves the explorer unchecked: unknown).
func (a *app) receiptsRunbookOf(t *target) (*receipts.Runbook, error) {
	c, err := a.receiptsClient(t.rpcURL)
	if err != nil {
		return nil, err
	}
	return receipts.NewRunbook(c, t.src, receipts.Options{Now: t.now, SLO: t.slo, ExplorerURL: t.explorer}), nil
}

// receiptsRunbookFor is the receipts runbook doctor and serve run against t
// (they never apply): doctor.go's list of runbooks can call it once it is a
// []tbops.Runbook. A target whose client cannot be built yields a runbook
// whose Diagnose returns that error.
func (a *app) receiptsRunbookFor(t *target) tbops.Runbook {
	rb, err := a.receiptsRunbookOf(t)
	if err != nil {
		return tbops.Func(receipts.RunbookID, func(context.Context) (tbops.Report, error) { return tbops.Report{}, err })
	}
	return rb
}

// receiptsRunbook is the receipts-flatlining diagnosis doctor runs today.
func (a *app) receiptsRunbook() *runbook {
	return &runbook{id: receipts.RunbookID, usesMetrics: true, diagnose: func(ctx context.Context, t *target) (tbops.Report, error) {
		return a.receiptsRunbookFor(t).Diagnose(ctx)
	}}
}

func (a *app) receiptsStatsCmd() *cobra.Command {
	var market string
	cmd := &cobra.Command{Use: "stats", Short: "Per-market receipt stats (receipts.stats); --market all for the four",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var markets []receipts.Market
			switch market {
			case "":
				return &exitError{code: 3, err: errors.New("--market is required: storage, compute, energy, ad or all")}
			case "all":
				markets = receipts.Markets()
			default:
				m, err := receipts.ParseMarket(market)
				if err != nil {
					return &exitError{code: 3, err: fmt.Errorf("--market: %v", err)}
				}
				markets = []receipts.Market{m}
			}
			c, err := a.receiptsClient(a.rpcURL())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var out []receipts.Stats
			for _, m := range markets {
				s, err := c.Stats(ctx, m)
				if err != nil {
					return rpcErr(err)
				}
				out = append(out, s)
			}
			if a.output == "json" {
				if len(out) == 1 {
					return a.printJSON(out[0])
				}
				return a.printJSON(out)
			}
			// The current height says how long ago each market last emitted.
			st, stErr := c.NodeStatus(ctx)
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MARKET\tEMITTED\tLAST_HEIGHT\tBLOCKS_AGO\tPENDING\tSCHEMA\tDUPLICATE\tSIGNATURE\tMIN_PAYMENT")
			for _, s := range out {
				ago := "-"
				if stErr == nil {
					ago = fmt.Sprint(st.CurrentBlockHeight - s.LastEmittedHeight)
				}
				ve := s.ValidationErrors
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Market, s.EmittedTotal, s.LastEmittedHeight, ago, dashIfNil(s.Pending),
					dashIfNil(ve.SchemaMismatch), dashIfNil(ve.DuplicateDetection), dashIfNil(ve.SignatureInvalid), dashIfNil(s.MinPaymentRejectedTotal))
			}
			return tw.Flush()
		}}
	cmd.Flags().StringVar(&market, "market", "", "storage, compute, energy, ad, or all")
	return cmd
}

func (a *app) receiptsValidateCmd() *cobra.Command {
	var from, to, last int64
	cmd := &cobra.Command{Use: "validate", Short: "Re-validate stored receipts over a block range (receipts.validate)",
		Long: `validate asks the node to re-validate the receipts of blocks --from-block..--to-block
(default: up to the current block), or of the last --last blocks, and lists the
invalid ones. Exit codes: 0 none invalid, 1 some invalid, 3 error.`,
		Example: `  tbops receipts validate --from-block 1199930
  tbops receipts validate --last 100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fromSet, lastSet := cmd.Flags().Changed("from-block"), cmd.Flags().Changed("last")
			switch {
			case fromSet == lastSet:
				return &exitError{code: 3, err: errors.New("give exactly one of --from-block N or --last N")}
			case fromSet && from < 0:
				return &exitError{code: 3, err: fmt.Errorf("--from-block %d: want a block height (0 or more)", from)}
			case lastSet && last <= 0:
				return &exitError{code: 3, err: fmt.Errorf("--last %d: want a positive number of blocks", last)}
			case cmd.Flags().Changed("to-block") && (to <= 0 || (fromSet && to < from)):
				return &exitError{code: 3, err: fmt.Errorf("--to-block %d: want a block height at or above --from-block", to)}
			}
			c, err := a.receiptsClient(a.rpcURL())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if lastSet {
				st, err := c.NodeStatus(ctx)
				if err != nil {
					return rpcErr(err)
				}
				to = st.CurrentBlockHeight
				from = max(to-last, 0)
			}
			res, err := c.Validate(ctx, from, to)
			if err != nil {
				return rpcErr(err)
			}
			if a.output == "json" {
				if err := a.printJSON(res); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout, "blocks %d..%d: %s receipts checked, %d invalid\n", res.FromBlock, res.ToBlock, dashIfNil(res.Checked), len(res.Invalid))
				if len(res.Invalid) > 0 {
					tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "BLOCK\tRECEIPT\tMARKET\tREASON")
					for _, iv := range res.Invalid {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", iv.BlockHeight, iv.ReceiptID, iv.Market, iv.Reason)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
				}
			}
			if len(res.Invalid) > 0 {
				return exitCode(1)
			}
			return nil
		}}
	cmd.Flags().Int64Var(&from, "from-block", 0, "first block to re-validate")
	cmd.Flags().Int64Var(&to, "to-block", 0, "last block (default: the current block)")
	cmd.Flags().Int64Var(&last, "last", 0, "re-validate the last N blocks instead of --from-block")
	return cmd
}

// dashIfNil prints a count the node did not send as "-", never as 0.
func dashIfNil(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
