package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/serve"
)

const (
	whRunbook = "treasury-stuck"
	whAlert   = "TreasuryExecutorFailing"
	whNode    = "http://node-a.invalid:3030/"
	whInst    = "node-a.invalid:3030"
)

// verdict is what the test runbook finds, changed by the test.
type verdict struct {
	mu     sync.Mutex
	status tbops.Status
	paths  []string
}

func (v *verdict) set(st tbops.Status, paths ...string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.status, v.paths = st, paths
}

// runbooks is one runbook, whatever the verdict says: a firing symptom
// unless ok, and each path matched with a planned command.
func (v *verdict) runbooks(now func() time.Time) serve.Runbooks {
	return fixed(whRunbook, func(n serve.Node) tbops.Report {
		v.mu.Lock()
		defer v.mu.Unlock()
		r := tbops.NewReport(whRunbook, n.URL, now())
		sy := tbops.Symptom{ID: "executor-error", Summary: "executor errors 2/s", Status: tbops.StatusOK}
		if v.status != tbops.StatusOK {
			sy.Firing, sy.Status = true, v.status
		}
		r.Symptoms = []tbops.Symptom{sy}
		for _, p := range v.paths {
			r.Paths = append(r.Paths, tbops.Path{ID: p, Title: "Path " + p, Matched: true, Why: "test",
				Actions: []tbops.Action{{Kind: "check", Command: "tbops treasury list --status queued", DryRun: true}}})
		}
		r.Finalize()
		return r
	})
}

// receiver is a notification target that answers codes in turn (then 200).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	codes  []int
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	rc := &receiver{codes: codes}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, b)
		code := http.StatusOK
		if len(rc.codes) > 0 {
			code, rc.codes = rc.codes[0], rc.codes[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) received() [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][]byte(nil), rc.bodies...)
}

// webhookServer is a running server with the webhook on, over one node.
type webhookServer struct {
	srv *serve.Server
	web *httptest.Server
	clk *nodetest.FakeClock
	v   *verdict
}

func startWebhook(t *testing.T, opts ...serve.Option) *webhookServer {
	t.Helper()
	w := &webhookServer{clk: nodetest.NewFakeClock(t0), v: &verdict{status: tbops.StatusCritical, paths: []string{"C"}}}
	never := func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }
	base := []serve.Option{serve.WithSource(noSource), serve.WithClock(w.clk.Now), serve.WithTicker(never),
		serve.WithAlertRunbooks(map[string]string{whAlert: whRunbook}), serve.WithNotifyRetry(time.Millisecond, time.Minute)}
	srv, err := serve.New(context.Background(), []serve.Node{{URL: whNode}}, w.v.runbooks(w.clk.Now), append(base, opts...)...)
	require.NoError(t, err)
	w.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		srv.Close()
	})
	w.web = newWeb(t, srv)
	return w
}

// payload is a webhook body of alerts given as (status, alertname,
// instance, fingerprint).
func payload(alerts ...[4]string) string {
	var as []string
	for _, a := range alerts {
		as = append(as, fmt.Sprintf(`{"status":%q,"labels":{"alertname":%q,"instance":%q,"job":"node","runbook":%q,"severity":"critical"},
			"annotations":{"summary":"executor failing"},"startsAt":"2026-11-29T03:00:00Z","endsAt":"0001-01-01T00:00:00Z",
			"generatorURL":"http://prometheus:9090/graph","fingerprint":%q}`, a[0], a[1], a[2], whRunbook, a[3]))
	}
	return `{"version":"4","groupKey":"{}:{runbook=\"treasury-stuck\"}","truncatedAlerts":0,"status":"firing","receiver":"tbops",
		"groupLabels":{"runbook":"treasury-stuck"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am:9093",
		"alerts":[` + strings.Join(as, ",") + `]}`
}

func firing(fp string) [4]string { return [4]string{serve.AlertFiring, whAlert, whInst, fp} }

