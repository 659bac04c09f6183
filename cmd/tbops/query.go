package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops/promq"
)

func (a *app) queryCmd() *cobra.Command {
	return &cobra.Command{Use: "query EXPR", Short: "The runbook's prometheus_query: print the first value or \"no data\"", Args: cobra.ExactArgs(1),
		RunE: func(*cobra.Command, []string) error { return notYet("tbops query") }}
}

// metricsSource returns the metrics source for one node: Prometheus when --prom or
// PROMETHEUS_URL is given, else a scrape of metricsURL. close releases it.
func (a *app) metricsSource(ctx context.Context, metricsURL string) (promq.Source, func(), error) {
	return nil, func() {}, errors.New("metrics sources are not implemented in this build yet")
}
