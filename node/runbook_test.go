package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/node"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/rpc"
)

// history is enough observation to decide every rule: the longest window
// (ProgressWindow, no `for`) and a minute to spare.
const history = node.ProgressWindow + time.Minute

// fixture is a simulated node on a fake clock, a scrape source over it that
// has observed for a while, and the runbook bound to both.
type fixture struct {
	clk *nodetest.FakeClock
	n   *nodetest.Node
	src *nodetest.Source
	c   *node.Client
	rb  *node.Runbook
}

// start runs scenario sc with the clock at t0 and the source advanced by
// observed (one scrape at t0, then one every 15 s).
func start(t *testing.T, sc nodetest.Scenario, observed time.Duration) fixture {
	t.Helper()
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(sc))
	src, err := nodetest.NewSource(ctx, n, clk, 0)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	require.NoError(t, src.Advance(ctx, observed))
	// The transport keeps the real clock: its deadlines are real time.
	rc, err := rpc.NewClient(n.URL(), rpc.WithRetries(1), rpc.WithTimeout(2*time.Second))
	require.NoError(t, err)
	c := node.NewClientFromRPC(rc)
	return fixture{clk: clk, n: n, src: src, c: c, rb: node.NewRunbook(c, src, node.Options{Now: clk.Now})}
}

func scenario(t *testing.T, name string) nodetest.Scenario {
	t.Helper()
	sc, err := nodetest.LookupScenario(name, t0)
	require.NoError(t, err)
	return sc
}

// diagnose runs the runbook and validates the report.
func (f fixture) diagnose(t *testing.T) tbops.Report {
	t.Helper()
	r, err := f.rb.Diagnose(context.Background())
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	return r
}

func symptom(t *testing.T, r tbops.Report, id string) tbops.Symptom {
	t.Helper()
	s, ok := r.Symptom(id)
	require.True(t, ok, "symptom %s missing from %v", id, r.Symptoms)
	return s
}

func step(t *testing.T, r tbops.Report, id string) tbops.Step {
	t.Helper()
	s, ok := r.Step(id)
	require.True(t, ok, "step %s missing from %v", id, r.Steps)
	return s
}

func statuses(r tbops.Report) map[string]tbops.Status {
	out := map[string]tbops.Status{}
	for _, s := range r.Symptoms {
		out[s.ID] = s.Status
	}
	return out
}

// The reproduction (#12.4): a node that answers JSON-RPC but not
// node.status was reported CRITICAL rpc-unreachable. It is reachable; what it
// lacks is unknown, by method name.
func TestNodeWithoutNodeStatusIsReachable(t *testing.T) {
	f := start(t, nodetest.Healthy(t0), time.Second)
	f.n.FailMethod(node.MethodStatus, rpc.CodeMethodNotFound, "Method not found")
	r := f.diagnose(t)

	reach := symptom(t, r, node.SymptomUnreachable)
	assert.False(t, reach.Firing)
	assert.Equal(t, tbops.StatusOK, reach.Status)
	for _, id := range []string{node.SymptomSyncing, node.SymptomNoPeers} {
		s := symptom(t, r, id)
		assert.Equal(t, tbops.StatusUnknown, s.Status, id)
		assert.Contains(t, s.Detail.String(), "node.status", id)
		assert.Contains(t, s.Detail.String(), "-32601", id)
		assert.Nil(t, s.Value, id)
	}
	assert.Equal(t, tbops.StatusOK, symptom(t, r, node.SymptomConsensus).Status, "node.consensus_status still answers")
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "node.status is not served by this node")
}