func (w *webhookServer) post(t *testing.T, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.web.URL+serve.WebhookPath, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// alerts reads /api/v1/alerts.
func (w *webhookServer) alerts(t *testing.T) []serve.AlertRecord {
	t.Helper()
	code, body := get(t, w.web.URL+"/api/v1/alerts")
	require.Equal(t, 200, code, body)
	var log serve.AlertLog
	require.NoError(t, json.Unmarshal([]byte(body), &log))
	return log.Alerts
}

// settled waits until every alert is diagnosed or ignored and no
// notification is being sent, and returns the alerts.
func (w *webhookServer) settled(t *testing.T, n int) []serve.AlertRecord {
	t.Helper()
	var as []serve.AlertRecord
	waitUntil(t, fmt.Sprintf("%d alerts handled", n), func() bool {
		as = w.alerts(t)
		if len(as) != n {
			return false
		}
		for _, a := range as {
			if a.Outcome == serve.OutcomeQueued {
				return false
			}
			for _, nt := range a.Notifications {
				if nt.Result == serve.ResultSending {
					return false
				}
			}
		}
		return true
	})
	return as
}

// waitUntil polls ok; the bound is a hang guard, not a timing.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for guard := time.Now().Add(time.Minute); time.Now().Before(guard); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("gave up waiting for %s", what)
}

func (w *webhookServer) metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	_, body := get(t, w.web.URL+"/metrics")
	v, ok := metricValue(t, body, name, map[string]string{label: value})
	require.True(t, ok, "%s{%s=%q} missing", name, label, value)
	return v
}

func TestWebhookRefusesMalformedPayloadsNamingTheField(t *testing.T) {
	w := startWebhook(t)
	good := payload(firing("a1"), firing("b2"))
	for _, c := range []struct{ body, want string }{
		{`not json`, "body: malformed JSON"},
		{``, "body: empty or truncated JSON"},
		{`[]`, "body: want a JSON object"},
		{good + `{}`, "body: data after the JSON object"},
		{strings.Replace(good, `"version":"4",`, ``, 1), "version: missing"},
		{strings.Replace(good, `"version":"4"`, `"version":"3"`, 1), `version: "3": this tbops reads version "4"`},
		{strings.Replace(good, `"version":"4"`, `"version":4`, 1), "version: want a string, got number"},
		{strings.Replace(good, `"receiver":"tbops"`, `"receiver":""`, 1), "receiver: missing"},
		{strings.Replace(good, `"status":"firing","receiver"`, `"status":"burning","receiver"`, 1), `status: "burning": want "firing" or "resolved"`},
		{strings.Replace(good, `"truncatedAlerts":0`, `"truncatedAlerts":"0"`, 1), "truncatedAlerts: want a number, got string"},
		{strings.Replace(good, `"alerts":[`, `"alerts":{"x":[`, 1) + `}`, "alerts: want an array, got object"},
		{`{"version":"4","status":"firing","receiver":"tbops"}`, "alerts: missing"},
		{strings.Replace(good, `"fingerprint":"b2"`, `"fingerprint":""`, 1), "alerts[1].fingerprint: missing"},
		{strings.Replace(good, `"fingerprint":"b2"`, `"fingerprint":"not hex"`, 1), `alerts[1].fingerprint: "not hex": want up to 64 hex digits`},
		{strings.Replace(good, `"alertname":"`+whAlert+`"`, `"alertname":""`, 1), "alerts[0].labels.alertname: missing"},
		{strings.Replace(good, `"instance":"`+whInst+`"`, `"instance":3`, 1), "alerts[0].labels: want a string, got number"},
		{strings.Replace(good, `"startsAt":"2026-11-29T03:00:00Z"`, `"startsAt":"yesterday"`, 1), `alerts[0].startsAt: "yesterday": want an RFC 3339 time`},
		{strings.Replace(good, `"startsAt":"2026-11-29T03:00:00Z",`, ``, 1), "alerts[0].startsAt: missing"},
		{strings.Replace(good, `{"status":"firing","labels"`, `{"status":"pending","labels"`, 1), `alerts[0].status: "pending": want "firing" or "resolved"`},
		{strings.Replace(good, `"labels":{"alertname"`, `"labels":null,"x":{"alertname"`, 1), "alerts[0].labels: missing"},
	} {
		code, body := w.post(t, c.body)
		assert.Equal(t, http.StatusBadRequest, code, c.want)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal([]byte(body), &e), body)
		assert.Contains(t, e.Error, c.want)
	}
	assert.Empty(t, w.alerts(t), "nothing of a refused delivery is recorded")
	assert.Zero(t, w.metric(t, serve.MetricWebhookAlerts, "outcome", "queued"))
}

