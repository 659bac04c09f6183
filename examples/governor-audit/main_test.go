package main

import (
	"bytes"
	"context"
	"strings"
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
	// Only the edited file is reported, with both hashes.
	assert.Contains(t, s, "TAMPERED epoch-00000000000000000002.json\n"+
		"  stored   072e517771786e4ce53baf7d841d8c067f77a4663a212ba866ad2569e58e3f06\n"+
		"  computed f4fa26b3b3bf844fe3a61ed2a5a2799f9cac3e5e4a1bf08c07a38db5aaf8e746\n")
	assert.NotContains(t, s, "TAMPERED epoch-00000000000000000001.json")
	assert.Contains(t, s, "verify: files=3 ok=2 failed=1")

	assert.Contains(t, s, "audit status: critical")
	assert.Contains(t, s, "firing: signature-invalid (critical)")
	assert.Contains(t, s, `firing: status-hash-mismatch (critical)
  {"decision":"epoch-00000000000000009998.json","decision_hash":"dd39793ca3610d74f4ba5ccca7fc71d8011587732577598f72485ec49c2f264c","status_hash":"fd6d2c50d4ad919a39de7f8f5fc905312298ca07b30344053e46e474ad2bcafe"}`)
	assert.Contains(t, s, `"intent":"econ-9998","intent_hash":"fd6d2c50d4ad919a39de7f8f5fc905312298ca07b30344053e46e474ad2bcafe"`)
	assert.Contains(t, s, `"gauge":"economics_block_reward_per_block"`)
	assert.Contains(t, s, `"gauge_value":12,"field":"block_reward"`)
	assert.Contains(t, s, `"field_value":13`)

	assert.Contains(t, s, "rollback submit: done: exit intent economics-exit-10001 submitted")
	assert.Contains(t, s, "rollback check: done: economics_autopilot is still true")
	assert.Equal(t, 3, strings.Count(s, "rollback config: todo on the governor's host"))
}