// The reference node serves no node.* method: reachable, its node.* symptoms
// unknown by name, the height from its block_height gauge, progress decided
// from its metrics, and the methods it does serve shown.
func TestReferenceNode(t *testing.T) {
	f := start(t, scenario(t, "node-reference"), time.Second)
	r := f.diagnose(t)

	assert.Equal(t, map[string]tbops.Status{
		node.SymptomUnreachable: tbops.StatusOK, node.SymptomSyncing: tbops.StatusUnknown, node.SymptomNoPeers: tbops.StatusUnknown,
		node.SymptomConsensus: tbops.StatusUnknown, node.SymptomNotProgressing: tbops.StatusOK,
	}, statuses(r))
	assert.Contains(t, symptom(t, r, node.SymptomSyncing).Detail.String(), "node.status is not served")
	assert.Contains(t, symptom(t, r, node.SymptomConsensus).Detail.String(), "node.consensus_status is not served")
	assert.Equal(t, tbops.StatusUnknown, r.Status, "unknown, never critical")

	h := step(t, r, "block-height")
	assert.Equal(t, []string{"height 1200001 (block_height; node.status gave none)"}, h.Findings)
	require.NotEmpty(t, h.Evidence)
	assert.Equal(t, tbops.SourceScrape, h.Evidence[len(h.Evidence)-1].Source)
	assert.Equal(t, "1200001", h.Evidence[len(h.Evidence)-1].Value.String())

	ref := step(t, r, "reference-node")
	assert.Equal(t, []string{"mempool.stats: 42 transactions, age p50 2 p95 9, fee floor 1, p50 5, p90 20", "consensus.difficulty: 1048576"}, ref.Findings)

	gauge, ok := r.Alert(node.AlertHeightGaugeNotProgressing)
	require.True(t, ok)
	assert.Equal(t, tbops.StatusOK, gauge.Status, "the gauge moved within the observed second")
}

// Only a call that got no JSON-RPC answer makes the node unreachable.
func TestUnreachableIsOnlyNoJSONRPCAnswer(t *testing.T) {
	cases := map[string]struct {
		fault       nodetest.Fault
		unreachable bool
	}{
		"connection dropped":  {nodetest.Fault{Drop: true}, true},
		"HTML from a proxy":   {nodetest.Fault{Body: "<html><body>502 Bad Gateway</body></html>", HTTPStatus: 502}, true},
		"internal error":      {nodetest.Fault{ErrorCode: rpc.CodeInternal, ErrorMessage: "db locked"}, false},
		"rate limited":        {nodetest.Fault{ErrorCode: rpc.CodeRateLimited, HTTPStatus: 429}, false},
		"method not found":    {nodetest.Fault{ErrorCode: rpc.CodeMethodNotFound}, false},
		"unauthorized answer": {nodetest.Fault{ErrorCode: rpc.CodeUnauthorized}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := start(t, nodetest.Healthy(t0), time.Second)
			f.n.SetFault(tc.fault) // Method "": every method
			r := f.diagnose(t)
			reach := symptom(t, r, node.SymptomUnreachable)
			assert.Equal(t, tc.unreachable, reach.Firing, "detail %s", reach.Detail)
			if tc.unreachable {
				assert.Equal(t, tbops.StatusCritical, r.Status)
				assert.Contains(t, reach.Detail.String(), "node.status")
				_, ok := r.Path("consensus")
				assert.True(t, ok)
				return
			}
			assert.Equal(t, tbops.StatusUnknown, r.Status, "answered with errors: undecided, not a page")
			for _, id := range []string{node.SymptomSyncing, node.SymptomNoPeers, node.SymptomConsensus} {
				assert.Equal(t, tbops.StatusUnknown, symptom(t, r, id).Status, id)
			}
		})
	}
}

func TestUnreachableNodeTakesTheCallersHint(t *testing.T) {
	f := start(t, nodetest.Healthy(t0), time.Second)
	c, err := node.NewClient("http://127.0.0.1:1/", rpc.WithRetries(1), rpc.WithTimeout(time.Second))
	require.NoError(t, err)
	var hinted error
	rb := node.NewRunbook(c, f.src, node.Options{Now: f.clk.Now, Hint: func(err error) string {
		hinted = err
		return "is the node running?"
	}})
	r, err := rb.Diagnose(context.Background())
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	reach := symptom(t, r, node.SymptomUnreachable)
	assert.True(t, reach.Firing)
	assert.Contains(t, reach.Detail.String(), "; is the node running?")
	assert.ErrorIs(t, hinted, node.ErrUnavailable)
	assert.Equal(t, tbops.StatusCritical, r.Status)
	assert.Equal(t, f.clk.Now(), r.CheckedAt, "Options.Now stamps the report")
	// The metrics still decide progress: they come from another endpoint.
	assert.Equal(t, tbops.StatusOK, symptom(t, r, node.SymptomNotProgressing).Status)
}

