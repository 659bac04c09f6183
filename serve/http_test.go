package serve_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/serve"
)

// noSource is WithSource for tests whose runbooks need no metrics.
func noSource(serve.Node) (promq.Source, error) { return nil, nil }

// fixed is a runbook factory whose runbooks return the report f makes for
// the node.
func fixed(id string, f func(n serve.Node) tbops.Report) serve.Runbooks {
	return func(n serve.Node, _ promq.Source) []tbops.Runbook {
		return []tbops.Runbook{tbops.Func(id, func(context.Context) (tbops.Report, error) { return f(n), nil })}
	}
}

func report(id string, n serve.Node, symptoms ...tbops.Symptom) tbops.Report {
	r := tbops.NewReport(id, n.URL, t0)
	r.Symptoms = symptoms
	r.Finalize()
	return r
}

func TestHTTPIsReadOnlyAndBounded(t *testing.T) {
	nodes := []serve.Node{{URL: "http://node-a.invalid:3030/"}}
	srv, err := serve.New(context.Background(), nodes, fixed("r", func(n serve.Node) tbops.Report {
		return report("r", n, tbops.Symptom{ID: "s", Status: tbops.StatusOK})
	}), serve.WithSource(noSource), serve.WithClock(func() time.Time { return t0 }))
	require.NoError(t, err)
	defer srv.Close()
	web := httptest.NewServer(srv.Handler())
	defer web.Close()
	require.NoError(t, srv.RunOnce(context.Background()))

	for _, path := range []string{"/", "/metrics", "/probe?target=x", "/api/v1/reports", "/api/v1/history", "/healthz", "/report", "/nope"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			req, _ := http.NewRequest(method, web.URL+path, strings.NewReader("x"))
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", method, path)
			assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
		}
	}
	resp, err := http.Head(web.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "HEAD is answered")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))

	code, _ := get(t, web.URL+"/nope")
	assert.Equal(t, http.StatusNotFound, code)
	code, body := get(t, web.URL+"/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)

	code, body = get(t, web.URL+"/api/v1/reports?node=http://other:1/")
	assert.Equal(t, http.StatusNotFound, code)
	assert.JSONEq(t, `{"error":"node \"http://other:1/\" is not one of the 1 nodes served here"}`, body)
	code, body = get(t, web.URL+"/api/v1/reports?runbook=nope")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, `known: r`)
	code, body = get(t, web.URL+"/api/v1/history?since=yesterday")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "RFC 3339")
	code, _ = get(t, web.URL+"/api/v1/history?limit=0")
	assert.Equal(t, http.StatusBadRequest, code)
	code, body = get(t, web.URL+"/report?node=http://node-a.invalid:3030/")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, "want /report?node=…&runbook=…")

	// The bounded server Serve uses refuses an oversized header.
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	cancel()
	require.NoError(t, <-done)
}

