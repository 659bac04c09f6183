package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops/serve"
)

func (a *app) historyCmd() *cobra.Command {
	var state, node, runbook, since string
	var alerts bool
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Verdict transitions (or, with --alerts, Alertmanager alerts) kept by tbops serve (--state FILE)",
		Long: `history prints the verdict transitions tbops serve wrote to its --state file,
oldest first: when each runbook's status changed on each node, from what to what,
and the symptoms that fired. It opens the file read-only, so it can run while serve
does. -o json prints {"transitions": [...]}, as serve's /api/v1/history.

--alerts prints the alerts serve's Alertmanager webhook received instead: when,
which alert and fingerprint, its node and runbook, what serve did with it, and
each notification's result. -o json prints {"alerts": [...]}, as /api/v1/alerts.`,
		Example: `  tbops history --state /var/lib/tbops/state.db
  tbops history --state state.db --node http://node-a:3030/ --runbook treasury-stuck --since 24h -o json
  tbops history --state state.db --alerts --since 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if state == "" {
				return &exitError{code: 3, err: errors.New("--state is required: the file tbops serve --state writes")}
			}
			f := serve.Filter{Runbook: runbook}
			if node != "" {
				f.Node = serve.NodeLabel(node)
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return &exitError{code: 3, err: err}
				}
				f.Since = t
			}
			st, err := serve.OpenStoreReadOnly(cmd.Context(), state)
			if errors.Is(err, fs.ErrNotExist) {
				return &exitError{code: 3, err: fmt.Errorf("--state %s: no such file; tbops serve --state %s creates it", state, state)}
			}
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("--state: %w", err)}
			}
			defer st.Close()
			if alerts {
				return a.printAlerts(cmd.Context(), st, serve.AlertFilter{Node: f.Node, Runbook: runbook, Since: f.Since})
			}
			ts, err := st.Transitions(cmd.Context(), f)
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			if a.output == "json" {
				return a.printJSON(serve.NewTimeline(ts))
			}
			if len(ts) == 0 {
				fmt.Fprintln(a.stdout, "no transitions recorded (for this node, runbook and time)")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tNODE\tRUNBOOK\tFROM\tTO\tFIRING")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.At.Format(time.RFC3339), t.Node, t.Runbook,
					dashIfBlank(strings.ToUpper(string(t.From))), strings.ToUpper(string(t.To)), dashIfEmpty(t.Firing))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "the state file tbops serve --state writes (required)")
	cmd.Flags().StringVar(&node, "node", "", "only this node (its RPC URL)")
	cmd.Flags().StringVar(&runbook, "runbook", "", "only this runbook (treasury-stuck, energy-stalled, …)")
	cmd.Flags().StringVar(&since, "since", "", "only transitions since a duration ago (24h) or a time (2026-11-29T03:00:00Z, 2026-11-29)")
	cmd.Flags().BoolVar(&alerts, "alerts", false, "list the alerts the Alertmanager webhook received, and their notifications, instead of transitions")
	return cmd
}

// printAlerts prints the alerts of the state file f selects, oldest first.
func (a *app) printAlerts(ctx context.Context, st *serve.Store, f serve.AlertFilter) error {
	as, err := st.Alerts(ctx, f)
	if err != nil {
		return &exitError{code: 3, err: err}
	}
	if a.output == "json" {
		return a.printJSON(serve.NewAlertLog(as))
	}
	if len(as) == 0 {
		fmt.Fprintln(a.stdout, "no alerts recorded (for this node, runbook and time)")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tALERT\tSTATUS\tFINGERPRINT\tNODE\tOUTCOME\tNOTIFICATIONS")
	for _, al := range as {
		outcome := al.Outcome
		if al.Reason != "" {
			outcome += ": " + al.Reason
		}
		var sent []string
		for _, n := range al.Notifications {
			sent = append(sent, fmt.Sprintf("%s %s → %s", n.Result, n.Kind, n.Target))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", al.ReceivedAt.Format(time.RFC3339), al.Alertname, al.Status,
			al.Fingerprint, dashIfBlank(al.Node), outcome, dashIfBlank(strings.Join(sent, "; ")))
	}
	return tw.Flush()
}

// parseSince reads --since: a duration before now, an RFC 3339 time or a date.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (24h), an RFC 3339 time (2026-11-29T03:00:00Z) or a date (2026-11-29)", s)
}