// Healthy means healthy: on a short observation (two scrapes a second apart,
// as doctor takes) no scenario that leaves the node healthy ever reports a
// warning or worse; what the second cannot decide is unknown.
func TestHealthyScenariosNeverWarnOnAShortObservation(t *testing.T) {
	breaks := map[string]bool{"node-syncing": true, "chain-stalled": true, "receipts-chain-stalled": true}
	for _, name := range nodetest.Scenarios() {
		if breaks[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			f := start(t, scenario(t, name), 0)
			for i := range 20 {
				// A fresh source each run: one scrape now, one a second later.
				src, err := nodetest.NewSource(context.Background(), f.n, f.clk, 0)
				require.NoError(t, err)
				require.NoError(t, src.Advance(context.Background(), time.Second))
				r, err := node.NewRunbook(f.c, src, node.Options{Now: f.clk.Now}).Diagnose(context.Background())
				src.Close()
				require.NoError(t, err)
				reportcheck.Valid(t, r)
				require.Contains(t, []tbops.Status{tbops.StatusOK, tbops.StatusUnknown}, r.Status,
					"run %d: %v; warnings %v", i, statuses(r), r.Warnings)
			}
		})
	}
}

// With history past the longest window every symptom of a healthy node is
// decided ok, and so is every alert of the metric it exports.
func TestHealthyWithHistoryDecidesEverySymptom(t *testing.T) {
	f := start(t, nodetest.Healthy(t0), history)
	r := f.diagnose(t)
	for _, s := range r.Symptoms {
		assert.Equal(t, tbops.StatusOK, s.Status, "%s: %s", s.ID, s.Detail)
	}
	assert.Equal(t, tbops.StatusOK, r.Status)
	assert.Equal(t, tbops.StatusOK, mustAlert(t, r, node.AlertHeightNotProgressing).Status)
	assert.Equal(t, tbops.StatusUnknown, mustAlert(t, r, node.AlertHeightGaugeNotProgressing).Status, "no block_height on a contract node")
	p := symptom(t, r, node.SymptomNotProgressing)
	require.NotNil(t, p.Value, "a covered window gives the increase")
	assert.InDelta(t, 300, *p.Value, 1, "5 minutes at a block a second")
	assert.Equal(t, f.src.Name(), r.Scope)

	// The reference node: what it serves is decided, the rest stays unknown.
	r = start(t, scenario(t, "node-reference"), history).diagnose(t)
	assert.Equal(t, tbops.StatusOK, symptom(t, r, node.SymptomNotProgressing).Status)
	assert.Equal(t, tbops.StatusOK, mustAlert(t, r, node.AlertHeightGaugeNotProgressing).Status)
}

func mustAlert(t *testing.T, r tbops.Report, name string) tbops.Alert {
	t.Helper()
	a, ok := r.Alert(name)
	require.True(t, ok, "alert %s missing", name)
	return a
}

// A height that stops moving is a page only once the window is observed.
func TestStalledHeight(t *testing.T) {
	stuck := nodetest.Healthy(t0)
	stuck.Chain.BlocksPerSecond = 0 // consensus says healthy: only the height shows it

	r := start(t, stuck, time.Second).diagnose(t)
	p := symptom(t, r, node.SymptomNotProgressing)
	assert.Equal(t, tbops.StatusUnknown, p.Status, "one flat second decides nothing")
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "of the 5m window observed")

	r = start(t, stuck, history).diagnose(t)
	p = symptom(t, r, node.SymptomNotProgressing)
	assert.True(t, p.Firing)
	assert.Equal(t, tbops.StatusCritical, p.Status)
	assert.Equal(t, 0.0, *p.Value)
	assert.True(t, mustAlert(t, r, node.AlertHeightNotProgressing).Firing, "the symptom is the alert's evaluation")
	assert.Equal(t, tbops.StatusCritical, r.Status)
	path, ok := r.Path("consensus")
	require.True(t, ok)
	assert.Contains(t, path.Why, node.SymptomNotProgressing)

	ref := scenario(t, "node-reference")
	ref.Chain.BlocksPerSecond = 0
	r = start(t, ref, history).diagnose(t)
	assert.Equal(t, tbops.StatusCritical, symptom(t, r, node.SymptomNotProgressing).Status, "the reference node's gauge")
	assert.True(t, mustAlert(t, r, node.AlertHeightGaugeNotProgressing).Firing)
}

