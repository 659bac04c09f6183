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

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/promq/promtest"
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
	status := map[string]string{}
	for _, r := range res.Reports {
		if r.Runbook == "runtime-reactor" {
			status[r.Target] = string(r.Status)
			for _, s := range r.Symptoms {
				for _, e := range s.Evidence {
					if e.Source == "prometheus" {
						assert.Contains(t, e.Query, `instance="`, "evidence shows the scoped query")
					}
				}
			}
		}
	}
	assert.Equal(t, "ok", status[good.URL()], "the healthy node is judged on its own series")
	assert.Equal(t, "warning", status[bad.URL()])
	assert.Equal(t, 1, code)

	// One node behind the same Prometheus is scoped too: the bad node's series
	// never reach the good node's report.
	_, out, errOut = runCLI(t, nil, "doctor", "--prom", prom, "--rpc", good.URL(), "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &res), errOut)
	for _, r := range res.Reports {
		if r.Runbook == "runtime-reactor" {
			assert.NotContains(t, []string{"warning", "critical"}, string(r.Status), "single node judged on the fleet's series: %v", r.Warnings)
			for _, s := range r.Symptoms {
				for _, e := range s.Evidence {
					if e.Source == "prometheus" {
						assert.Contains(t, e.Query, `instance="`+good.Addr()+`"`, "a single node is scoped by its instance")
					}
				}
			}
		}
	}

	// --prom-match overrides the automatic scope: here, the bad node for both.
	_, out, _ = runCLI(t, nil, "doctor", "--prom", prom, "--prom-match", "instance="+bad.Addr(),
		"--rpc", good.URL(), "--rpc", bad.URL(), "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	for _, r := range res.Reports {
		if r.Runbook == "runtime-reactor" {
			assert.Equal(t, "warning", string(r.Status), r.Target)
		}
	}
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
