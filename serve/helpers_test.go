package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/rpc"
	"github.com/theblock/tbops/serve"
)

// The test runbooks: one with a 10-minute window, one that shows text the
// node sends.
const (
	backlogRunbook = "test-backlog"
	versionRunbook = "test-version"
	backlogWindow  = 10 * time.Minute
	backlogAlert   = "TestBacklogHigh"
)

// fleet is a set of simulated nodes on one fake clock.
type fleet struct {
	clk                          *nodetest.FakeClock
	healthy, backlog, odd, dead  serve.Node
	nodes                        []serve.Node
	healthyNode, backlogNode, od *nodetest.Node
}

// startFleet starts a healthy node, one whose backlog stays above 50, one
// whose node.status version is markup, and names a dead one.
func startFleet(t *testing.T, clk *nodetest.FakeClock) *fleet {
	t.Helper()
	f := &fleet{clk: clk}
	start := func(mod func(*nodetest.Scenario)) (*nodetest.Node, serve.Node) {
		sc := nodetest.Healthy(clk.Now())
		if mod != nil {
			mod(&sc)
		}
		n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenario(sc))
		return n, serve.Node{URL: n.URL()}
	}
	f.healthyNode, f.healthy = start(nil)
	f.backlogNode, f.backlog = start(func(sc *nodetest.Scenario) {
		sc.Metrics = append(sc.Metrics, nodetest.Gauge("treasury_disbursement_backlog", nil, 80))
	})
	f.od, f.odd = start(func(sc *nodetest.Scenario) { sc.Chain.Version = `<script>alert("x")</script>` })
	f.dead = serve.Node{URL: deadURL(t)}
	f.nodes = []serve.Node{f.healthy, f.backlog, f.odd, f.dead}
	return f
}

// deadURL is a loopback URL nothing listens on.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + ln.Addr().String() + "/"
	require.NoError(t, ln.Close())
	return u
}

// testRunbooks are the runbooks of every node: a backlog held above 50 for
// 10 minutes (decidable only once the source has seen the window) and the
// node's version, which must be tbops-sim/1.0.
func testRunbooks(now func() time.Time) serve.Runbooks {
	return func(n serve.Node, src promq.Source) []tbops.Runbook {
		return []tbops.Runbook{
			tbops.Func(backlogRunbook, func(ctx context.Context) (tbops.Report, error) { return backlogReport(ctx, n, src, now) }),
			tbops.Func(versionRunbook, func(ctx context.Context) (tbops.Report, error) { return versionReport(ctx, n, now) }),
		}
	}
}

func backlogReport(ctx context.Context, n serve.Node, src promq.Source, now func() time.Time) (tbops.Report, error) {
	r := tbops.NewReport(backlogRunbook, n.URL, now())
	sym := tbops.Symptom{ID: "backlog-high", Summary: "backlog above 50 for 10 minutes", Threshold: tbops.Num(50), Status: tbops.StatusUnknown}
	alert := tbops.Alert{Name: backlogAlert, Severity: tbops.StatusCritical, Expr: "treasury_disbursement_backlog > 50",
		ForSeconds: backlogWindow.Seconds(), Threshold: tbops.Num(50), Status: tbops.StatusUnknown}
	if src == nil {
		r.Warnf("no metrics source")
	} else {
		r.Scope = src.Name()
		h, err := promq.HeldFor(ctx, src, promq.Select("treasury_disbursement_backlog"), promq.GT, 50, backlogWindow)
		if err != nil {
			return r, err
		}
		for _, w := range h.Warnings {
			r.Warnf("%s", w)
		}
		sym.Evidence, alert.Evidence = []tbops.Evidence{h.Evidence}, []tbops.Evidence{h.Evidence}
		if h.HasNow {
			sym.Value, alert.Value = tbops.Num(h.Now), tbops.Num(h.Now)
		}
		switch {
		case h.Known && h.Held:
			sym.Firing, sym.Status, alert.Firing, alert.Status = true, tbops.StatusCritical, true, tbops.StatusCritical
		case h.Known:
			sym.Status, alert.Status = tbops.StatusOK, tbops.StatusOK
		}
	}
	r.Symptoms, r.Alerts = []tbops.Symptom{sym}, []tbops.Alert{alert}
	if sym.Firing {
		r.Paths = []tbops.Path{{ID: "A", Title: "Drain the backlog", Matched: true, Why: "backlog held above 50",
			Actions: []tbops.Action{{Kind: "check", Command: "tbops treasury list --status queued", DryRun: true}}}}
	}
	r.Finalize()
	return r, nil
}

func versionReport(ctx context.Context, n serve.Node, now func() time.Time) (tbops.Report, error) {
	r := tbops.NewReport(versionRunbook, n.URL, now())
	c, err := rpc.NewClient(n.URL, rpc.WithTimeout(2*time.Second), rpc.WithRetries(1))
	if err != nil {
		return r, err
	}
	var st struct {
		Version string `json:"version"`
	}
	sym := tbops.Symptom{ID: "unexpected-version", Status: tbops.StatusUnknown, Summary: "node version could not be read"}
	if err := c.Read(ctx, "node.status", nil, &st); err != nil {
		r.Warnf("node.status: %v", err)
	} else {
		sym.Summary = "node runs " + st.Version
		sym.Detail = tbops.RawOf(st.Version)
		sym.Evidence = []tbops.Evidence{{Source: tbops.SourceRPC, Query: "node.status", Value: tbops.RawOf(st.Version), At: now().UTC()}}
		sym.Status = tbops.StatusOK
		if st.Version != "tbops-sim/1.0" {
			sym.Firing, sym.Status = true, tbops.StatusWarning
		}
	}
	r.Symptoms = []tbops.Symptom{sym}
	r.Finalize()
	return r, nil
}

// advance moves the clock by d one scrape interval at a time, scraping after
// each step, as a Prometheus would have.
func advance(ctx context.Context, t *testing.T, s *serve.Server, clk *nodetest.FakeClock, d time.Duration) {
	t.Helper()
	for d > 0 {
		step := min(serve.DefaultScrapeInterval, d)
		clk.Advance(step)
		d -= step
		require.NoError(t, s.Scrape(ctx))
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// metricValue is the value of the series name{labels} in a text exposition.
func metricValue(t *testing.T, exposition, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(exposition))
	require.NoError(t, err)
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if hasLabels(m, labels) {
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// chromium is the headless browser the page tests use; with CI=true a
// missing browser fails the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI installs Debian's chromium package)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// browse runs headless Chromium on url with extra flags and returns stdout.
func browse(t *testing.T, url string, flags ...string) string {
	t.Helper()
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard, not a timing
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + filepath.Join(t.TempDir(), "chromium")}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())
	return stdout.String()
}

// dumpDOM is the page's DOM as Chromium built it.
func dumpDOM(t *testing.T, url string) string { return browse(t, url, "--dump-dom") }

// screenshot saves a PNG of the page at the window size and returns its path.
func screenshot(t *testing.T, url string, w, h int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "page.png")
	browse(t, url, "--screenshot="+path, fmt.Sprintf("--window-size=%d,%d", w, h), "--hide-scrollbars")
	return path
}

// newWeb serves srv's handler on loopback until the test ends.
func newWeb(t *testing.T, srv *serve.Server) *httptest.Server {
	t.Helper()
	web := httptest.NewServer(srv.Handler())
	t.Cleanup(web.Close)
	return web
}
