package serve_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/internal/promtest"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/serve"
)

// The README's two-instance example, with the scrape configuration in
// deploy/prometheus.yml, against a real Prometheus: the instances' verdict
// series cover every node exactly once, and the hashmod relabelling sends
// every /probe to the instance that serves its target (a probe sent to the
// other one is refused, which Prometheus would show as a failed scrape).
func TestTwoShardsBehindARealPrometheus(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	var nodes []serve.Node
	for len(nodes) < 4 || len(serve.Shard(nodes, 0, 2)) == 0 || len(serve.Shard(nodes, 1, 2)) == 0 {
		require.Less(t, len(nodes), 20, "ports hash into one shard only")
		n := nodetest.Start(t, nodetest.WithClock(clk.Now))
		nodes = append(nodes, serve.Node{URL: n.URL()})
	}
	var addrs []string
	for shard := 0; shard < 2; shard++ {
		srv, err := serve.New(ctx, serve.Shard(nodes, shard, 2), testRunbooks(clk.Now), serve.WithClock(clk.Now))
		require.NoError(t, err)
		t.Cleanup(srv.Close)
		require.NoError(t, srv.Scrape(ctx))
		advance(ctx, t, srv, clk, 15*time.Second)
		require.NoError(t, srv.RunOnce(ctx))
		web := httptest.NewServer(srv.Handler())
		t.Cleanup(web.Close)
		addrs = append(addrs, strings.TrimPrefix(web.URL, "http://"))
	}

	sample, err := os.ReadFile("../deploy/prometheus.yml")
	require.NoError(t, err)
	var targets []string
	for _, n := range nodes {
		targets = append(targets, "'"+n.URL+"'")
	}
	raw := string(sample)
	for from, to := range map[string]string{
		"['http://node-a.internal:3030/', 'http://node-b.internal:3030/']": "[" + strings.Join(targets, ", ") + "]",
		"tbops-a.internal:9847": addrs[0], "tbops-b.internal:9847": addrs[1],
		"scrape_interval: 30s": "scrape_interval: 1s", "scrape_timeout: 25s": "scrape_timeout: 1s",
	} {
		require.Contains(t, raw, from, "deploy/prometheus.yml changed: update this test")
		raw = strings.ReplaceAll(raw, from, to)
	}
	p := promtest.StartWith(t, promtest.Config{Raw: raw})
	c, err := promq.NewClient(p.URL)
	require.NoError(t, err)
	value := func(ctx context.Context, expr string) float64 {
		res, err := c.Query(ctx, expr, time.Time{})
		if err != nil || len(res.Vector()) == 0 {
			return -1
		}
		return float64(res.Vector()[0].Value)
	}
	all := float64(len(nodes))
	for expr, want := range map[string]float64{
		`count(count by (node) (tbops_runbook_status{job="tbops-serve",runbook="` + versionRunbook + `"}))`: all,
		`max(count by (node) (tbops_runbook_status{job="tbops-serve",runbook="` + versionRunbook + `"}))`:   1,
		`count(up{job=~"tbops-probe-.*"} == 1)`:                                    all,
		`count(probe_success == 1)`:                                                all,
		`count(count by (instance) (tbops_runbook_status{job=~"tbops-probe-.*"}))`: all,
	} {
		p.WaitFor(t, time.Minute, expr, func(ctx context.Context) bool { return value(ctx, expr) == want })
	}
}
