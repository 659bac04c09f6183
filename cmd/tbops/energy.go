package main

import "github.com/spf13/cobra"

func (a *app) energyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "energy", Short: "Energy Stalled runbook, RPC guard, reading signatures"}
	cmd.AddCommand(&cobra.Command{Use: "diagnose", RunE: func(*cobra.Command, []string) error { return notYet("tbops energy diagnose") }})
	cmd.AddCommand(&cobra.Command{Use: "market", RunE: func(*cobra.Command, []string) error { return notYet("tbops energy market") }})
	cmd.AddCommand(&cobra.Command{Use: "credits", RunE: func(*cobra.Command, []string) error { return notYet("tbops energy credits") }})
	cmd.AddCommand(&cobra.Command{Use: "disputes", RunE: func(*cobra.Command, []string) error { return notYet("tbops energy disputes") }})
	cmd.AddCommand(&cobra.Command{Use: "sign-reading", RunE: func(*cobra.Command, []string) error { return notYet("tbops energy sign-reading") }})
	cmd.AddCommand(&cobra.Command{Use: "verify-reading", RunE: func(*cobra.Command, []string) error { return notYet("tbops energy verify-reading") }})
	cmd.AddCommand(&cobra.Command{Use: "guard", RunE: func(*cobra.Command, []string) error { return notYet("tbops energy guard") }})
	return cmd
}

func (a *app) energyRunbook() *runbook { return nil }
