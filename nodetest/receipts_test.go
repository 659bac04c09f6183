package nodetest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/nodetest"
)

// rpcCall posts one JSON-RPC request over plain HTTP and returns the envelope.
func receiptsRPC(t *testing.T, n *nodetest.Node, method string, params any) map[string]any {
	t.Helper()
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	require.NoError(t, err)
	resp, err := http.Post(n.URL(), "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var env map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	return env
}

func receiptsMetric(t *testing.T, n *nodetest.Node, series string) float64 {
	t.Helper()
	resp, err := http.Get(n.MetricsURL())
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, v, ok := strings.Cut(sc.Text(), " "); ok && name == series {
			var f float64
			require.NoError(t, json.Unmarshal([]byte(v), &f))
			return f
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

func TestReceiptsWireShapes(t *testing.T) {
	clk := nodetest.NewFakeClock(time.Unix(1_765_000_000, 0))
	n := nodetest.Start(t, nodetest.WithClock(clk.Now))
	clk.Advance(10 * time.Second)

	env := receiptsRPC(t, n, "receipts.stats", map[string]any{"market": "storage"})
	res := env["result"].(map[string]any)
	for _, k := range []string{"market", "emitted_total", "last_emitted_height", "pending", "validation_errors", "min_payment_rejected_total"} {
		assert.Contains(t, res, k)
	}
	assert.Equal(t, float64(4_210_000+120), res["emitted_total"])
	assert.Equal(t, float64(1_200_010), res["last_emitted_height"])
	ve := res["validation_errors"].(map[string]any)
	assert.Len(t, ve, 3)

	assert.Equal(t, 4_210_000.0+120, receiptsMetric(t, n, `receipt_emitted_total{market="storage"}`))
	assert.Equal(t, 3.0, receiptsMetric(t, n, `receipt_validation_errors_total{reason="schema_mismatch"}`))
	assert.Equal(t, 2.0, receiptsMetric(t, n, `receipt_min_payment_rejected_total`))

	env = receiptsRPC(t, n, "receipts.validate", map[string]any{"from_block": 1_200_000, "to_block": 1_200_009})
	res = env["result"].(map[string]any)
	assert.Equal(t, float64(450), res["checked"])
	assert.Equal(t, []any{}, res["invalid"])

	env = receiptsRPC(t, n, "receipts.reset_validation_state", map[string]any{})
	assert.Equal(t, map[string]any{"ok": true}, env["result"])
	assert.Equal(t, 1, n.Scenario().Receipts.Resets)
}

func TestReceiptsBadParams(t *testing.T) {
	n := nodetest.Start(t)
	for _, c := range []struct {
		method string
		params any
		want   string
	}{
		{"receipts.stats", map[string]any{"market": "gas"}, `param "market": unknown market "gas"`},
		{"receipts.stats", map[string]any{}, `param "market" is required`},
		{"receipts.stats", map[string]any{"market": 3}, `"market"`},
		{"receipts.stats", map[string]any{"market": "ad", "x": 1}, `unknown param "x"`},
		{"receipts.validate", map[string]any{}, `param "from_block" is required`},
		{"receipts.validate", map[string]any{"from_block": -1}, `param "from_block": -1 is negative`},
		{"receipts.validate", map[string]any{"from_block": 10, "to_block": 5}, `param "from_block": 10 is above to_block 5`},
		{"receipts.validate", map[string]any{"from_block": 0}, `over the limit`},
		{"receipts.validate", map[string]any{"from_block": 1.5}, `"from_block"`},
	} {
		env := receiptsRPC(t, n, c.method, c.params)
		e, ok := env["error"].(map[string]any)
		require.True(t, ok, "%s %v: %v", c.method, c.params, env)
		assert.Equal(t, float64(-32602), e["code"])
		assert.Contains(t, e["message"], c.want)
	}
}

func TestReceiptsScenarios(t *testing.T) {
	names := nodetest.Scenarios()
	for _, s := range []string{"receipts-healthy", "receipts-low-volume", "receipts-explorer-lag", "receipts-market-stalled",
		"receipts-validation-errors", "receipts-chain-stalled", "receipts-min-payment-spike"} {
		assert.Contains(t, names, s)
	}
	clk := nodetest.NewFakeClock(time.Unix(1_765_000_000, 0))

	stalled := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName("receipts-chain-stalled"))
	before := receiptsMetric(t, stalled, `receipt_emitted_total{market="ad"}`)
	clk.Advance(time.Minute)
	assert.Equal(t, before, receiptsMetric(t, stalled, `receipt_emitted_total{market="ad"}`), "no blocks, no receipts")
	assert.Equal(t, 1_200_000.0, receiptsMetric(t, stalled, `block_height_total`))

	spike := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName("receipts-min-payment-spike"))
	clk.Advance(10 * time.Second)
	assert.Equal(t, 2.0+500, receiptsMetric(t, spike, `receipt_min_payment_rejected_total`))

	// A scenario survives a JSON round trip (sim files).
	sc, err := nodetest.LookupScenario("receipts-validation-errors", clk.Now())
	require.NoError(t, err)
	raw, err := nodetest.MarshalScenario(sc, clk.Now())
	require.NoError(t, err)
	back, err := nodetest.ParseScenario(raw, "x.json", clk.Now())
	require.NoError(t, err)
	assert.Equal(t, sc.Receipts, back.Receipts)
}

// A low-volume market's counter steps by whole receipts, and receipts.stats
// says the block of the newest one: 0 to 2 blocks ago at one receipt every 3
// blocks, never "now" while the counter is flat.
func TestReceiptsLowVolume(t *testing.T) {
	clk := nodetest.NewFakeClock(time.Unix(1_765_000_000, 0))
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName("receipts-low-volume"))
	for i := 0; i < 9; i++ {
		res := receiptsRPC(t, n, "receipts.stats", map[string]any{"market": "compute"})["result"].(map[string]any)
		tip := receiptsRPC(t, n, "node.status", nil)["result"].(map[string]any)["current_block_height"].(float64)
		assert.Equal(t, float64(90_000+i/3), res["emitted_total"], "after %ds", i)
		assert.Equal(t, float64(90_000+i/3), receiptsMetric(t, n, `receipt_emitted_total{market="compute"}`), "a whole count after %ds", i)
		assert.Equal(t, float64(i%3), tip-res["last_emitted_height"].(float64), "blocks since the last receipt after %ds", i)
		clk.Advance(time.Second)
	}
}

func TestReceiptsExplorerLag(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenarioName("receipts-explorer-lag"))
	resp, err := http.Get(n.ExplorerURL())
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]int64
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	tip := receiptsRPC(t, n, "node.status", nil)["result"].(map[string]any)["current_block_height"].(float64)
	assert.InDelta(t, tip-45, float64(body["latest_receipt_height"]), 1, "45 blocks behind (a block may pass between the calls)")
}
