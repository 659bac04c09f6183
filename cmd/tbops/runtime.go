package main

import "github.com/spf13/cobra"

func (a *app) runtimeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "runtime", Short: "Runtime tuning knobs, config hot-reload, reactor health"}
	cmd.AddCommand(&cobra.Command{Use: "knobs", RunE: func(*cobra.Command, []string) error { return notYet("tbops runtime knobs") }})
	cmd.AddCommand(&cobra.Command{Use: "watch", RunE: func(*cobra.Command, []string) error { return notYet("tbops runtime watch") }})
	return cmd
}

func (a *app) runtimeRunbook() *runbook { return nil }