// block_mined_total only ever shows progress: a rise decides "moving", a flat
// counter decides nothing (the node may not mine).
func TestBlocksMinedShowProgressOnly(t *testing.T) {
	ref := scenario(t, "node-reference")
	ref.Metrics = []nodetest.Metric{{Name: node.MetricHeightGauge}} // hide the gauge
	r := start(t, ref, time.Second).diagnose(t)
	p := symptom(t, r, node.SymptomNotProgressing)
	assert.Equal(t, tbops.StatusOK, p.Status)
	assert.Contains(t, p.Detail.String(), node.MetricBlocksMined)
	assert.Contains(t, step(t, r, "block-height").Findings[0], "height unknown")

	ref.Metrics = append(ref.Metrics, nodetest.Counter(node.MetricBlocksMined, nil, 10, 0)) // mines nothing
	r = start(t, ref, history).diagnose(t)
	p = symptom(t, r, node.SymptomNotProgressing)
	assert.Equal(t, tbops.StatusUnknown, p.Status, "a flat block_mined_total is no stall")
	assert.Contains(t, p.Detail.String(), "exports neither")
}

func TestConsensusStates(t *testing.T) {
	for state, want := range map[string]tbops.Status{
		"healthy": tbops.StatusOK, "degraded": tbops.StatusWarning, "stalled": tbops.StatusCritical, "confused": tbops.StatusUnknown,
	} {
		sc := nodetest.Healthy(t0)
		sc.Chain.Consensus = state
		r := start(t, sc, history).diagnose(t)
		s := symptom(t, r, node.SymptomConsensus)
		assert.Equal(t, want, s.Status, state)
		assert.Equal(t, want, r.Status, state)
		if want == tbops.StatusUnknown {
			assert.Contains(t, strings.Join(r.Warnings, "\n"), `"confused"`)
		}
	}
}

func TestSyncingAndNoPeers(t *testing.T) {
	sc := nodetest.Healthy(t0)
	sc.Chain.Syncing, sc.Chain.Peers = true, 0
	r := start(t, sc, history).diagnose(t)
	assert.True(t, symptom(t, r, node.SymptomSyncing).Firing)
	peers := symptom(t, r, node.SymptomNoPeers)
	assert.True(t, peers.Firing)
	assert.Equal(t, 0.0, *peers.Value)
	assert.Equal(t, tbops.StatusWarning, r.Status)
	_, ok := r.Path("consensus")
	assert.False(t, ok, "warnings alone match no path")
}

// A node.status without peers says nothing about peers: unknown, value null.
func TestMissingFieldsAreUnknown(t *testing.T) {
	c, err := node.NewClient(partialNode(t, `{"current_block_height": 7, "syncing": false}`), rpc.WithRetries(1))
	require.NoError(t, err)
	r, err := node.NewRunbook(c, nil, node.Options{}).Diagnose(context.Background())
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	peers := symptom(t, r, node.SymptomNoPeers)
	assert.Equal(t, tbops.StatusUnknown, peers.Status)
	assert.Nil(t, peers.Value)
	assert.Equal(t, tbops.StatusOK, symptom(t, r, node.SymptomSyncing).Status)
	assert.False(t, symptom(t, r, node.SymptomUnreachable).Firing, "-32601 for node.consensus_status is an answer")
	assert.Equal(t, []string{"height 7 (node.status)"}, step(t, r, "block-height").Findings)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "no metrics source")
	assert.Empty(t, r.Scope)
	for _, a := range r.Alerts {
		assert.Equal(t, tbops.StatusUnknown, a.Status, a.Name)
	}
}

// The source the runbook is given is the one it asks, and its name is the scope.
func TestScopedSource(t *testing.T) {
	f := start(t, nodetest.Healthy(t0), history)
	other := promq.Scoped(f.src, map[string]string{"instance": "elsewhere:3030"})
	r, err := node.NewRunbook(f.c, other, node.Options{Now: f.clk.Now}).Diagnose(context.Background())
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	assert.Equal(t, other.Name(), r.Scope)
	assert.Equal(t, tbops.StatusUnknown, symptom(t, r, node.SymptomNotProgressing).Status, "no series for that instance")
}

func TestDiagnoseStopsWithTheContext(t *testing.T) {
	f := start(t, nodetest.Healthy(t0), time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.rb.Diagnose(ctx)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}