func TestProbeIsLimitedToConfiguredNodes(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	f := startFleet(t, clk)
	other := nodetest.Start(t, nodetest.WithClock(clk.Now))
	s := startServe(t, f, nil)
	require.NoError(t, s.srv.Scrape(ctx))

	// A configured node, named by its URL or its label.
	code, body := get(t, s.web.URL+"/probe?target="+url.QueryEscape(f.healthy.URL))
	require.Equal(t, 200, code, body)
	v, _ := metricValue(t, body, serve.MetricProbeSuccess, nil)
	assert.Equal(t, 1.0, v)
	v, ok := statusOf(t, body, f.healthy.Label(), versionRunbook)
	assert.True(t, ok && v == 0, body)

	// The dead node's runbooks ran (their verdict is unknown): the probe succeeded.
	code, body = get(t, s.web.URL+"/probe?target="+url.QueryEscape(f.dead.URL))
	require.Equal(t, 200, code, body)
	v, _ = statusOf(t, body, f.dead.Label(), versionRunbook)
	assert.Equal(t, 3.0, v)

	// Anything else is refused: serve is not an open proxy.
	code, body = get(t, s.web.URL+"/probe?target="+url.QueryEscape(other.URL()))
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, "not one of the 4 nodes served here")
	code, body = get(t, s.web.URL+"/probe?target="+url.QueryEscape("http://admin:hunter2@10.0.0.1:3030/"))
	assert.Equal(t, http.StatusForbidden, code)
	assert.NotContains(t, body, "hunter2", "credentials are never echoed")
	assert.NotContains(t, body, "admin")
	code, _ = get(t, s.web.URL+"/probe")
	assert.Equal(t, http.StatusBadRequest, code)
	code, body = get(t, s.web.URL+"/probe?runbook=nope&target="+url.QueryEscape(f.healthy.URL))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "no runbook")

	// With WithProbeAny, any http(s) target, still never echoing its password.
	open := startServe(t, f, nil, serve.WithProbeAny(true))
	code, body = get(t, open.web.URL+"/probe?target="+url.QueryEscape(other.URL()))
	require.Equal(t, 200, code, body)
	v, _ = metricValue(t, body, serve.MetricProbeSuccess, nil)
	assert.Equal(t, 1.0, v)
	v, ok = statusOf(t, body, other.URL(), versionRunbook)
	assert.True(t, ok && v == 0, body)
	for _, bad := range []string{"ftp://x/", "file:///etc/passwd", "http://", "not a url"} {
		code, body = get(t, open.web.URL+"/probe?target="+url.QueryEscape(bad))
		assert.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, body)
	}
	withPassword := strings.Replace(other.URL(), "http://", "http://admin:hunter2@", 1)
	code, body = get(t, open.web.URL+"/probe?target="+url.QueryEscape(withPassword))
	require.Equal(t, 200, code, body)
	assert.NotContains(t, body, "hunter2")
	assert.NotContains(t, body, "admin")
}

func TestProbeConcurrencyAndDeadline(t *testing.T) {
	started := make(chan struct{}, 8)
	block := func(ctx context.Context) (tbops.Report, error) {
		started <- struct{}{}
		<-ctx.Done()
		return tbops.Report{}, ctx.Err()
	}
	rbs := func(n serve.Node, _ promq.Source) []tbops.Runbook { return []tbops.Runbook{tbops.Func("slow", block)} }
	srv, err := serve.New(context.Background(), []serve.Node{{URL: "http://node-a.invalid:3030/"}}, rbs,
		serve.WithSource(noSource), serve.WithProbeConcurrency(1))
	require.NoError(t, err)
	defer srv.Close()
	web := httptest.NewServer(srv.Handler())
	defer web.Close()

	// The first probe holds the only slot until its deadline: Prometheus'
	// scrape timeout header, less the offset.
	var wg sync.WaitGroup
	var firstBody string
	wg.Add(1)
	go func() {
		defer wg.Done()
		req, _ := http.NewRequest(http.MethodGet, web.URL+"/probe?target=http://node-a.invalid:3030/", nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "1")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			firstBody = string(b)
		}
	}()
	<-started
	code, body := get(t, web.URL+"/probe?target=http://node-a.invalid:3030/")
	assert.Equal(t, http.StatusServiceUnavailable, code, "a second probe while the only slot is taken: %s", body)
	wg.Wait()
	v, ok := metricValue(t, firstBody, serve.MetricProbeSuccess, nil)
	assert.True(t, ok && v == 0, "a runbook that could not finish: the probe failed\n%s", firstBody)
	v, _ = statusOf(t, firstBody, "http://node-a.invalid:3030/", "slow")
	assert.Equal(t, 3.0, v)
}

