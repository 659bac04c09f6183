package main

import "github.com/spf13/cobra"

func (a *app) governorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "governor", Short: "Economics autopilot gate: status, intents, snapshot hashes, audit"}
	cmd.AddCommand(&cobra.Command{Use: "status", RunE: func(*cobra.Command, []string) error { return notYet("tbops governor status") }})
	cmd.AddCommand(&cobra.Command{Use: "intents", RunE: func(*cobra.Command, []string) error { return notYet("tbops governor intents") }})
	cmd.AddCommand(&cobra.Command{Use: "verify", RunE: func(*cobra.Command, []string) error { return notYet("tbops governor verify") }})
	cmd.AddCommand(&cobra.Command{Use: "audit", RunE: func(*cobra.Command, []string) error { return notYet("tbops governor audit") }})
	cmd.AddCommand(&cobra.Command{Use: "hash", RunE: func(*cobra.Command, []string) error { return notYet("tbops governor hash") }})
	return cmd
}

func (a *app) governorRunbook() *runbook { return nil }
