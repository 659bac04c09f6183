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
	assert.Contains(t, s, "start:\n  runtime.reactor_idle_poll_ms          50  file\n  runtime.io_read_backoff_ms            10  default\n  runtime.io_write_backoff_ms           25  env\n")
	assert.Contains(t, s, "reload ok: idle poll 50ms -> 20ms\n")
	assert.Contains(t, s, "reload error: config node.toml: runtime.io_read_backoff_ms = 0: out of range (allowed 1..10000 ms)\n")
	// The bad file's 10 ms idle poll was not applied: the last good config stays.
	assert.Contains(t, s, "after bad reload (last good kept):\n  runtime.reactor_idle_poll_ms          20  file\n  runtime.io_read_backoff_ms             5  file\n")
	assert.Contains(t, s, "config_reload_total: ok=1 error=1\n")
}
