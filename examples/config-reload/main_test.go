package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out))
	s := out.String()
	t.Log(s)
	assert.Contains(t, s, "start:\n  runtime.reactor_idle_poll_ms          50 ms       file\n  runtime.io_read_backoff_ms            10 ms       default\n  runtime.io_write_backoff_ms           25 ms       env\n")
	assert.Contains(t, s, "reload ok: idle poll 50ms -> 20ms, max per peer 100 -> 50\n", "one reload applies both parts")
	assert.Contains(t, s, "reload error: config node.toml: runtime.io_read_backoff_ms = 0: out of range (allowed 1..10000 ms)\n")
	// The bad file's 10 ms idle poll and 80 requests were not applied: the last good config stays.
	assert.Contains(t, s, "after bad reload (last good kept):\n  runtime.reactor_idle_poll_ms          20 ms       file\n  runtime.io_read_backoff_ms             5 ms       file\n")
	assert.Contains(t, s, "  p2p_max_per_sec                       50 requests file\n  p2p_max_bytes_per_sec              65536 bytes    default\n  p2p_chain_sync_interval_ms           500 ms       default\nconfig_reload_total")
	assert.Contains(t, s, "config_reload_total: ok=1 error=1\n")
}
