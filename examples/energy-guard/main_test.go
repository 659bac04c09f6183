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
	assert.Contains(t, s, "no token     ErrUnauthorized (-33009)\n")
	assert.Contains(t, s, "with token   ok: ")
	assert.Contains(t, s, "burst #1     ok: ")
	assert.Contains(t, s, "burst #2     ErrRateLimited (-33010), retry after ")
	assert.Contains(t, s, "burst #3     ErrRateLimited (-33010), retry after ")
	assert.Contains(t, s, "after wait   ok: ")
	assert.Contains(t, s, "rejected: unauthorized=1 rate_limited=2\n")
	assert.NotContains(t, s, "unexpected error")
}
