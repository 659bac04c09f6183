package governor

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"lukechampine.com/blake3"
	"encoding/hex"
)

const protocolVector = `{"action":"enter","epoch":7,"gate":"operational","intent_id":"op-1","metrics_raw":null,"metrics_summary":"ok","params_patch":{},"reason":"tests"}`

func TestProtocolTestVector(t *testing.T) {
	require.Len(t, protocolVector, 145)
	h, err := HashBytes([]byte(protocolVector))
	require.NoError(t, err)
	assert.Equal(t, "4ea8dc130a2256e030f460c604a77f1a76a96a144a1d92ccd51038543cf997b0", h)
	// A canonical file without snapshot_hash hashes to BLAKE3 of its bytes.
	sum := blake3.Sum256([]byte(protocolVector))
	assert.Equal(t, hex.EncodeToString(sum[:]), h)
	// The same object from Go values.
	h2, err := SnapshotHash(map[string]any{"action": "enter", "epoch": 7, "gate": "operational", "intent_id": "op-1",
		"metrics_raw": nil, "metrics_summary": "ok", "params_patch": map[string]any{}, "reason": "tests",
		"snapshot_hash": "ignored", "attestation": map[string]any{"sig": "x"}})
	require.NoError(t, err)
	assert.Equal(t, h, h2)
	_ = json.Number("")
}
