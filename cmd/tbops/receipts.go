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
	return receipts.NewWithTransport(rc), nil
}

func (a *app) receiptsDiagnoseCmd() *cobra.Command {
	var (
		slo, apply bool
		explorer   string
	)
	cmd := &cobra.Command{Use: "diagnose", Short: "Run the Receipts Flatlining runbook against a node",
		Long: `diagnose runs the Receipts Flatlining runbook: emission per market (receipts.stats
and receipt_emitted_total), validation errors and min-payment rejections, block
progression and consensus, and the explorer when --explorer is given (a URL that
answers JSON {"latest_receipt_height": N}). It only reads, unless --apply: then, if
validation errors match (path B), it resets the node's validation state
(receipts.reset_validation_state, sent once) and re-validates the last 100 blocks.
Host-side actions (restarting receipt-emitter, systemctl) are always printed as plans.
Exit codes: 0 ok, 1 warning, 2 critical, 3 unknown or error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t := &target{rpcURL: a.rpcURL(), metricsURL: a.metricsURLFor(a.rpcURL()), now: time.Now, slo: slo, apply: apply}
			src, closeSrc, err := a.metricsSource(ctx, t.metricsURL)
			if err != nil {
				fmt.Fprintf(a.stderr, "tbops: metrics unavailable: %v\n", err)
			} else {
				t.src = src
				defer closeSrc()
			}
			r, derr := a.receiptsDiagnose(ctx, t, explorer)
			if err != nil {
				r.Warnf("no metrics source: %v", err)
			}
			if derr != nil && r.Runbook == "" {
				return rpcErr(derr)
			}
			r.Target = tbops.RedactURL(t.rpcURL)
			perr := a.printReport(r)
			if derr != nil {
				return &exitError{code: 3, err: fmt.Errorf("--apply: %v", derr)}
			}
			return perr
		}}
	cmd.Flags().BoolVar(&slo, "slo", false, "also evaluate the Receipts SLO table")
	cmd.Flags().BoolVar(&apply, "apply", false, "carry out path B: reset the validation state and re-validate the last 100 blocks")
	cmd.Flags().StringVar(&explorer, "explorer", "", `explorer URL answering {"latest_receipt_height": N} (default: explorer not checked)`)
	return cmd
}

// receiptsDiagnose runs Diagnose, and Apply when t.apply. An Apply failure
// comes back with the report (its actions say what happened).
func (a *app) receiptsDiagnose(ctx context.Context, t *target, explorer string) (tbops.Report, error) {
	c, err := a.receiptsClient(t.rpcURL)
	if err != nil {
		return tbops.Report{}, err
	}
	opts := receipts.Options{Now: t.now, SLO: t.slo, ExplorerURL: explorer}
	r, err := receipts.Diagnose(ctx, c, t.src, opts)
	if err != nil {
		return tbops.Report{}, err
	}
	if !t.apply {
		return r, nil
	}
	applied, err := receipts.Apply(ctx, c, r, opts)
	if err != nil {
		return applied, err
	}
	return applied, nil
}

// receiptsRunbook is the receipts-flatlining diagnosis doctor runs (it never applies).
func (a *app) receiptsRunbook() *runbook {
	return &runbook{id: receipts.RunbookID, usesMetrics: true, diagnose: func(ctx context.Context, t *target) (tbops.Report, error) {
		c, err := a.receiptsClient(t.rpcURL)
		if err != nil {
			return tbops.Report{}, err
		}
		return receipts.Diagnose(ctx, c, t.src, receipts.Options{Now: t.now, SLO: t.slo, ExplorerURL: t.explorer})
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
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\n", s.Market, s.EmittedTotal, s.LastEmittedHeight, ago, s.Pending,
					s.ValidationErrors.SchemaMismatch, s.ValidationErrors.DuplicateDetection, s.ValidationErrors.SignatureInvalid, s.MinPaymentRejectedTotal)
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
				fmt.Fprintf(a.stdout, "blocks %d..%d: %d receipts checked, %d invalid\n", res.FromBlock, res.ToBlock, res.Checked, len(res.Invalid))
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
