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
	assert.Contains(t, s, "rc-1  accepted\nrc-2  accepted\n")
	assert.Contains(t, s, `rc-1  rejected duplicate_detection field="receipt_id"`)
	assert.Contains(t, s, `rc-3  rejected duplicate_detection field="nonce" provider "prov-1" already used nonce 2`)
	assert.Contains(t, s, `rc-4  rejected min_payment         field="payment"`)
	assert.Contains(t, s, `rc-5  rejected signature_invalid   field="signature" ed25519 signature does not verify`)
	assert.Contains(t, s, `rc-6  rejected schema_mismatch     field="payment"`)
	assert.Contains(t, s, "accepted=2 schema_mismatch=1 duplicate_detection=2 signature_invalid=1 min_payment=1\n")
	assert.Contains(t, s, `receipt_validation_errors_total{node="example",reason="duplicate_detection"} 2`+"\n")
	assert.Contains(t, s, `receipt_min_payment_rejected_total{node="example"} 1`+"\n")
}
