package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/serve"
)

// TestMain lets a test run this binary as tbops itself (TBOPS_TEST_MAIN=1),
// to send it real signals, or as a fleet of simulated nodes
// (TBOPS_TEST_FLEET=N), so a benchmark measures serve without them.
func TestMain(m *testing.M) {
	if os.Getenv("TBOPS_TEST_MAIN") == "1" {
		main()
		return
	}
	if n := os.Getenv("TBOPS_TEST_FLEET"); n != "" {
		os.Exit(serveFleet(n))
	}
	os.Exit(m.Run())
}

// serveFleet runs n healthy simulated nodes, prints their RPC URLs one a line
// and then an empty line, and serves them until stdin closes.
func serveFleet(count string) int {
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "TBOPS_TEST_FLEET=%q: want a count\n", count)
		return 2
	}
	for i := 0; i < n; i++ {
		node, err := nodetest.New()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer node.Close()
		fmt.Println(node.URL())
	}
	fmt.Println()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startFleet runs serveFleet in a child process and returns the nodes' URLs.
func startFleet(b *testing.B, n int) []string {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TBOPS_TEST_FLEET="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	cmd.Stderr = os.Stderr
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	var urls []string
	for sc := bufio.NewScanner(stdout); sc.Scan() && sc.Text() != ""; {
		urls = append(urls, sc.Text())
	}
	require.Len(b, urls, n)
	return urls
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServeFleet is serve's work for one interval over 200 simulated
// nodes in another process (two scrapes of every node, every runbook on every
// node), against its peer, one tbops doctor run over the same fleet, in the
// same run. cpu-ms/op is this process's CPU time per op: ÷ 30 s is the share
// of one core serve needs at the default interval.
func BenchmarkServeFleet(b *testing.B) {
	const nodes = 200
	urls := startFleet(b, nodes)
	ctx := context.Background()
	a := &app{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard, timeout: 5 * time.Second}
	hc, err := a.httpClient()
	require.NoError(b, err)
	report := func(b *testing.B, cpu time.Duration) {
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		b.ReportMetric(0, "ns/op") // wall time includes doctor's one-second scrape gap: not the figure
	}
	b.Run("serve-interval", func(b *testing.B) {
		sn := make([]serve.Node, len(urls))
		for i, u := range urls {
			sn[i] = serve.Node{URL: u}
		}
		srv, err := serve.New(ctx, sn, a.serveRunbooks(false, ""), serve.WithScrapeClient(hc), serve.WithUpCheck(a.nodeUp))
		require.NoError(b, err)
		defer srv.Close()
		require.NoError(b, srv.Scrape(ctx))
		b.ResetTimer()
		start := cpuTime(b)
		for i := 0; i < b.N; i++ {
			require.NoError(b, srv.Scrape(ctx))
			require.NoError(b, srv.Scrape(ctx))
			require.NoError(b, srv.RunOnce(ctx))
		}
		report(b, cpuTime(b)-start)
	})
	b.Run("doctor-fleet", func(b *testing.B) {
		b.ResetTimer()
		start := cpuTime(b)
		for i := 0; i < b.N; i++ {
			require.Len(b, a.diagnoseAll(ctx, urls, 64, false, ""), nodes*len(a.runbooks()))
		}
		report(b, cpuTime(b)-start)
	})
}

// BenchmarkServeHistoryMemory fills serve's own history for 200 nodes (the
// default 60 minutes: 242 samples a series) and reports the heap it holds per
// node and per series.
func BenchmarkServeHistoryMemory(b *testing.B) {
	const nodes = 200
	urls := startFleet(b, nodes)
	ctx := context.Background()
	_, body := benchGet(b, strings.TrimRight(urls[0], "/")+"/metrics")
	vec, err := promq.ParseExposition([]byte(body), "text/plain", time.Now())
	require.NoError(b, err)
	series := len(vec) + 1 // and the synthetic up
	sn := make([]serve.Node, len(urls))
	for i, u := range urls {
		sn[i] = serve.Node{URL: u}
	}
	none := func(serve.Node, promq.Source) []tbops.Runbook { return nil }
	for i := 0; i < b.N; i++ {
		before := heapInUse()
		srv, err := serve.New(ctx, sn, none)
		require.NoError(b, err)
		for r := 0; r < int(serve.DefaultHistory/serve.DefaultScrapeInterval)+2; r++ {
			require.NoError(b, srv.Scrape(ctx))
		}
		held := heapInUse() - before
		b.ReportMetric(float64(held)/nodes/1024, "KiB/node")
		b.ReportMetric(float64(held)/nodes/float64(series), "B/series")
		b.ReportMetric(float64(series), "series/node")
		srv.Close()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func benchGet(b *testing.B, url string) (int, string) {
	resp, err := http.Get(url)
	require.NoError(b, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b, err)
	return resp.StatusCode, string(body)
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// waitFor polls until ok says yes; the bound is a hang guard, not a timing.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for guard := time.Now().Add(2 * time.Minute); time.Now().Before(guard); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("gave up waiting for %s", what)
}

// snapshotAt reads /api/v1/reports, ok false while serve is not answering.
func snapshotAt(base string) (serve.Snapshot, bool) {
	var snap serve.Snapshot
	resp, err := http.Get(base + "/api/v1/reports")
	if err != nil {
		return snap, false
	}
	defer resp.Body.Close()
	return snap, resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&snap) == nil
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestServeRunsDoctorsRunbooksOnEveryNode(t *testing.T) {
	healthy := nodetest.Start(t)
	stalled := nodetest.Start(t, nodetest.WithScenarioName("chain-stalled"))
	addr := freeAddr(t)
	state := filepath.Join(t.TempDir(), "state.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"serve", "--listen", addr, "--rpc", healthy.URL(), "--rpc", stalled.URL(),
			"--interval", "1s", "--scrape-interval", "500ms", "--state", state, "--explorer", healthy.ExplorerURL()},
			strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	}()
	base := "http://" + addr
	rbs := len((&app{getenv: func(string) string { return "" }}).runbooks())
	var snap serve.Snapshot
	waitFor(t, "every runbook's first report on both nodes", func() bool {
		var ok bool
		snap, ok = snapshotAt(base)
		return ok && len(snap.Reports) == 2*rbs
	})

	// The same JSON as doctor -o json: status, checked_at, nodes, reports.
	assert.Equal(t, []string{healthy.URL(), stalled.URL()}, snap.Nodes)
	reportcheck.Valid(t, snap.Reports...)
	byNode := map[string]map[string]tbops.Status{}
	for _, r := range snap.Reports {
		if byNode[r.Target] == nil {
			byNode[r.Target] = map[string]tbops.Status{}
		}
		byNode[r.Target][r.Runbook] = r.Status
	}
	assert.Equal(t, tbops.StatusOK, byNode[healthy.URL()]["node-health"])
	assert.Equal(t, tbops.StatusCritical, byNode[stalled.URL()]["node-health"], "consensus stalled")
	assert.Equal(t, tbops.StatusCritical, snap.Status)

	_, m := httpGet(t, base+"/metrics")
	assert.Contains(t, m, `tbops_runbook_status{node="`+stalled.URL()+`",runbook="node-health"} 2`)
	assert.Contains(t, m, `tbops_symptom_firing{node="`+stalled.URL()+`",runbook="node-health",symptom="consensus-unhealthy"} 1`)
	assert.Contains(t, m, `tbops_node_up{node="`+healthy.URL()+`"} 1`)
	c, page := httpGet(t, base+"/")
	assert.Equal(t, 200, c)
	assert.Equal(t, 2, strings.Count(page, "<tr data-node="), "one grid row per node")
	c, probe := httpGet(t, base+"/probe?target="+stalled.URL()+"&runbook=node-health")
	assert.Equal(t, 200, c, probe)
	assert.Contains(t, probe, "probe_success 1")
	assert.Contains(t, probe, `tbops_runbook_status{node="`+stalled.URL()+`",runbook="node-health"} 2`)

	cancel()
	assert.Equal(t, 0, <-code, "a stop asked for is exit 0; stderr:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "tbops serve: 2 nodes every 1s")

	// The state file holds every first verdict; history reads it.
	ec, out, errOut := runCLI(t, nil, "history", "--state", state, "--node", stalled.URL(), "--runbook", "node-health", "-o", "json")
	require.Equal(t, 0, ec, errOut)
	var tl struct {
		Transitions []map[string]any `json:"transitions"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &tl), out)
	require.NotEmpty(t, tl.Transitions)
	first := tl.Transitions[0]
	assert.Nil(t, first["from"], "a first verdict comes from nothing: null")
	assert.Equal(t, "critical", first["to"])
	assert.IsType(t, float64(0), first["id"], "numbers are JSON numbers")
	assert.Contains(t, first["firing"], "consensus-unhealthy")
}

func TestServeStopsOnSIGTERMWithExitZero(t *testing.T) {
	n := nodetest.Start(t)
	addr := freeAddr(t)
	state := filepath.Join(t.TempDir(), "state.db")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "serve", "--listen", addr, "--rpc", n.URL(), "--interval", "1s",
		"--scrape-interval", "500ms", "--state", state)
	cmd.Env = append(os.Environ(), "TBOPS_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	waitFor(t, "the first run", func() bool {
		snap, ok := snapshotAt("http://" + addr)
		return ok && len(snap.Reports) > 0
	})
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	require.NoError(t, err, "exit 0 on SIGTERM; stderr:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "tbops serve: stopped")

	ro, err := serve.OpenStoreReadOnly(context.Background(), state)
	require.NoError(t, err, "the state file is flushed and readable")
	defer ro.Close()
	ts, err := ro.Transitions(context.Background(), serve.Filter{Node: n.URL()})
	require.NoError(t, err)
	assert.NotEmpty(t, ts)
}

func TestServeRefusesWhatItCannotRun(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--rpc", "http://a:1/"}, "--listen is required"},
		{[]string{"serve", "--listen", "127.0.0.1:0"}, "no nodes to watch: give --rpc URL"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--rpc", "http://a:1/", "--shard", "2/2"}, "--shard"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--rpc", "http://a:1/", "--rpc", "http://b:1/", "--metrics", "http://a:1/metrics"}, "--metrics names one node"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--rpc", "http://a:1/", "--state", dir}, "is a directory"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--rpc", "ftp://a/"}, "want an http or https URL"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--rpc", "http://a:1/", "--interval", "0s"}, "interval 0s"},
		{[]string{"serve", "--listen", "256.0.0.1:1", "--rpc", "http://a:1/"}, "--listen 256.0.0.1:1"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--rpc", "http://admin:hunter2@a:1/", "--rpc", "http://admin:hunter2@a:1/"}, "listed twice"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--rpc", "http://a:1/", "--notify", "ftp://hooks.example/hunter2"}, "--notify ftp://hooks.example: want an http or https URL"},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--rpc", "http://a:1/", "--notify", "https://hooks.example/hunter2", "--notify-format", "xml"}, `--notify-format "xml": want json or slack`},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--rpc", "http://a:1/", "--repeat-interval", "0s"}, "repeat interval 0s"},
	} {
		code, _, errOut := runCLI(t, nil, c.args...)
		assert.Equal(t, 3, code, "%v", c.args)
		assert.Contains(t, errOut, c.want, "%v", c.args)
		assert.NotContains(t, errOut, "hunter2", "%v", c.args)
	}
}

func TestServeShardServesItsPartOfTheNodes(t *testing.T) {
	var urls []string
	for i := 0; i < 10; i++ {
		urls = append(urls, "http://node-"+string(rune('a'+i))+":3030/")
	}
	var got []string
	for shard := 0; shard < 2; shard++ {
		var stderr bytes.Buffer
		a := &app{rpcURLs: urls, getenv: func(string) string { return "" }, stderr: &stderr}
		nodes, err := a.serveNodes(serveFlags{shard: []string{"0/2", "1/2"}[shard]})
		require.NoError(t, err)
		for _, n := range nodes {
			assert.True(t, serve.InShard(n, shard, 2))
			got = append(got, n.URL)
		}
		assert.Regexp(t, `shard \d/2: \d+ of the 10 nodes`, stderr.String())
	}
	assert.ElementsMatch(t, urls, got, "two instances serve every node once")
}

// The systemd unit in deploy/ starts serve with flags serve has.
func TestDeployUnitRunsServeWithItsFlags(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/tbops-serve.service")
	require.NoError(t, err)
	var exec []string
	sc := bufio.NewScanner(bytes.NewReader(bytes.ReplaceAll(unit, []byte("\\\n"), []byte(" "))))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ExecStart="); ok {
			exec = strings.Fields(line)
		}
	}
	require.GreaterOrEqual(t, len(exec), 3, "ExecStart=/path/tbops serve …")
	require.Equal(t, "serve", exec[1])
	a := &app{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}
	cmd, rest, err := a.rootCmd().Find(exec[1:])
	require.NoError(t, err)
	require.Equal(t, "serve", cmd.Name())
	require.NoError(t, cmd.ParseFlags(rest), "ExecStart's flags")
	for _, name := range []string{"listen", "nodes", "state"} {
		assert.True(t, cmd.Flags().Changed(name), "the unit sets --%s", name)
	}
}

func TestHistoryPrintsTheTimeline(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := serve.OpenStore(ctx, path)
	require.NoError(t, err)
	at := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	for _, tr := range []serve.Transition{
		{Node: "http://node-a:3030/", Runbook: "treasury-stuck", To: tbops.StatusUnknown, At: at},
		{Node: "http://node-a:3030/", Runbook: "treasury-stuck", From: tbops.StatusUnknown, To: tbops.StatusCritical, At: at.Add(10 * time.Minute), Firing: []string{"backlog-high"}},
		{Node: "http://node-b:3030/", Runbook: "energy-stalled", To: tbops.StatusOK, At: at.Add(time.Hour)},
	} {
		_, err := st.Record(ctx, tr)
		require.NoError(t, err)
	}
	// Read while serve still holds the file open.
	code, out, errOut := runCLI(t, nil, "history", "--state", path)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `AT\s+NODE\s+RUNBOOK\s+FROM\s+TO\s+FIRING`, out)
	assert.Regexp(t, `2026-11-29T03:10:00Z\s+http://node-a:3030/\s+treasury-stuck\s+UNKNOWN\s+CRITICAL\s+backlog-high`, out)
	assert.Regexp(t, `2026-11-29T03:00:00Z\s+http://node-a:3030/\s+treasury-stuck\s+-\s+UNKNOWN\s+-`, out)
	require.NoError(t, st.Close())

	// A node named with credentials is found by its label.
	code, out, _ = runCLI(t, nil, "history", "--state", path, "--node", "http://admin:pw@node-a:3030/", "--since", "2026-11-29T03:05:00Z")
	require.Equal(t, 0, code)
	assert.Equal(t, 2, strings.Count(out, "\n"), "header and one transition:\n%s", out)
	code, out, _ = runCLI(t, nil, "history", "--state", path, "--runbook", "energy-stalled", "-o", "json")
	require.Equal(t, 0, code)
	assert.JSONEq(t, `{"transitions":[{"id":3,"node":"http://node-b:3030/","runbook":"energy-stalled","from":null,"to":"ok","at":"2026-11-29T04:00:00Z","firing":[]}]}`, out)
	code, out, _ = runCLI(t, nil, "history", "--state", path, "--runbook", "nope")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "no transitions recorded")

	none := filepath.Join(t.TempDir(), "none.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"history"}, "--state is required"},
		{[]string{"history", "--state", none}, "no such file; tbops serve --state"},
		{[]string{"history", "--state", path, "--since", "last week"}, "--since \"last week\": want a duration"},
	} {
		code, _, errOut := runCLI(t, nil, c.args...)
		assert.Equal(t, 3, code, "%v", c.args)
		assert.Contains(t, errOut, c.want)
	}
	_, err = os.Stat(none)
	assert.True(t, os.IsNotExist(err), "history never creates a state file")
}

// A webhook beyond loopback without a token is said once at start; the token
// itself is never printed.
func TestServeWarnsOfAnOpenWebhook(t *testing.T) {
	for _, c := range []struct {
		addr  net.Addr
		token string
		warns bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9847}, "", false},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 9847}, "", false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9847}, "", true},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 9847}, "", true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9847}, "s3cret", false},
	} {
		var stderr bytes.Buffer
		a := &app{stderr: &stderr, getenv: func(k string) string { return map[string]string{webhookTokenEnv: c.token}[k] }}
		a.warnOpenWebhook(c.addr)
		if c.warns {
			assert.Equal(t, "tbops serve: warning: /api/v1/alertmanager takes alerts from anyone on the network at "+c.addr.String()+
				"; set TB_SERVE_WEBHOOK_TOKEN and give Alertmanager the same token (http_config.authorization)\n", stderr.String())
		} else {
			assert.Empty(t, stderr.String(), "%v", c.addr)
		}
	}
}

// Every tbops rule's alert maps to the runbook serve runs under that id.
func TestServeMapsEveryRuleToARunbookItRuns(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	ids := map[string]bool{}
	for _, rb := range a.runbooks() {
		ids[rb.id] = true
	}
	for _, r := range allRules() {
		assert.True(t, ids[r.Runbook], "alert %s names runbook %s, which serve does not run", r.Alert, r.Runbook)
	}
}
