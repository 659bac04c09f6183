package nodetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/rpc"
)

var t0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

func call(t *testing.T, n *nodetest.Node, method string, params, out any) error {
	t.Helper()
	c, err := rpc.NewClient(n.URL(), rpc.WithRetry(rpc.RetryPolicy{Attempts: 1}), rpc.WithTimeout(2*time.Second))
	require.NoError(t, err)
	return c.Read(context.Background(), method, params, out)
}

func TestNodeStatusOverPlainHTTP(t *testing.T) {
	n := nodetest.Start(t)
	resp, err := http.Post(n.URL(), "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"node.status","params":{}}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct {
		JSONRPC string                     `json:"jsonrpc"`
		Result  map[string]json.RawMessage `json:"result"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	assert.Equal(t, "2.0", env.JSONRPC)
	for _, k := range []string{"current_block_height", "epoch", "syncing", "peers", "version"} {
		assert.Contains(t, env.Result, k, "PROTOCOL.md section 2 field")
	}
}

func TestHeightFollowsTheClock(t *testing.T) {
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, nodetest.WithClock(clk.Now))
	var st struct {
		Height int64 `json:"current_block_height"`
		Epoch  int64 `json:"epoch"`
	}
	require.NoError(t, call(t, n, "node.status", nil, &st))
	h0 := st.Height
	clk.Advance(240 * time.Second)
	require.NoError(t, call(t, n, "node.status", nil, &st))
	assert.Equal(t, h0+240, st.Height, "one block a second")
	assert.Equal(t, st.Height/120, st.Epoch, "an epoch is 120 blocks")

	var cs map[string]any
	require.NoError(t, call(t, n, "node.consensus_status", nil, &cs))
	assert.Equal(t, "healthy", cs["status"])
	assert.Equal(t, float64(st.Height-2), cs["last_finalized_height"])
}

func TestChainStalledScenario(t *testing.T) {
	clk := nodetest.NewFakeClock(t0)
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName("chain-stalled"))
	var a, b struct {
		Height int64 `json:"current_block_height"`
	}
	require.NoError(t, call(t, n, "node.status", nil, &a))
	clk.Advance(time.Minute)
	require.NoError(t, call(t, n, "node.status", nil, &b))
	assert.Equal(t, a.Height, b.Height)
	var cs map[string]any
	require.NoError(t, call(t, n, "node.consensus_status", nil, &cs))
	assert.Equal(t, "stalled", cs["status"])
}

func TestLedgerInspect(t *testing.T) {
	n := nodetest.Start(t)
	var acct map[string]any
	require.NoError(t, call(t, n, "ledger.inspect", map[string]string{"account": "treasury_account_id"}, &acct))
	assert.Equal(t, "treasury_account_id", acct["account"])
	assert.Contains(t, acct, "balance")
	err := call(t, n, "ledger.inspect", map[string]string{"account": "nobody"}, nil)
	assert.ErrorIs(t, err, rpc.ErrNotFound)
	err = call(t, n, "ledger.inspect", map[string]any{"acount": "typo"}, nil)
	assert.ErrorIs(t, err, rpc.ErrInvalidParams)
	assert.ErrorContains(t, err, `unknown param "acount"`)
	err = call(t, n, "no.such.method", nil, nil)
	assert.ErrorIs(t, err, rpc.ErrMethodNotFound)
}

func TestMetricsExpositionParsesAndCountersGrow(t *testing.T) {
	clk := nodetest.NewFakeClock(t0)
	sc := nodetest.Healthy(t0)
	sc.Metrics = []nodetest.Metric{
		nodetest.Counter("test_events_total", map[string]string{"kind": `we"ird\`}, 10, 2),
		nodetest.Histogram("test_latency_seconds", nil, []float64{0.1, 1, 10}, 4, []float64{0.05, 0.5, 0.5, 5}),
	}
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(sc))
	scrape := func() map[string]*model.Sample {
		resp, err := http.Get(n.MetricsURL())
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		dec := expfmt.NewDecoder(bytes.NewReader(raw), expfmt.NewFormat(expfmt.TypeTextPlain))
		vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, decodeAll(t, dec)...)
		require.NoError(t, err)
		out := map[string]*model.Sample{}
		for _, s := range vec {
			out[s.Metric.String()] = s
		}
		return out
	}
	a := scrape()
	clk.Advance(10 * time.Second)
	b := scrape()
	key := `test_events_total{kind="we\"ird\\"}`
	require.Contains(t, a, key)
	assert.Equal(t, 10.0, float64(a[key].Value))
	assert.Equal(t, 30.0, float64(b[key].Value), "2/s for 10 s")
	assert.Contains(t, a, `block_height_total`, "derived chain metric")
	le1 := `test_latency_seconds_bucket{le="1"}`
	inf := `test_latency_seconds_bucket{le="+Inf"}`
	require.Contains(t, a, le1)
	assert.InDelta(t, 0.75, float64(a[le1].Value)/float64(a[inf].Value), 1e-9, "3 of 4 observations are <= 1")
	assert.InDelta(t, 40.0, float64(b[inf].Value-a[inf].Value), 1e-6, "4 observations a second")
}

