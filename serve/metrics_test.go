package serve_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/serve"
)

func TestCollectorExportsTheVerdicts(t *testing.T) {
	a := serve.Node{URL: "http://admin:hunter2@node-a.invalid:3030/"}
	b := serve.Node{URL: "https://node-b.invalid/rpc"}
	srv, err := serve.New(context.Background(), []serve.Node{a, b}, fixed("treasury-stuck", func(n serve.Node) tbops.Report {
		if n == a {
			r := report("treasury-stuck", n,
				tbops.Symptom{ID: "backlog-high", Firing: true, Status: tbops.StatusCritical},
				tbops.Symptom{ID: "stale", Status: tbops.StatusOK},
				tbops.Symptom{ID: "windowed", Status: tbops.StatusUnknown},
				// The same id twice (one per market, say) is one series, firing if either fires.
				tbops.Symptom{ID: "per-market", Status: tbops.StatusOK},
				tbops.Symptom{ID: "per-market", Firing: true, Status: tbops.StatusWarning})
			r.Alerts = []tbops.Alert{{Name: "TreasuryBacklogCritical", Firing: true, Status: tbops.StatusCritical},
				{Name: "TreasuryStalled", Status: tbops.StatusUnknown}, {Name: "TreasuryErrors", Status: tbops.StatusOK}}
			r.Finalize()
			return r
		}
		return report("treasury-stuck", n, tbops.Symptom{ID: "windowed", Status: tbops.StatusUnknown})
	}), serve.WithSource(noSource), serve.WithClock(func() time.Time { return t0 }),
		serve.WithUpCheck(func(_ context.Context, n serve.Node) error {
			if n == b {
				return assert.AnError
			}
			return nil
		}))
	require.NoError(t, err)
	defer srv.Close()
	c := srv.Collector(prometheus.Labels{"instance": "serve-1"})

	// Before the first run nothing is known: no verdict series, no up.
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(""), serve.MetricRunbookStatus, serve.MetricNodeUp))

	require.NoError(t, srv.RunOnce(context.Background()))
	const want = `
# HELP tbops_alert_firing Whether the runbook's alert rule fires on the node (absent while unknown).
# TYPE tbops_alert_firing gauge
tbops_alert_firing{alert="TreasuryBacklogCritical",instance="serve-1",node="http://node-a.invalid:3030/",runbook="treasury-stuck"} 1
tbops_alert_firing{alert="TreasuryErrors",instance="serve-1",node="http://node-a.invalid:3030/",runbook="treasury-stuck"} 0
# HELP tbops_last_run_timestamp_seconds When tbops serve last finished the runbook on the node (Unix seconds).
# TYPE tbops_last_run_timestamp_seconds gauge
tbops_last_run_timestamp_seconds{instance="serve-1",node="http://node-a.invalid:3030/",runbook="treasury-stuck"} 1.7959212e+09
tbops_last_run_timestamp_seconds{instance="serve-1",node="https://node-b.invalid/rpc",runbook="treasury-stuck"} 1.7959212e+09
# HELP tbops_node_up Whether the node answered at its last check (absent before the first).
# TYPE tbops_node_up gauge
tbops_node_up{instance="serve-1",node="http://node-a.invalid:3030/"} 1
tbops_node_up{instance="serve-1",node="https://node-b.invalid/rpc"} 0
# HELP tbops_runbook_status Verdict of the runbook on the node: 0 ok, 1 warning, 2 critical, 3 unknown.
# TYPE tbops_runbook_status gauge
tbops_runbook_status{instance="serve-1",node="http://node-a.invalid:3030/",runbook="treasury-stuck"} 2
tbops_runbook_status{instance="serve-1",node="https://node-b.invalid/rpc",runbook="treasury-stuck"} 3
# HELP tbops_symptom_firing Whether the runbook's symptom fires on the node (absent while unknown).
# TYPE tbops_symptom_firing gauge
tbops_symptom_firing{instance="serve-1",node="http://node-a.invalid:3030/",runbook="treasury-stuck",symptom="backlog-high"} 1
tbops_symptom_firing{instance="serve-1",node="http://node-a.invalid:3030/",runbook="treasury-stuck",symptom="per-market"} 1
tbops_symptom_firing{instance="serve-1",node="http://node-a.invalid:3030/",runbook="treasury-stuck",symptom="stale"} 0
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want), serve.MetricRunbookStatus, serve.MetricSymptomFiring,
		serve.MetricAlertFiring, serve.MetricLastRun, serve.MetricNodeUp))
	n, err := testutil.GatherAndCount(gatherer(c), serve.MetricRunDuration)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "one histogram")
	lint, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, lint, "the metrics follow Prometheus' naming conventions")
}

func gatherer(c prometheus.Collector) prometheus.Gatherer {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	return reg
}

func TestMetricsEndpointHasGoAndProcessCollectors(t *testing.T) {
	srv, err := serve.New(context.Background(), []serve.Node{{URL: "http://node-a.invalid:3030/"}},
		fixed("r", func(n serve.Node) tbops.Report { return report("r", n) }), serve.WithSource(noSource))
	require.NoError(t, err)
	defer srv.Close()
	s := &served{srv: srv, web: newWeb(t, srv)}
	m := s.metrics(t)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "tbops_run_duration_seconds_count"} {
		assert.Contains(t, m, "\n"+name, "%s on /metrics", name)
	}
}