func TestWebhookRefusesAnOversizedBodyWith413(t *testing.T) {
	w := startWebhook(t, serve.WithWebhookMaxBytes(2048))
	var many [][4]string
	for i := 0; i < 10; i++ {
		many = append(many, firing(fmt.Sprintf("%x", i+1)))
	}
	code, body := w.post(t, payload(many...))
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
	assert.Contains(t, body, "body over 2048 bytes")
	assert.Empty(t, w.alerts(t))
	code, _ = w.post(t, payload(firing("a1")))
	assert.Equal(t, http.StatusOK, code, "a body within the limit is taken")
}

func TestWebhookAsksForTheBearerToken(t *testing.T) {
	w := startWebhook(t, serve.WithWebhookToken("s3cret-token"))
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret-token"}, {"Authorization", "Basic s3cret-token"}} {
		code, body := w.post(t, payload(firing("a1")), h...)
		assert.Equal(t, http.StatusUnauthorized, code, "%v", h)
		assert.NotContains(t, body, "s3cret-token")
	}
	assert.Empty(t, w.alerts(t))
	code, _ := w.post(t, payload(firing("a1")), "Authorization", "Bearer s3cret-token")
	assert.Equal(t, http.StatusOK, code)
	assert.Len(t, w.alerts(t), 1)
	// The rest stays read-only.
	req, _ := http.NewRequest(http.MethodPost, w.web.URL+"/api/v1/reports", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestWebhookRecordsUnknownAlertsAndInstancesWithTheReason(t *testing.T) {
	rc := newReceiver(t)
	w := startWebhook(t, serve.WithNotify(serve.NotifyTarget{URL: rc.URL}))
	code, body := w.post(t, payload(
		[4]string{serve.AlertFiring, "SomeoneElsesAlert", whInst, "a1"},
		[4]string{serve.AlertFiring, whAlert, "node-z:9100", "b2"},
		firing("c3"),
	))
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"received":3,"queued":1,"ignored":2,"dropped":0}`, body)
	as := w.settled(t, 3)
	assert.Equal(t, serve.OutcomeIgnored, as[0].Outcome)
	assert.Equal(t, "alertname SomeoneElsesAlert is not one of tbops's rules", as[0].Reason)
	assert.Equal(t, serve.OutcomeIgnored, as[1].Outcome)
	assert.Equal(t, `instance="node-z:9100" is none of the 1 nodes served here`, as[1].Reason)
	assert.Equal(t, whRunbook, as[1].Runbook)
	assert.Equal(t, serve.OutcomeDiagnosed, as[2].Outcome)
	assert.Equal(t, whNode, as[2].Node)
	assert.Equal(t, "critical, firing executor-error, path C", as[2].Reason)
	assert.Len(t, rc.received(), 1, "only the matched alert is notified")
	assert.Equal(t, 2.0, w.metric(t, serve.MetricWebhookAlerts, "outcome", "ignored"))
	assert.Equal(t, 1.0, w.metric(t, serve.MetricWebhookAlerts, "outcome", "queued"))

	// The page shows them: the matched ones under the node, the rest apart.
	_, page := get(t, w.web.URL+"/")
	assert.Contains(t, page, `is not one of tbops&#39;s rules`)
	assert.Contains(t, page, `id="unmatched-alerts"`)
	node := page[strings.Index(page, `<section class="node" id="node-0"`):]
	node = node[:strings.Index(node, "</section>")]
	assert.Contains(t, node, `data-fingerprint="c3"`)
	assert.Contains(t, node, "sent</b> firing → "+rc.URL)
}