func decodeAll(t *testing.T, dec expfmt.Decoder) []*dto.MetricFamily {
	t.Helper()
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if err == io.EOF {
				return out
			}
			require.NoError(t, err)
		}
		out = append(out, mf)
	}
}

func TestHiddenMetric(t *testing.T) {
	sc := nodetest.Healthy(t0)
	sc.Metrics = []nodetest.Metric{{Name: "block_height_total"}} // no series: the node does not export it
	n := nodetest.Start(t, nodetest.WithScenario(sc))
	resp, err := http.Get(n.MetricsURL())
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	assert.NotContains(t, string(raw), "block_height_total")
}

func TestFaults(t *testing.T) {
	n := nodetest.Start(t)

	n.FailMethod("node.status", rpc.CodeRateLimited, "slow down")
	err := call(t, n, "node.status", nil, nil)
	assert.ErrorIs(t, err, rpc.ErrRateLimited)
	require.NoError(t, call(t, n, "node.consensus_status", nil, nil), "faults are per method")

	n.ClearFaults()
	n.SetFault(nodetest.Fault{Method: "node.status", Body: "<html>502 Bad Gateway</html>", HTTPStatus: 502})
	err = call(t, n, "node.status", nil, nil)
	assert.ErrorIs(t, err, rpc.ErrMalformed)

	n.SetFault(nodetest.Fault{Method: "node.status", ErrorCode: rpc.CodeRateLimited, HTTPStatus: 429, RetryAfter: 3 * time.Second})
	err = call(t, n, "node.status", nil, nil)
	d, ok := rpc.RetryAfter(err)
	require.True(t, ok)
	assert.Equal(t, 3*time.Second, d)

	n.DropConnections("node.status")
	err = call(t, n, "node.status", nil, nil)
	assert.ErrorIs(t, err, rpc.ErrUnavailable)

	n.ClearFaults()
	n.SetLatency("", 300*time.Millisecond)
	c, _ := rpc.NewClient(n.URL(), rpc.WithTimeout(50*time.Millisecond), rpc.WithRetry(rpc.RetryPolicy{Attempts: 1}))
	err = c.Read(context.Background(), "node.status", nil, nil)
	assert.ErrorContains(t, err, "no answer within 50ms")

	n.ClearFaults()
	n.SetFault(nodetest.Fault{Method: "/metrics", HTTPStatus: 503, Body: "down"})
	resp, err := http.Get(n.MetricsURL())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode)
}

func TestCallsAreRecorded(t *testing.T) {
	n := nodetest.Start(t)
	require.NoError(t, call(t, n, "ledger.inspect", map[string]string{"account": "treasury_account_id"}, nil))
	calls := n.Calls("ledger.inspect")
	require.Len(t, calls, 1)
	assert.JSONEq(t, `{"account":"treasury_account_id"}`, string(calls[0]))
}

