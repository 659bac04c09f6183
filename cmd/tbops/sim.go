package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops/nodetest"
)

func (a *app) simCmd() *cobra.Command {
	var scenario, listen string
	var list bool
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the simulated node (JSON-RPC at /, metrics at /metrics) until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if list {
				for _, n := range nodetest.Scenarios() {
					fmt.Fprintln(a.stdout, n)
				}
				return nil
			}
			n, err := nodetest.New(nodetest.WithScenarioName(scenario), nodetest.WithAddr(listen))
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			defer n.Close()
			if a.output == "json" {
				_ = a.printJSON(map[string]string{"scenario": scenario, "rpc_url": n.URL(), "metrics_url": n.MetricsURL(),
					"governor_decisions_dir": n.GovernorDecisionsDir()})
			} else {
				fmt.Fprintf(a.stdout, "simulated node, scenario %q\nrpc:       %s\nmetrics:   %s\ndecisions: %s\n",
					scenario, n.URL(), n.MetricsURL(), n.GovernorDecisionsDir())
				fmt.Fprintf(a.stdout, "try: tbops doctor --rpc %s\n     tbops governor verify --dir %s\n", n.URL(), n.GovernorDecisionsDir())
			}
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&scenario, "scenario", "healthy", "scenario name or JSON file (see --list)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:3030", "listen address (127.0.0.1:0 picks a free port)")
	cmd.Flags().BoolVar(&list, "list", false, "list the scenarios and exit")
	return cmd
}
