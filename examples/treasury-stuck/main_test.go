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
	assert.Contains(t, s, "round 1: status warning")
	assert.Contains(t, s, "firing: stale-disbursements (warning")
	assert.Contains(t, s, "path A matched: Dependency issue")
	assert.Contains(t, s, "plan (dry_run=true): tbops treasury rollback --id 4541 --reason 'Dependency 4540 was rolled back'")
	assert.Contains(t, s, "rollback 4541 (dry_run=false): rolled back")
	assert.Contains(t, s, "note: after these rollbacks Path A matches again")
	assert.Contains(t, s, "rollback 4542 (dry_run=false): rolled back")
	// The cascade: 4543 depended on 4541, which round 1 rolled back.
	assert.Contains(t, s, "plan (dry_run=true): tbops treasury rollback --id 4543 --reason 'Dependency 4541 was rolled back'")
	assert.Contains(t, s, "round 3: status ok\n  path A no longer matches")
}
