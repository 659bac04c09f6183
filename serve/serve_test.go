package serve_test

import (
	"context"
	"encoding/json"
	"image/png"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/serve"
)

type served struct {
	srv *serve.Server
	web *httptest.Server
}

func startServe(t *testing.T, f *fleet, st *serve.Store, opts ...serve.Option) *served {
	t.Helper()
	opts = append([]serve.Option{serve.WithClock(f.clk.Now), serve.WithStore(st), serve.WithWorkers(2)}, opts...)
	srv, err := serve.New(context.Background(), f.nodes, testRunbooks(f.clk.Now), opts...)
	require.NoError(t, err)
	web := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		web.Close()
		srv.Close()
	})
	return &served{srv: srv, web: web}
}

func (s *served) metrics(t *testing.T) string {
	t.Helper()
	code, body := get(t, s.web.URL+"/metrics")
	require.Equal(t, 200, code)
	return body
}

func (s *served) reports(t *testing.T, node, runbook string) serve.Snapshot {
	t.Helper()
	code, body := get(t, s.web.URL+"/api/v1/reports?"+url.Values{"node": {node}, "runbook": {runbook}}.Encode())
	require.Equal(t, 200, code, body)
	var snap serve.Snapshot
	require.NoError(t, json.Unmarshal([]byte(body), &snap))
	reportcheck.Valid(t, snap.Reports...)
	return snap
}

