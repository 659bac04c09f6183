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
	assert.Contains(t, s, "t=  20ms chatty   100B allowed\n")
	// The fourth request passes the nanosecond after the first has been in the
	// window for its whole second; the second 3000 B once the first 3000 B have.
	assert.Contains(t, s, "t=  30ms chatty   100B refused by requests limit, retry after 970.000001ms\n")
	assert.Contains(t, s, "t= 100ms bulky   3000B refused by bytes limit, retry after 900.000001ms\n")
	assert.Contains(t, s, "t=   0ms huge   10000B refused by size limit, retry after 0s\n")
	assert.Contains(t, s, "stats: peers=2 allowed=4 refused requests=1 bytes=1 size=1\n")
	// After raising the limit to 5, chatty keeps its 3: two more pass, not five.
	assert.Contains(t, s, "t=  60ms chatty   100B allowed\n")
	assert.Contains(t, s, "t=  70ms chatty   100B refused by requests limit")
	assert.Contains(t, s, "p2p_max_per_sec = 0: out of range (allowed 1..50000 requests) (still 5)")
	assert.Contains(t, s, "sync ticker: interval=0s running=false\nsync ticker: interval=500ms running=true tick at 12:00:00.500\nsync ticker: interval=0s running=false\n")
}
