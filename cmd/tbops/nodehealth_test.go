package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

// doctorNodeHealth runs doctor -o json with args and returns its node-health report.
func doctorNodeHealth(t *testing.T, args ...string) tbops.Report {
	t.Helper()
	_, out, errOut := runCLI(t, nil, append([]string{"doctor", "-o", "json"}, args...)...)
	var res doctorResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), "stderr: %s", errOut)
	reportcheck.Valid(t, res.Reports...)
	for _, r := range res.Reports {
		if r.Runbook == "node-health" {
			return r
		}
	}
	t.Fatalf("no node-health report in %s", out)
	return tbops.Report{}
}

// The reproduction (#12.4): a node that answers JSON-RPC but not
// node.status was CRITICAL rpc-unreachable. It is reachable, and what it does
// not serve is unknown, by method name.
func TestDoctorNodeWithoutNodeStatusIsReachable(t *testing.T) {
	n := nodetest.Start(t)
	n.FailMethod("node.status", rpc.CodeMethodNotFound, "Method not found")
	r := doctorNodeHealth(t, "--rpc", n.URL())
	assert.Equal(t, tbops.StatusUnknown, r.Status, "warnings %v", r.Warnings)
	reach, _ := r.Symptom("rpc-unreachable")
	assert.False(t, reach.Firing, "detail %s", reach.Detail)
	syncing, _ := r.Symptom("syncing")
	assert.Equal(t, tbops.StatusUnknown, syncing.Status)
	assert.Contains(t, syncing.Detail.String(), "node.status")
}

// The reference node: no node.* method, the height from its block_height gauge.
func TestDoctorReferenceNode(t *testing.T) {
	r := doctorNodeHealth(t, "--scenario", "node-reference")
	assert.Equal(t, tbops.StatusUnknown, r.Status, "warnings %v", r.Warnings)
	reach, _ := r.Symptom("rpc-unreachable")
	assert.Equal(t, tbops.StatusOK, reach.Status)
	progress, _ := r.Symptom("height-not-progressing")
	assert.Equal(t, tbops.StatusOK, progress.Status, "decided from the gauge over doctor's two scrapes")
	var height []string
	for _, s := range r.Steps {
		if s.ID == "block-height" {
			height = s.Findings
		}
	}
	require.Len(t, height, 1)
	assert.Contains(t, height[0], "(block_height; node.status gave none)")
}