func (s *served) history(t *testing.T, node, runbook string) []serve.Transition {
	t.Helper()
	code, body := get(t, s.web.URL+"/api/v1/history?"+url.Values{"node": {node}, "runbook": {runbook}}.Encode())
	require.Equal(t, 200, code, body)
	var h struct {
		Transitions []serve.Transition `json:"transitions"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &h))
	return h.Transitions
}

func statusOf(t *testing.T, exposition, node, runbook string) (float64, bool) {
	return metricValue(t, exposition, serve.MetricRunbookStatus, map[string]string{"node": node, "runbook": runbook})
}

func transitionPairs(ts []serve.Transition) []string {
	var out []string
	for _, tr := range ts {
		out = append(out, string(tr.From)+"→"+string(tr.To))
	}
	return out
}

// The done-when test of issue #15: serve against several simulated nodes on a
// fake clock, long enough that a 10-minute condition goes from unknown to
// decided; the metrics, the reports, the probe, the page (in a real headless
// Chromium) and the history agree, and the history survives a restart.
func TestServeDecidesATenMinuteWindowAsHistoryAccumulates(t *testing.T) {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(t0)
	f := startFleet(t, clk)
	statePath := filepath.Join(t.TempDir(), "state.db")
	st, err := serve.OpenStore(ctx, statePath)
	require.NoError(t, err)
	s := startServe(t, f, st)
	B, A := f.backlog.Label(), f.healthy.Label()

	// Two scrapes 15 s apart, then the first run: the backlog window has not
	// been observed, so its verdict is unknown and says how much was seen.
	require.NoError(t, s.srv.Scrape(ctx))
	advance(ctx, t, s.srv, clk, 15*time.Second)
	require.NoError(t, s.srv.RunOnce(ctx))

	m := s.metrics(t)
	v, ok := statusOf(t, m, B, backlogRunbook)
	require.True(t, ok, m)
	assert.Equal(t, 3.0, v, "the backlog window is not yet observed: unknown")
	_, ok = metricValue(t, m, serve.MetricSymptomFiring, map[string]string{"node": B, "symptom": "backlog-high"})
	assert.False(t, ok, "an unknown symptom has no series")
	_, ok = metricValue(t, m, serve.MetricAlertFiring, map[string]string{"node": B, "alert": backlogAlert})
	assert.False(t, ok, "an unknown alert has no series")
	v, _ = statusOf(t, m, A, backlogRunbook)
	assert.Equal(t, 0.0, v, "a backlog below 50 fails the condition at once: decided ok")
	v, _ = metricValue(t, m, serve.MetricSymptomFiring, map[string]string{"node": A, "symptom": "backlog-high"})
	assert.Equal(t, 0.0, v)
	up, _ := metricValue(t, m, serve.MetricNodeUp, map[string]string{"node": f.dead.Label()})
	assert.Equal(t, 0.0, up, "the dead node is down")
	up, _ = metricValue(t, m, serve.MetricNodeUp, map[string]string{"node": B})
	assert.Equal(t, 1.0, up)
	rep := s.reports(t, B, backlogRunbook).Reports[0]
	assert.Equal(t, tbops.StatusUnknown, rep.Status)
	assert.Contains(t, strings.Join(rep.Warnings, "\n"), "only 15s of the 10m window observed")

	// Ten more minutes of node time, a run every 30 s.
	for i := 0; i < 21; i++ {
		advance(ctx, t, s.srv, clk, 30*time.Second)
		require.NoError(t, s.srv.RunOnce(ctx))
	}

	m = s.metrics(t)
	v, _ = statusOf(t, m, B, backlogRunbook)
	assert.Equal(t, 2.0, v, "the backlog held above 50 for the whole window: critical")
	v, ok = metricValue(t, m, serve.MetricSymptomFiring, map[string]string{"node": B, "runbook": backlogRunbook, "symptom": "backlog-high"})
	assert.True(t, ok && v == 1, "the symptom fires")
	v, ok = metricValue(t, m, serve.MetricAlertFiring, map[string]string{"node": B, "runbook": backlogRunbook, "alert": backlogAlert})
	assert.True(t, ok && v == 1, "the alert fires")
	last, _ := metricValue(t, m, serve.MetricLastRun, map[string]string{"node": B, "runbook": backlogRunbook})
	assert.Equal(t, float64(clk.Now().Unix()), last)
	runs, _ := metricValue(t, m, serve.MetricRunDuration, nil)
	assert.Equal(t, float64(22*len(f.nodes)), runs, "one observation per node and run")
	v, _ = statusOf(t, m, f.dead.Label(), backlogRunbook)
	assert.Equal(t, 3.0, v, "nothing observed of the dead node: unknown")
	v, _ = statusOf(t, m, f.odd.Label(), versionRunbook)
	assert.Equal(t, 1.0, v)

	snap := s.reports(t, B, "")
	require.Len(t, snap.Reports, 2)
	assert.Equal(t, tbops.StatusCritical, snap.Status)
	assert.Equal(t, tbops.StatusCritical, snap.Reports[0].Status)
	assert.Equal(t, B, snap.Reports[0].Target)
	assert.Contains(t, snap.Reports[0].Scope, "scrape "+f.backlog.URL+"metrics")
	all := s.reports(t, "", "")
	assert.Len(t, all.Reports, 2*len(f.nodes))
	assert.Equal(t, tbops.StatusCritical, all.Status)

	// The probe answers the same verdict, from the same history.
	code, probe := get(t, s.web.URL+"/probe?"+url.Values{"target": {f.backlog.URL}, "runbook": {backlogRunbook}}.Encode())
	require.Equal(t, 200, code, probe)
	v, _ = metricValue(t, probe, serve.MetricProbeSuccess, nil)
	assert.Equal(t, 1.0, v)
	v, _ = statusOf(t, probe, B, backlogRunbook)
	assert.Equal(t, 2.0, v)
	v, _ = metricValue(t, probe, serve.MetricSymptomFiring, map[string]string{"node": B, "symptom": "backlog-high"})
	assert.Equal(t, 1.0, v)
	_, ok = statusOf(t, probe, B, versionRunbook)
	assert.False(t, ok, "runbook= narrows the probe")

	// The history: the first verdict, then the decision.
	hist := s.history(t, B, backlogRunbook)
	assert.Equal(t, []string{"→unknown", "unknown→critical"}, transitionPairs(hist))
	assert.Equal(t, []string{"backlog-high"}, hist[1].Firing)
	assert.Equal(t, []string{"→ok"}, transitionPairs(s.history(t, A, backlogRunbook)), "no change, no transition")

	// The page, in a real browser: the grid says what the metrics say, and a
	// cell's link leads to the full report with its history.
	dom := dumpDOM(t, s.web.URL+"/")
	for _, n := range f.nodes {
		for _, rb := range []string{backlogRunbook, versionRunbook} {
			want, _ := statusOf(t, m, n.Label(), rb)
			assert.Equal(t, []tbops.Status{tbops.StatusOK, tbops.StatusWarning, tbops.StatusCritical, tbops.StatusUnknown}[int(want)],
				tbops.Status(cellStatus(t, dom, n.Label(), rb)), "page cell %s %s", n.Label(), rb)
		}
	}
	link := cellLink(t, dom, B, backlogRunbook)
	report := dumpDOM(t, s.web.URL+link)
	assert.Contains(t, report, `id="status">critical<`)
	assert.Contains(t, report, "backlog-high")
	assert.Contains(t, report, "Path A: Drain the backlog")
	assert.Contains(t, report, "$ tbops treasury list --status queued")
	assert.Contains(t, report, "treasury_disbursement_backlog")
	assert.Regexp(t, `unknown\s*→\s*<b class="critical">critical</b>`, report, "the transition history")
	assert.NotContains(t, dom, "<script>", "markup from a node renders inert")
	assert.Contains(t, dom, "node runs &lt;script&gt;")

	shot := screenshot(t, s.web.URL+"/", 390, 844)
	fh, err := os.Open(shot)
	require.NoError(t, err)
	img, err := png.Decode(fh)
	fh.Close()
	require.NoError(t, err, "the screenshot is a PNG")
	assert.Equal(t, 390, img.Bounds().Dx())
	assert.Equal(t, 844, img.Bounds().Dy())

	// Restart: a new server on the same state file shows what happened before
	// its first run, and carries the verdict on.
	s.web.Close()
	s.srv.Close()
	require.NoError(t, st.Close())
	st2, err := serve.OpenStore(ctx, statePath)
	require.NoError(t, err)
	defer st2.Close()
	s2 := startServe(t, f, st2)
	assert.Equal(t, transitionPairs(hist), transitionPairs(s2.history(t, B, backlogRunbook)), "the history survives the restart")
	restored := s2.reports(t, B, backlogRunbook)
	require.Len(t, restored.Reports, 1)
	assert.Equal(t, tbops.StatusCritical, restored.Reports[0].Status, "the last verdict is read back")
	_, ok = statusOf(t, s2.metrics(t), B, backlogRunbook)
	assert.False(t, ok, "metrics export only this process's verdicts")
	dom = dumpDOM(t, s2.web.URL+"/")
	assert.Equal(t, "critical", cellStatus(t, dom, B, backlogRunbook))
	assert.Contains(t, dom, "before restart")

	// Its own history starts afresh, so the window is unknown again, and the
	// transition is from the verdict before the restart.
	require.NoError(t, s2.srv.Scrape(ctx))
	advance(ctx, t, s2.srv, clk, 15*time.Second)
	require.NoError(t, s2.srv.RunOnce(ctx))
	assert.Equal(t, []string{"→unknown", "unknown→critical", "critical→unknown"}, transitionPairs(s2.history(t, B, backlogRunbook)))
	ro, err := serve.OpenStoreReadOnly(ctx, statePath)
	require.NoError(t, err)
	defer ro.Close()
	stored, err := ro.Transitions(ctx, serve.Filter{Node: B, Runbook: backlogRunbook})
	require.NoError(t, err)
	assert.Len(t, stored, 3, "each transition is in the file once written")
}

var cellRE = regexp.MustCompile(`(?s)<tr data-node="([^"]*)">(.*?)</tr>`)

// cellStatus is the data-status of the grid cell of node and runbook.
func cellStatus(t *testing.T, dom, node, runbook string) string {
	t.Helper()
	m := regexp.MustCompile(`data-runbook="` + regexp.QuoteMeta(runbook) + `" data-status="([a-z]+)"`).FindStringSubmatch(row(t, dom, node))
	require.NotNil(t, m, "no cell %s %s", node, runbook)
	return m[1]
}

// cellLink is the href of the grid cell of node and runbook.
func cellLink(t *testing.T, dom, node, runbook string) string {
	t.Helper()
	m := regexp.MustCompile(`data-runbook="` + regexp.QuoteMeta(runbook) + `"[^>]*><a href="([^"]+)"`).FindStringSubmatch(row(t, dom, node))
	require.NotNil(t, m, "no link in cell %s %s", node, runbook)
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

func row(t *testing.T, dom, node string) string {
	t.Helper()
	for _, m := range cellRE.FindAllStringSubmatch(dom, -1) {
		if strings.ReplaceAll(m[1], "&amp;", "&") == node {
			return m[2]
		}
	}
	t.Fatalf("no grid row for %s in\n%s", node, dom)
	return ""
}
