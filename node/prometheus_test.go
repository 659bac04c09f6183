package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/promtest"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/node"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/rpc"
)

// A contract node and a reference node behind one real Prometheus: each
// report reads its own node's height metric through the scoped source, and
// the rules' PromQL runs as Prometheus itself stores the series.
func TestFleetBehindARealPrometheus(t *testing.T) {
	contract := nodetest.Start(t)
	reference := nodetest.Start(t, nodetest.WithScenarioName("node-reference"))
	srv := promtest.StartWith(t, promtest.Config{Targets: []string{contract.MetricsURL(), reference.MetricsURL()}})
	p, err := promq.NewPrometheus(srv.URL)
	require.NoError(t, err)
	ctx := context.Background()
	moved := func(n *nodetest.Node, metric string) func(context.Context) bool {
		return func(ctx context.Context) bool {
			ev, err := promq.Eval(ctx, promq.Scoped(p, map[string]string{"instance": n.Addr()}),
				promq.GTc(promq.Increase(promq.Select(metric), node.ProgressWindow), 0), time.Now())
			return err == nil && ev.Known && ev.Returned
		}
	}
	srv.WaitFor(t, 30*time.Second, "both heights seen moving", func(ctx context.Context) bool {
		return moved(contract, node.MetricHeight)(ctx) && moved(reference, node.MetricHeightGauge)(ctx)
	})

	diagnose := func(n *nodetest.Node) tbops.Report {
		c, err := node.NewClient(n.URL(), rpc.WithTimeout(5*time.Second))
		require.NoError(t, err)
		src := promq.Scoped(p, map[string]string{"instance": n.Addr()})
		r, err := node.NewRunbook(c, src, node.Options{}).Diagnose(ctx)
		require.NoError(t, err)
		reportcheck.Valid(t, r)
		assert.Equal(t, src.Name(), r.Scope)
		progress := symptom(t, r, node.SymptomNotProgressing)
		assert.Equal(t, tbops.StatusOK, progress.Status, "%s: %v", n.Addr(), r.Warnings)
		assert.Equal(t, tbops.SourcePrometheus, progress.Evidence[0].Source)
		return r
	}
	// Each node is judged on its own series only: the other node's height
	// metric, in the same Prometheus, leaves its rule undecided here.
	r := diagnose(contract)
	assert.Equal(t, tbops.StatusOK, r.Status)
	assert.Equal(t, tbops.StatusOK, mustAlert(t, r, node.AlertHeightNotProgressing).Status)
	assert.Equal(t, tbops.StatusUnknown, mustAlert(t, r, node.AlertHeightGaugeNotProgressing).Status)

	r = diagnose(reference)
	assert.Equal(t, tbops.StatusUnknown, mustAlert(t, r, node.AlertHeightNotProgressing).Status)
	assert.Equal(t, tbops.StatusOK, mustAlert(t, r, node.AlertHeightGaugeNotProgressing).Status)
	h := step(t, r, "block-height").Findings
	require.Len(t, h, 1)
	assert.True(t, strings.HasSuffix(h[0], "(block_height; node.status gave none)"), h[0])
}