func TestPageRendersNodeTextInert(t *testing.T) {
	n := serve.Node{URL: "http://node-a.invalid:3030/"}
	srv, err := serve.New(context.Background(), []serve.Node{n}, fixed("r", func(n serve.Node) tbops.Report {
		r := report("r", n, tbops.Symptom{ID: "s", Summary: `<script>alert(1)</script><img src=x onerror=alert(2)>`,
			Firing: true, Status: tbops.StatusCritical, Detail: tbops.RawOf(`"><script>alert(3)</script>`)})
		r.Warnings = []string{`<iframe src="javascript:alert(4)">`}
		r.Paths = []tbops.Path{{ID: "A", Title: "<b>t</b>", Matched: true, Why: "<i>w</i>",
			Actions: []tbops.Action{{Kind: "check", Command: `echo "</pre><script>alert(5)</script>"`, DryRun: true}}}}
		return r
	}), serve.WithSource(noSource))
	require.NoError(t, err)
	defer srv.Close()
	web := httptest.NewServer(srv.Handler())
	defer web.Close()
	require.NoError(t, srv.RunOnce(context.Background()))

	for _, path := range []string{"/", "/report?node=" + url.QueryEscape(n.URL) + "&runbook=r"} {
		code, body := get(t, web.URL+path)
		require.Equal(t, 200, code, body)
		for _, bad := range []string{"<script", "<img", "<iframe", "<b>t</b>", "<i>w</i>"} {
			assert.NotContains(t, body, bad, path)
		}
		assert.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;", path)
	}
}

func TestSlowNodeNeverHoldsUpTheOthers(t *testing.T) {
	slow := serve.Node{URL: "http://slow.invalid:3030/"}
	fast := serve.Node{URL: "http://fast.invalid:3030/"}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var mu sync.Mutex
	runs := map[string]int{}
	rbs := func(n serve.Node, _ promq.Source) []tbops.Runbook {
		return []tbops.Runbook{tbops.Func("r", func(ctx context.Context) (tbops.Report, error) {
			if n == slow {
				entered <- struct{}{}
				<-release
			}
			mu.Lock()
			runs[n.URL]++
			mu.Unlock()
			return report("r", n, tbops.Symptom{ID: "s", Status: tbops.StatusOK}), nil
		})}
	}
	srv, err := serve.New(context.Background(), []serve.Node{slow, fast}, rbs, serve.WithSource(noSource), serve.WithWorkers(2))
	require.NoError(t, err)
	defer srv.Close()

	first := make(chan error, 1)
	go func() { first <- srv.RunOnce(context.Background()) }()
	<-entered
	// The slow node's run is still in flight: later rounds skip it and run
	// the fast node without waiting for it (a round that waited would never
	// return here).
	fastRuns := func() int {
		mu.Lock()
		defer mu.Unlock()
		return runs[fast.URL]
	}
	for fastRuns() < 3 {
		require.NoError(t, srv.RunOnce(context.Background()))
	}
	mu.Lock()
	assert.Equal(t, 0, runs[slow.URL], "the slow node is still in its first run")
	mu.Unlock()
	close(release)
	require.NoError(t, <-first)
	mu.Lock()
	assert.Equal(t, 1, runs[slow.URL], "the slow node ran once, not once per round")
	mu.Unlock()
}

func TestRunTimeoutMakesAStuckRunUnknown(t *testing.T) {
	n := serve.Node{URL: "http://stuck.invalid:3030/"}
	rbs := func(n serve.Node, _ promq.Source) []tbops.Runbook {
		return []tbops.Runbook{tbops.Func("r", func(ctx context.Context) (tbops.Report, error) {
			<-ctx.Done()
			return tbops.Report{}, ctx.Err()
		})}
	}
	srv, err := serve.New(context.Background(), []serve.Node{n}, rbs, serve.WithSource(noSource), serve.WithRunTimeout(20*time.Millisecond))
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, srv.RunOnce(context.Background()))
	snap := srv.Reports("", "")
	require.Len(t, snap.Reports, 1)
	assert.Equal(t, tbops.StatusUnknown, snap.Reports[0].Status)
	assert.Contains(t, strings.Join(snap.Reports[0].Warnings, "\n"), "diagnosis failed: context deadline exceeded")
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}