func TestWebhookNotifiesOncePerAlertAndVerdict(t *testing.T) {
	rc := newReceiver(t)
	w := startWebhook(t, serve.WithNotify(serve.NotifyTarget{URL: rc.URL + "/hook/secret-path?token=x"}))
	deliver := func(alerts ...[4]string) {
		t.Helper()
		code, body := w.post(t, payload(alerts...))
		require.Equal(t, 200, code, body)
	}
	deliver(firing("a1"))
	w.settled(t, 1)
	deliver(firing("a1")) // Alertmanager re-sends the group
	w.settled(t, 2)
	deliver(firing("a1"))
	as := w.settled(t, 3)
	require.Len(t, rc.received(), 1, "one notification for three deliveries of one firing alert")
	var n serve.Notification
	require.NoError(t, json.Unmarshal(rc.received()[0], &n))
	assert.Equal(t, serve.AlertFiring, n.Status)
	assert.Equal(t, whNode, n.Node)
	assert.Equal(t, whRunbook, n.Runbook)
	assert.Equal(t, "a1", n.Alert.Fingerprint)
	assert.Equal(t, whAlert, n.Alert.Name())
	assert.Equal(t, tbops.StatusCritical, n.Report.Status)
	assert.Equal(t, "[CRITICAL] treasury-stuck on "+whNode+": alert "+whAlert+" firing\nfiring executor-error: executor errors 2/s\n"+
		"path C: Path C\n  $ tbops treasury list --status queued", n.Summary)
	require.Len(t, as[2].Notifications, 1)
	assert.Equal(t, serve.ResultSuppressed, as[2].Notifications[0].Result)
	assert.Contains(t, as[2].Notifications[0].Error, "the same verdict (critical, firing executor-error, path C) went at")
	assert.Equal(t, rc.URL, as[0].Notifications[0].Target, "kept as scheme://host only")
	assert.Equal(t, 2.0, w.metric(t, serve.MetricNotifications, "result", "suppressed"))
	assert.Equal(t, 1.0, w.metric(t, serve.MetricNotifications, "result", "sent"))

	// A new path is a new verdict: sent again.
	w.v.set(tbops.StatusCritical, "C", "A")
	deliver(firing("a1"))
	w.settled(t, 4)
	require.Len(t, rc.received(), 2)
	// The same verdict after the repeat interval: sent again.
	w.clk.Advance(serve.DefaultRepeatInterval)
	deliver(firing("a1"))
	w.settled(t, 5)
	require.Len(t, rc.received(), 3)
	// Another alert (fingerprint) is its own.
	deliver(firing("b2"))
	w.settled(t, 6)
	require.Len(t, rc.received(), 4)

	// Resolved: one notification with a fresh diagnosis; a second delivery of
	// the resolution sends nothing.
	w.v.set(tbops.StatusOK)
	resolved := [4]string{serve.AlertResolved, whAlert, whInst, "a1"}
	deliver(resolved)
	w.settled(t, 7)
	deliver(resolved)
	as = w.settled(t, 8)
	require.Len(t, rc.received(), 5)
	require.NoError(t, json.Unmarshal(rc.received()[4], &n))
	assert.Equal(t, serve.AlertResolved, n.Status)
	assert.Equal(t, tbops.StatusOK, n.Report.Status)
	assert.True(t, strings.HasPrefix(n.Summary, "[OK] treasury-stuck on "+whNode+": alert "+whAlert+" resolved\n"), n.Summary)
	assert.Equal(t, serve.ResultSuppressed, as[7].Notifications[0].Result)
	assert.Equal(t, serve.AlertResolved, as[7].Notifications[0].Kind)

	// It fires again: a new episode.
	w.v.set(tbops.StatusCritical, "C")
	deliver(firing("a1"))
	w.settled(t, 9)
	assert.Len(t, rc.received(), 6)
}

func TestNotifyRetriesA503UntilItIsAcceptedAndNeverAfter(t *testing.T) {
	rc := newReceiver(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusTooManyRequests)
	refusing := newReceiver(t, http.StatusBadRequest)
	w := startWebhook(t, serve.WithNotify(serve.NotifyTarget{URL: rc.URL}, serve.NotifyTarget{URL: refusing.URL}))
	code, _ := w.post(t, payload(firing("a1")))
	require.Equal(t, 200, code)
	as := w.settled(t, 1)
	require.Len(t, as[0].Notifications, 2)
	byTarget := map[string]serve.NotificationRecord{}
	for _, n := range as[0].Notifications {
		byTarget[n.Target] = n
	}
	ok := byTarget[rc.URL]
	assert.Equal(t, serve.ResultSent, ok.Result)
	assert.Equal(t, 4, ok.Attempts, "503, 503, 429, then 200")
	assert.Len(t, rc.received(), 4, "nothing after the 2xx")
	bad := byTarget[refusing.URL]
	assert.Equal(t, serve.ResultFailed, bad.Result)
	assert.Equal(t, 1, bad.Attempts, "a 400 is not retried")
	assert.Equal(t, refusing.URL+": HTTP 400", bad.Error)
	assert.Equal(t, 1.0, w.metric(t, serve.MetricNotifications, "result", "failed"))

	// A failed notification does not count as sent: the next delivery tries
	// again; the sent one stays deduped.
	code, _ = w.post(t, payload(firing("a1")))
	require.Equal(t, 200, code)
	as = w.settled(t, 2)
	assert.Len(t, refusing.received(), 2)
	assert.Len(t, rc.received(), 4)
}

