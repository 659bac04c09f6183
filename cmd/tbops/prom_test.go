package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/promtest"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// A fleet behind one real Prometheus: doctor asks about each node's own series
// (scoped by instance), so one node's missed wakeups do not show on the other.
func TestDoctorFleetWithOnePrometheusScopesEachNode(t *testing.T) {
	good := nodetest.Start(t)
	bad := nodetest.Start(t, nodetest.WithScenarioName("runtime-missed-wakeups"))
	prom := promtest.Start(t, good.MetricsURL(), bad.MetricsURL())
	p, err := promq.NewPrometheus(prom)
	require.NoError(t, err)
	ctx := context.Background()
	// Wait until Prometheus has a few samples of both nodes' counters.
	deadline := time.Now().Add(30 * time.Second)
	for {
		rr, err := p.Samples(ctx, promq.Select("runtime_read_without_ready_total"), time.Minute)
		if err == nil && len(rr.Matrix) == 2 && len(rr.Matrix[0].Values) >= 3 && len(rr.Matrix[1].Values) >= 3 {
			break
		}
		require.True(t, time.Now().Before(deadline), "Prometheus did not scrape both nodes in time")
		time.Sleep(500 * time.Millisecond)
	}

	code, out, errOut := runCLI(t, nil, "doctor", "--prom", prom, "--rpc", good.URL(), "--rpc", bad.URL(), "-o", "json")
	var res doctorResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), errOut)
	// A few seconds of history do not decide the 15-minute rules, but the
	// values show whose series each report read.
	status, read := map[string]string{}, map[string]float64{}
	for _, r := range res.Reports {
		if r.Runbook == "runtime-reactor" {
			status[r.Target] = string(r.Status)
			read[r.Target] = readIncrease(t, r)
			assert.Contains(t, r.Scope, `{instance="`, "the report shows the scope of its queries")
		}
	}
	assert.Equal(t, map[string]string{good.URL(): "unknown", bad.URL(): "unknown"}, status)
	assert.Equal(t, 0.0, read[good.URL()], "the healthy node is judged on its own series")
	assert.Greater(t, read[bad.URL()], 0.0)
	assert.Equal(t, 3, code)

	// One node behind the same Prometheus is scoped too: the bad node's series
	// never reach the good node's report.
	_, out, errOut = runCLI(t, nil, "doctor", "--prom", prom, "--rpc", good.URL(), "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &res), errOut)
	for _, r := range res.Reports {
		if r.Runbook == "runtime-reactor" {
			assert.NotContains(t, []string{"warning", "critical"}, string(r.Status), "single node judged on the fleet's series: %v", r.Warnings)
			assert.Equal(t, 0.0, readIncrease(t, r), "single node judged on the fleet's series")
			assert.Contains(t, r.Scope, `{instance="`+good.Addr()+`"}`, "a single node is scoped by its instance")
		}
	}

	// --prom-match overrides the automatic scope: here, the bad node for both.
	_, out, _ = runCLI(t, nil, "doctor", "--prom", prom, "--prom-match", "instance="+bad.Addr(),
		"--rpc", good.URL(), "--rpc", bad.URL(), "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	for _, r := range res.Reports {
		if r.Runbook == "runtime-reactor" {
			assert.Greater(t, readIncrease(t, r), 0.0, r.Target)
		}
	}
}

// readIncrease is the runtime-reactor report's increase of
// runtime_read_without_ready_total over 5m, as its source saw it.
func readIncrease(t *testing.T, r tbops.Report) float64 {
	t.Helper()
	s, ok := r.Symptom("read-without-ready-growing")
	require.True(t, ok)
	require.NotNil(t, s.Value, "%v", r.Warnings)
	return *s.Value
}

func TestPromHeadersReachPrometheus(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("X-Scope-OrgID"))
		mu.Unlock()
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"42"]}]}}`)
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, nil, "query", "--prom", srv.URL+"/prometheus", "--prom-header", "X-Scope-OrgID: ops", "up")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "42\n", out)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"ops"}, got)
}

func TestPromFlagsAreValidated(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "query", "--prom-header", "no-colon", "up")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, `--prom-header "no-colon"`)
	code, _, errOut = runCLI(t, nil, "doctor", "--prom-match", "not a label=x")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "--prom-match")
}