func TestScenarioRegistryAndJSONFiles(t *testing.T) {
	names := nodetest.Scenarios()
	assert.Contains(t, names, "healthy")
	assert.Contains(t, names, "chain-stalled")
	assert.Contains(t, names, "node-syncing", "embedded JSON scenario")

	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	sc, err := nodetest.LookupScenario("node-syncing", now)
	require.NoError(t, err)
	assert.True(t, sc.Chain.Syncing)
	assert.Equal(t, 3, sc.Chain.Peers)
	assert.Equal(t, now.Unix()-100, sc.Chain.Accounts["treasury_account_id"].UpdatedAt, "times shift to the load instant")
	assert.NotEmpty(t, sc.Chain.Version, "fields the file does not set come from its base")

	// A scenario written by MarshalScenario loads back, shifted.
	orig := nodetest.Healthy(t0)
	orig.Name = "mine"
	raw, err := nodetest.MarshalScenario(orig, t0)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "mine.json")
	require.NoError(t, os.WriteFile(path, raw, 0o600))
	back, err := nodetest.LookupScenario(path, t0.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "mine", back.Name)
	assert.Equal(t, orig.Chain.Accounts["treasury_account_id"].UpdatedAt+3600, back.Chain.Accounts["treasury_account_id"].UpdatedAt)

	_, err = nodetest.LookupScenario("no-such-scenario", now)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "known: ")

	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"name":"x","chian":{}}`), 0o600))
	_, err = nodetest.LookupScenario(bad, now)
	require.Error(t, err)
	assert.Contains(t, err.Error(), bad)
	assert.Contains(t, err.Error(), `unknown field "chian"`)

	_, err = nodetest.ParseScenario([]byte(`{"base":"nope"}`), "x.json", now)
	assert.ErrorContains(t, err, `unknown base "nope"`)
}

func TestUpdateChangesServedState(t *testing.T) {
	n := nodetest.Start(t)
	n.Update(func(s *nodetest.Scenario) { s.Chain.Peers = 0; s.Chain.Syncing = true })
	var st map[string]any
	require.NoError(t, call(t, n, "node.status", nil, &st))
	assert.Equal(t, float64(0), st["peers"])
	assert.Equal(t, true, st["syncing"])
	assert.Equal(t, 0, n.Scenario().Chain.Peers)
}

func TestListenErrorIsClear(t *testing.T) {
	n := nodetest.Start(t)
	_, err := nodetest.New(nodetest.WithAddr(n.Addr()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listen on "+n.Addr())
}

// Every area pages the same way (PROTOCOL.md section 1): limit 1..500 (default
// 50), an opaque integer cursor, next_cursor null at the end.
func TestListPaging(t *testing.T) {
	n := nodetest.Start(t)
	err := call(t, n, "gov.treasury.disbursements", map[string]any{"limit": 501}, nil)
	assert.ErrorIs(t, err, rpc.ErrInvalidParams)
	assert.ErrorContains(t, err, `param "limit"`)

	var all struct {
		Total int `json:"total"`
	}
	require.NoError(t, call(t, n, "gov.treasury.disbursements", nil, &all))
	seen := map[int64]bool{}
	var cursor *int64
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "paging must end")
		params := map[string]any{"limit": 2}
		if cursor != nil {
			params["cursor"] = *cursor
		}
		var page struct {
			Disbursements []struct {
				ID int64 `json:"id"`
			} `json:"disbursements"`
			NextCursor *int64 `json:"next_cursor"`
		}
		require.NoError(t, call(t, n, "gov.treasury.disbursements", params, &page))
		assert.LessOrEqual(t, len(page.Disbursements), 2)
		for _, d := range page.Disbursements {
			assert.False(t, seen[d.ID], "id %d served twice", d.ID)
			seen[d.ID] = true
		}
		if page.NextCursor == nil {
			break
		}
		cursor = page.NextCursor
	}
	assert.Len(t, seen, all.Total, "every disbursement once")
}

// A Source follows the node's fake clock: after Advance it holds the whole
// window, so a 10-minute increase is Prometheus' number, and an Integer counter
// steps as a real one.
func TestSourceFollowsTheFakeClock(t *testing.T) {
	ctx := context.Background()
	clock := nodetest.NewFakeClock(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	sc := nodetest.Healthy(clock.Now())
	sc.Metrics = append(sc.Metrics, nodetest.Metric{Name: "steps_total", Type: "counter",
		Series: []nodetest.Series{{Value: 7, PerSecond: 1.0 / 120, Integer: true}}})
	n := nodetest.Start(t, nodetest.WithClock(clock.Now), nodetest.WithScenario(sc))
	src, err := nodetest.NewSource(ctx, n, clock, 0)
	require.NoError(t, err)
	defer src.Close()

	rr, err := src.Samples(ctx, promq.Select("steps_total"), time.Hour)
	require.NoError(t, err)
	require.Len(t, rr.Matrix, 1)
	require.Len(t, rr.Matrix[0].Values, 1, "one sample before any Advance")

	require.NoError(t, src.Advance(ctx, 10*time.Minute))
	assert.Equal(t, clock.Now(), time.Date(2026, 12, 1, 3, 10, 0, 0, time.UTC))
	rr, err = src.Samples(ctx, promq.Select("steps_total"), time.Hour)
	require.NoError(t, err)
	vals := rr.Matrix[0].Values
	require.Len(t, vals, 41, "a scrape every 15 s over 10 minutes, plus the first")
	assert.Equal(t, 7.0, float64(vals[0].Value))
	assert.Equal(t, 7.0, float64(vals[7].Value), "flat for the first two minutes")
	assert.Equal(t, 8.0, float64(vals[8].Value), "one step at 120 s")
	assert.Equal(t, 12.0, float64(vals[40].Value))

	res, err := src.Increase(ctx, promq.Select("block_height_total"), 5*time.Minute)
	require.NoError(t, err)
	v, ok := res.Value()
	require.True(t, ok)
	assert.InDelta(t, 300, v, 1e-9, "one block a second over the full window")
	assert.Empty(t, res.Warnings)
}