func TestNotifyGivesUpWithinItsBound(t *testing.T) {
	codes := make([]int, 1000)
	for i := range codes {
		codes[i] = http.StatusBadGateway
	}
	rc := newReceiver(t, codes...)
	w := startWebhook(t, serve.WithNotify(serve.NotifyTarget{URL: rc.URL}), serve.WithNotifyRetry(time.Millisecond, 300*time.Millisecond))
	code, _ := w.post(t, payload(firing("a1")))
	require.Equal(t, 200, code)
	n := w.settled(t, 1)[0].Notifications[0]
	assert.Equal(t, serve.ResultFailed, n.Result)
	assert.Contains(t, n.Error, "HTTP 502", "the last answer")
	assert.Contains(t, n.Error, "gave up after")
	assert.GreaterOrEqual(t, n.Attempts, 2, "retried")
	assert.LessOrEqual(t, len(rc.received()), n.Attempts, "no attempt after giving up")
}

func TestNotifySlackBody(t *testing.T) {
	rc := newReceiver(t)
	w := startWebhook(t, serve.WithNotify(serve.NotifyTarget{URL: rc.URL, Format: serve.NotifySlack}))
	w.v.set(tbops.StatusCritical, "C", "A")
	code, _ := w.post(t, payload(firing("a1")))
	require.Equal(t, 200, code)
	w.settled(t, 1)
	require.Len(t, rc.received(), 1)
	var m struct {
		Text   string
		Blocks []struct {
			Type string
			Text struct{ Type, Text string }
		}
	}
	require.NoError(t, json.Unmarshal(rc.received()[0], &m))
	assert.Equal(t, "[CRITICAL] treasury-stuck on "+whNode+": alert "+whAlert+" firing", m.Text)
	require.Len(t, m.Blocks, 5, "header, status, firing, two paths")
	assert.Equal(t, "header", m.Blocks[0].Type)
	assert.Equal(t, "plain_text", m.Blocks[0].Text.Type)
	assert.Equal(t, "CRITICAL treasury-stuck: "+whAlert, m.Blocks[0].Text.Text)
	assert.Contains(t, m.Blocks[2].Text.Text, "`executor-error`: executor errors 2/s")
	assert.Equal(t, "*Path C: Path C*\n```\ntbops treasury list --status queued\n```", m.Blocks[3].Text.Text)
}

func TestWebhookMatchesByAnotherLabel(t *testing.T) {
	rc := newReceiver(t)
	w := startWebhook(t, serve.WithNodeLabel("node"), serve.WithNotify(serve.NotifyTarget{URL: rc.URL}))
	body := strings.Replace(payload(firing("a1")), `"job":"node"`, `"node":"http://admin:pw@node-a.invalid:3030/"`, 1)
	code, _ := w.post(t, body)
	require.Equal(t, 200, code)
	as := w.settled(t, 1)
	assert.Equal(t, serve.OutcomeDiagnosed, as[0].Outcome, "the node label names the node by its URL (credentials ignored)")
	code, _ = w.post(t, payload(firing("b2")))
	require.Equal(t, 200, code)
	as = w.settled(t, 2)
	assert.Equal(t, "the alert has no node label to name its node", as[1].Reason)
}

func TestWebhookRecordsAFullQueueAsDropped(t *testing.T) {
	v := &verdict{status: tbops.StatusCritical}
	srv, err := serve.New(context.Background(), []serve.Node{{URL: whNode}}, v.runbooks(func() time.Time { return t0 }),
		serve.WithSource(noSource), serve.WithAlertRunbooks(map[string]string{whAlert: whRunbook}), serve.WithAlertQueue(1))
	require.NoError(t, err)
	defer srv.Close()
	web := newWeb(t, srv) // not running: nothing takes the queue
	resp, err := http.Post(web.URL+serve.WebhookPath, "application/json", strings.NewReader(payload(firing("a1"), firing("b2"))))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.JSONEq(t, `{"received":2,"queued":1,"ignored":0,"dropped":1}`, string(b))
	as, err := srv.Alerts(context.Background(), serve.AlertFilter{})
	require.NoError(t, err)
	require.Len(t, as, 2)
	assert.Equal(t, serve.OutcomeQueued, as[0].Outcome)
	assert.Equal(t, serve.OutcomeDropped, as[1].Outcome)
	assert.Equal(t, "queue full", as[1].Reason)
}

func TestWebhookStateSurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	rc := newReceiver(t)
	var sent atomic.Int64
	start := func() *webhookServer {
		st, err := serve.OpenStore(context.Background(), path)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, st.Close()) })
		return startWebhook(t, serve.WithStore(st), serve.WithNotify(serve.NotifyTarget{URL: rc.URL}))
	}
	w := start()
	code, _ := w.post(t, payload(firing("a1"), [4]string{serve.AlertFiring, "Other", whInst, "b2"}))
	require.Equal(t, 200, code)
	w.settled(t, 2)
	sent.Store(int64(len(rc.received())))
	require.EqualValues(t, 1, sent.Load())

	w = start() // a second server on the same file, as after a restart
	as := w.alerts(t)
	require.Len(t, as, 2, "the alerts are read back")
	assert.Equal(t, serve.ResultSent, as[0].Notifications[0].Result)
	_, page := get(t, w.web.URL+"/")
	assert.Contains(t, page, `data-fingerprint="a1"`, "the page shows them after the restart")
	code, _ = w.post(t, payload(firing("a1")))
	require.Equal(t, 200, code)
	as = w.settled(t, 3)
	assert.Len(t, rc.received(), 1, "the dedupe reads the state file")
	assert.Equal(t, serve.ResultSuppressed, as[2].Notifications[0].Result)

	ro, err := serve.OpenStoreReadOnly(context.Background(), path)
	require.NoError(t, err)
	defer ro.Close()
	got, err := ro.Alerts(context.Background(), serve.AlertFilter{Node: whNode})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, map[string]string{"alertname": whAlert, "instance": whInst, "job": "node", "runbook": whRunbook, "severity": "critical"}, got[0].Labels)
	assert.Nil(t, got[0].Notifications[0].Report, "listings carry no report")
}

func TestWebhookOptionsAreChecked(t *testing.T) {
	rbs := fixed("r", func(n serve.Node) tbops.Report { return report("r", n) })
	for _, c := range []struct {
		opts []serve.Option
		want string
	}{
		{[]serve.Option{serve.WithAlertRunbooks(map[string]string{"A": "r"}), serve.WithNotify(serve.NotifyTarget{URL: "ftp://hooks.example/secret"})}, "notify URL ftp://hooks.example: want an http or https URL"},
		{[]serve.Option{serve.WithAlertRunbooks(map[string]string{"A": "r"}), serve.WithNotify(serve.NotifyTarget{URL: "https://hooks.example/secret", Format: "xml"})}, `notify format "xml"`},
		{[]serve.Option{serve.WithNotify(serve.NotifyTarget{URL: "https://hooks.example/secret"})}, "need WithAlertRunbooks"},
		{[]serve.Option{serve.WithAlertRunbooks(map[string]string{"A": "r"}), serve.WithRepeatInterval(0)}, "repeat interval 0s"},
		{[]serve.Option{serve.WithAlertRunbooks(map[string]string{"A": ""})}, "want an alert name and a runbook id"},
	} {
		_, err := serve.New(context.Background(), nil, rbs, c.opts...)
		require.ErrorIs(t, err, serve.ErrInvalidConfig)
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), "secret")
	}
}

// Alerts are text from elsewhere: Chromium shows them as text on the page,
// the matched ones under their node, the rest in their own section.
func TestPageShowsAlertsInertInABrowser(t *testing.T) {
	rc := newReceiver(t)
	w := startWebhook(t, serve.WithNotify(serve.NotifyTarget{URL: rc.URL}))
	code, _ := w.post(t, payload(firing("a1"), [4]string{serve.AlertFiring, `<img src=x onerror=alert(1)>`, whInst, "b2"}))
	require.Equal(t, 200, code)
	w.settled(t, 2)
	dom := dumpDOM(t, w.web.URL+"/")
	assert.NotContains(t, dom, `<img src="x"`, "markup in an alert stays text")
	assert.Contains(t, dom, `&lt;img src=x onerror=alert(1)&gt;`)
	node := dom[strings.Index(dom, `id="node-0"`):]
	node = node[:strings.Index(node, "</section>")]
	assert.Contains(t, node, `data-fingerprint="a1"`)
	assert.Contains(t, node, "diagnosed: critical, firing executor-error, path C")
	assert.NotContains(t, node, `data-fingerprint="b2"`)
	assert.Contains(t, dom[strings.Index(dom, `id="unmatched-alerts"`):], `data-fingerprint="b2"`)
}
