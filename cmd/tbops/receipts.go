package main

import "github.com/spf13/cobra"

func (a *app) receiptsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "receipts", Short: "Receipts Flatlining runbook"}
	cmd.AddCommand(&cobra.Command{Use: "diagnose", RunE: func(*cobra.Command, []string) error { return notYet("tbops receipts diagnose") }})
	cmd.AddCommand(&cobra.Command{Use: "stats", RunE: func(*cobra.Command, []string) error { return notYet("tbops receipts stats") }})
	cmd.AddCommand(&cobra.Command{Use: "validate", RunE: func(*cobra.Command, []string) error { return notYet("tbops receipts validate") }})
	return cmd
}

func (a *app) receiptsRunbook() *runbook { return nil }
