package main

import "github.com/spf13/cobra"

func (a *app) rulesCmd() *cobra.Command {
	return &cobra.Command{Use: "rules", Short: "Print Prometheus alerting rules for every runbook and SLO (YAML)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return notYet("tbops rules") }}
}
