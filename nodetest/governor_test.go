package nodetest_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"lukechampine.com/blake3"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

func clockAt() func() time.Time { return func() time.Time { return t0 } }

func scrapeText(t *testing.T, n *nodetest.Node) string {
	t.Helper()
	resp, err := http.Get(n.MetricsURL())
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// The sim checks its own files without package governor: compact, BLAKE3 of
// the bytes equals the hash the node serves, and the sidecar verifies.
func TestGovernorDecisionFilesAreCanonicalAndSigned(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithClock(clockAt()))
	dir := n.GovernorDecisionsDir()
	assert.Equal(t, filepath.Join(n.DataDir(), "governor", "decisions"), dir)
	var intents struct {
		Intents []map[string]any `json:"intents"`
	}
	require.NoError(t, call(t, n, "governor.intents", map[string]any{}, &intents))
	require.Len(t, intents.Intents, 4)
	for _, in := range intents.Intents {
		epoch := int64(in["epoch"].(float64))
		raw, err := os.ReadFile(filepath.Join(dir, nodetest.GovernorFileName(epoch)))
		require.NoError(t, err)
		assert.NotContains(t, string(raw), "\n")
		assert.NotContains(t, string(raw), ": ")
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &obj))
		for _, k := range []string{"action", "epoch", "gate", "intent_id", "metrics_raw", "metrics_summary", "params_patch", "reason"} {
			assert.Contains(t, obj, k)
		}
		if _, stored := obj["snapshot_hash"]; !stored {
			sum := blake3.Sum256(raw)
			assert.Equal(t, hex.EncodeToString(sum[:]), in["snapshot_hash"], "intent %v", in["id"])
		}
		var sig map[string]string
		sraw, err := os.ReadFile(filepath.Join(dir, nodetest.GovernorFileName(epoch)) + ".sig")
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(sraw, &sig))
		assert.Equal(t, in["snapshot_hash"], sig["payload_hash_hex"])
		digest, _ := hex.DecodeString(sig["payload_hash_hex"])
		sigBytes, _ := hex.DecodeString(sig["signature_hex"])
		assert.True(t, ed25519.Verify(nodetest.GovernorPublicKey(), digest, sigBytes))
	}
	// The economics file keeps its float literal and escapes as the protocol says.
	raw, err := os.ReadFile(filepath.Join(dir, nodetest.GovernorFileName(9998)))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"reward_ratio":3.0`)
	assert.Contains(t, string(raw), `"note":"größe <b>&amp;</b> ✓"`)
	assert.Contains(t, string(raw), `"tab":"a\tb"`)
	// The data directory goes away with the node.
	require.NoError(t, n.Close())
	_, err = os.Stat(n.DataDir())
	assert.True(t, os.IsNotExist(err))
}

func TestGovernorStatusWireShapes(t *testing.T) {
	for _, sc := range []string{"healthy", "governor-reference"} {
		n := nodetest.Start(t, nodetest.WithClock(clockAt()), nodetest.WithScenarioName(sc))
		var st map[string]json.RawMessage
		require.NoError(t, call(t, n, "governor.status", nil, &st))
		common := []string{"enabled", "shadow_only", "epoch", "window_secs", "last_economics_snapshot_hash", "economics_sample", "gates", "pending"}
		for _, k := range common {
			assert.Contains(t, st, k, sc)
		}
		if sc == "healthy" {
			assert.Contains(t, st, "economics_autopilot")
			assert.Contains(t, st, "telemetry_gauges_ppm")
			require.Error(t, call(t, n, "governor.decisions", nil, nil))
		} else {
			assert.Contains(t, st, "autopilot_enabled")
			assert.Contains(t, st, "economics_prev_market_metrics")
			assert.Contains(t, string(st["gates"]), "ad_targeting_contextual")
			err := call(t, n, "governor.intents", nil, nil)
			assert.ErrorIs(t, err, rpc.ErrMethodNotFound)
			var ds []map[string]any
			require.NoError(t, call(t, n, "governor.decisions", nil, &ds))
			require.NotEmpty(t, ds)
			assert.Contains(t, ds[0], "snapshot_hash_hex")
		}
	}
}

func TestGovernorMethodsRejectBadParams(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithClock(clockAt()))
	for _, c := range []struct {
		method string
		params any
		want   error
	}{
		{"governor.snapshot", map[string]any{}, rpc.ErrInvalidParams},
		{"governor.snapshot", map[string]any{"epoch": -1}, rpc.ErrInvalidParams},
		{"governor.snapshot", map[string]any{"epoch": "x"}, rpc.ErrInvalidParams},
		{"governor.snapshot", map[string]any{"epoch": 3}, rpc.ErrNotFound},
		{"governor.intents", map[string]any{"limit": 501}, rpc.ErrInvalidParams},
		{"governor.submit_intent", map[string]any{"gate": "economics", "action": "enter", "reason": "x"}, rpc.ErrInvalidParams},
		{"governor.submit_intent", map[string]any{"gate": "economics", "action": "exit"}, rpc.ErrInvalidParams},
		{"governor.submit_intent", map[string]any{"gate": "nope", "action": "exit", "reason": "x"}, rpc.ErrInvalidParams},
	} {
		err := call(t, n, c.method, c.params, nil)
		assert.ErrorIs(t, err, c.want, "%s %v", c.method, c.params)
	}
	var in map[string]any
	require.NoError(t, call(t, n, "governor.submit_intent", map[string]any{"gate": "economics", "action": "exit", "reason": "x"}, &in))
	assert.Equal(t, float64(10_001), in["epoch"])
	_, err := os.Stat(filepath.Join(n.GovernorDecisionsDir(), nodetest.GovernorFileName(10_001)))
	assert.NoError(t, err, "the exit decision is written")
}

func TestGovernorScenariosRoundTripAsJSON(t *testing.T) {
	for _, name := range []string{"governor-healthy", "governor-hash-mismatch", "governor-gauge-drift", "governor-telemetry-missing", "governor-shadow-mode", "governor-reference"} {
		sc, err := nodetest.LookupScenario(name, t0)
		require.NoError(t, err)
		raw, err := nodetest.MarshalScenario(sc, t0)
		require.NoError(t, err)
		back, err := nodetest.ParseScenario(raw, name+".json", t0)
		require.NoError(t, err)
		a, _ := json.Marshal(sc.Governor)
		b, _ := json.Marshal(back.Governor)
		assert.JSONEq(t, string(a), string(b), name)
		// And the node serves the same hashes from the round-tripped scenario.
		n1 := nodetest.Start(t, nodetest.WithClock(clockAt()), nodetest.WithScenario(sc))
		n2 := nodetest.Start(t, nodetest.WithClock(clockAt()), nodetest.WithScenario(back))
		var s1, s2 map[string]any
		require.NoError(t, call(t, n1, "governor.status", nil, &s1))
		require.NoError(t, call(t, n2, "governor.status", nil, &s2))
		assert.Equal(t, s1["last_economics_snapshot_hash"], s2["last_economics_snapshot_hash"], name)
	}
}

func TestGovernorGaugesMirrorTheSample(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithClock(clockAt()), nodetest.WithScenarioName("governor-gauge-drift"))
	body := scrapeText(t, n)
	assert.Contains(t, body, "economics_epoch_tx_count 48370\n", "48120 + drift 250")
	assert.Contains(t, body, "economics_block_reward_per_block 12\n")
	assert.Contains(t, body, `economics_prev_market_metrics_utilization_ppm{market="storage"} 627000`)
	assert.Contains(t, body, `ad_gate_streak_windows{tier="presence"} 2`)
	assert.Contains(t, body, `ad_cost_basis_usd_micros{component="total"} 850`)
	// WriteGovernorFiles follows an Update.
	n.Update(func(s *nodetest.Scenario) { s.Governor.Decisions[0].Reason = "changed" })
	require.NoError(t, n.WriteGovernorFiles())
	raw, err := os.ReadFile(filepath.Join(n.GovernorDecisionsDir(), nodetest.GovernorFileName(9994)))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"reason":"changed"`)
}

func TestGovernorTelemetryMissingExportsNoEconomicsGauges(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithClock(clockAt()), nodetest.WithScenarioName("governor-telemetry-missing"))
	body := scrapeText(t, n)
	assert.NotContains(t, body, "economics_")
	assert.Contains(t, body, "block_height_total ", "the node itself is scraped")
	assert.Contains(t, body, `ad_gate_streak_windows{tier="presence"} 2`, "only the economics gauges are gone")
	var st map[string]any
	require.NoError(t, call(t, n, "governor.status", nil, &st))
	assert.Len(t, st["last_economics_snapshot_hash"], 64, "the governor still decides")
}
