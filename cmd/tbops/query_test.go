package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// fakeProm answers /prom/api/v1/query with the body picked by the query.
func fakeProm(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prom/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch q := r.FormValue("query"); q {
		case "1":
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`)
		case "empty":
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		case "bad(":
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}`)
		case "range[1m]":
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"1"],[2,"2.5"]]}]}}`)
		default:
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"market":"a"},"value":[1700000000.5,"0.25"]},{"metric":{"market":"b"},"value":[1700000000.5,"3"]}]},
				"warnings":["partial data: store down"]}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/prom"
}

func TestQueryPrintsFirstValue(t *testing.T) {
	prom := fakeProm(t)
	code, out, errOut := runCLI(t, nil, "query", "--prom", prom, "rate(x[5m])")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "0.25\n", out)
	assert.Equal(t, "tbops: warning: partial data: store down\n", errOut)

	code, out, _ = runCLI(t, map[string]string{"PROMETHEUS_URL": prom}, "query", "empty")
	assert.Equal(t, 0, code)
	assert.Equal(t, "no data\n", out)

	code, out, _ = runCLI(t, map[string]string{"PROMETHEUS_URL": prom}, "query", "range[1m]")
	assert.Equal(t, 0, code)
	assert.Equal(t, "2.5\n", out, "newest value of the first series")

	code, out, _ = runCLI(t, nil, "query", "--prom", prom, "1")
	assert.Equal(t, 0, code)
	assert.Equal(t, "1\n", out)
}

func TestQueryJSON(t *testing.T) {
	prom := fakeProm(t)
	code, out, errOut := runCLI(t, nil, "query", "--prom", prom, "-o", "json", "rate(x[5m])")
	require.Equal(t, 0, code, errOut)
	var got struct {
		URL        string   `json:"url"`
		Query      string   `json:"query"`
		ResultType string   `json:"resultType"`
		Warnings   []string `json:"warnings"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, prom, got.URL)
	assert.Equal(t, "rate(x[5m])", got.Query)
	assert.Equal(t, "vector", got.ResultType)
	assert.Equal(t, []string{"partial data: store down"}, got.Warnings)
	require.Len(t, got.Result, 2)
	assert.Equal(t, "b", got.Result[1].Metric["market"])
	assert.Equal(t, []any{1700000000.5, "3"}, got.Result[1].Value, "the API's own shape")
}

func TestQueryErrorsAreOneLine(t *testing.T) {
	prom := fakeProm(t)
	code, _, errOut := runCLI(t, nil, "query", "--prom", prom, "bad(")
	assert.Equal(t, 3, code)
	assert.Equal(t, `tbops: query "bad(" at `+prom+`/api/v1/query: bad query (HTTP 400, bad_data): 1:5: parse error: unclosed left parenthesis; fix the PromQL expression`+"\n", errOut)

	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	code, _, errOut = runCLI(t, map[string]string{"PROMETHEUS_URL": dead}, "query", "--timeout", "2s", "up")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, `tbops: query "up" at `+dead+`/api/v1/query: metrics server unavailable: `)
	assert.Contains(t, errOut, "; check --prom URL or PROMETHEUS_URL\n")
	assert.Equal(t, 1, strings.Count(errOut, "\n"))

	code, _, errOut = runCLI(t, nil, "query", "--prom", "localhost:9090", "up")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "want http:// or https://")

	code, _, _ = runCLI(t, nil, "query")
	assert.Equal(t, 3, code, "EXPR is required")
}

func newTestApp(env map[string]string) *app {
	return &app{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return env[k] }, timeout: 5 * time.Second}
}

func TestMetricsSourceScrapesTwiceAndKeepsScraping(t *testing.T) {
	node := nodetest.Start(t)
	a := newTestApp(nil)
	ctx := context.Background()
	src, closeSrc, err := a.metricsSource(ctx, node.MetricsURL())
	require.NoError(t, err)
	defer closeSrc()
	assert.Equal(t, "scrape "+node.MetricsURL(), src.Name())
	// Right away, rate is defined: two samples a second apart.
	r, err := src.Rate(ctx, promq.Select("block_height_total"), 5*time.Minute)
	require.NoError(t, err)
	v, ok := r.Value()
	require.True(t, ok, "%v", r.Warnings)
	assert.InDelta(t, 1, v, 0.1, "the node makes one block a second")
	// And it keeps scraping in the background.
	require.Eventually(t, func() bool {
		rr, err := src.Samples(ctx, promq.Select("block_height_total"), time.Minute)
		return err == nil && len(rr.Matrix) == 1 && len(rr.Matrix[0].Values) >= 3
	}, 5*time.Second, 50*time.Millisecond)
}

func TestMetricsSourceErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	ctx := context.Background()

	_, closeSrc, err := newTestApp(nil).metricsSource(ctx, dead+"/metrics")
	require.Error(t, err)
	closeSrc()
	assert.Contains(t, err.Error(), "cannot scrape "+dead+"/metrics: ")
	assert.Contains(t, err.Error(), "connection refused; pass --metrics URL or --prom URL")

	_, _, err = newTestApp(map[string]string{"PROMETHEUS_URL": dead}).metricsSource(ctx, "http://unused/metrics")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot query Prometheus at "+dead+": metrics server unavailable: ")
	assert.Contains(t, err.Error(), "; check --prom URL or PROMETHEUS_URL")

	a := newTestApp(nil)
	a.promURL = fakeProm(t)
	src, closeSrc, err := a.metricsSource(ctx, "http://unused/metrics")
	require.NoError(t, err)
	defer closeSrc()
	assert.Equal(t, "prometheus "+a.promURL+` {instance="unused"}`, src.Name(), "scoped to the node")
	r, err := src.Rate(ctx, promq.Select("x"), time.Minute)
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"a": 0.25, "b": 3}, r.ByLabel("market"))
}
