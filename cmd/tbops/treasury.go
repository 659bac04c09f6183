package main

import "github.com/spf13/cobra"

func (a *app) treasuryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "treasury", Short: "Treasury Stuck runbook, settlement audit, explorer migration"}
	cmd.AddCommand(&cobra.Command{Use: "diagnose", RunE: func(*cobra.Command, []string) error { return notYet("tbops treasury diagnose") }})
	cmd.AddCommand(&cobra.Command{Use: "balance", RunE: func(*cobra.Command, []string) error { return notYet("tbops treasury balance") }})
	cmd.AddCommand(&cobra.Command{Use: "list", RunE: func(*cobra.Command, []string) error { return notYet("tbops treasury list") }})
	cmd.AddCommand(&cobra.Command{Use: "show", RunE: func(*cobra.Command, []string) error { return notYet("tbops treasury show") }})
	cmd.AddCommand(&cobra.Command{Use: "rollback", RunE: func(*cobra.Command, []string) error { return notYet("tbops treasury rollback") }})
	cmd.AddCommand(&cobra.Command{Use: "audit", RunE: func(*cobra.Command, []string) error { return notYet("tbops treasury audit") }})
	cmd.AddCommand(&cobra.Command{Use: "migrate-explorer", RunE: func(*cobra.Command, []string) error { return notYet("tbops treasury migrate-explorer") }})
	return cmd
}

func (a *app) treasuryRunbook() *runbook { return nil }
