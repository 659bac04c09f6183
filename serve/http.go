package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/theblock/tbops"
)

// Limits of the HTTP API.
const (
	// DefaultHistoryLimit is how many transitions /api/v1/history returns
	// unless limit= says otherwise; MaxHistoryLimit is the most it returns.
	DefaultHistoryLimit = 1000
	MaxHistoryLimit     = 10_000
	// probeTimeoutOffset is taken off Prometheus' scrape timeout, as
	// blackbox_exporter does, so the answer arrives before Prometheus gives up.
	probeTimeoutOffset = 500 * time.Millisecond
)

// Handler answers serve's read-only HTTP endpoints:
//
//	GET /metrics                    verdict metrics, Go and process collectors
//	GET /probe?target=URL[&runbook=ID]  diagnose one target now (blackbox_exporter style)
//	GET /api/v1/reports[?node=&runbook=]  the latest reports (tbops doctor -o json's shape)
//	GET /api/v1/history?node=&runbook=[&since=RFC3339&limit=N]  verdict transitions
//	GET /healthz                    200 while the server is open
//	GET /                           the status page; /report?node=&runbook=[&id=] one report
//	POST /api/v1/alertmanager       Alertmanager's webhook (with WithAlertRunbooks)
//	GET /api/v1/alerts[?node=&limit=N]  the alerts received and their notifications
//
// Any other method is 405 (POST is allowed on the webhook's path only); HEAD
// is answered as GET.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) newHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), s.Collector(nil))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /probe", s.serveProbe)
	mux.HandleFunc("GET /api/v1/reports", s.serveReports)
	mux.HandleFunc("GET /api/v1/history", s.serveHistory)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("GET /report", s.serveReportPage)
	mux.HandleFunc("GET /{$}", s.serveIndex)
	post := ""
	if s.book != nil {
		post = WebhookPath
		mux.HandleFunc("POST "+WebhookPath, s.serveWebhook)
		mux.HandleFunc("GET /api/v1/alerts", s.serveAlerts)
	}
	return readOnly(mux, post)
}

// readOnly refuses every method but GET and HEAD (and POST on the path post,
// when not ""), and sets the headers every answer carries: no sniffing, no
// framing, no referrer, and a content policy that allows no script and
// nothing from elsewhere.
func readOnly(next http.Handler, post string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		if r.Method == http.MethodPost && post != "" && r.URL.Path == post {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: only GET and HEAD are allowed", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError is the body of every JSON API error.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func jsonError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, args...)})
}

// lookupNode finds a configured node by its URL or its Label.
func (s *Server) lookupNode(target string) (*nodeState, bool) {
	ns, ok := s.byLabel[NodeLabel(strings.TrimSpace(target))]
	return ns, ok
}

// nodeAndRunbook reads and checks the node= and runbook= parameters; "" when
// absent.
func (s *Server) nodeAndRunbook(r *http.Request) (node, runbook string, err error) {
	q := r.URL.Query()
	if v := q.Get("node"); v != "" {
		ns, ok := s.lookupNode(v)
		if !ok {
			return "", "", fmt.Errorf("node %q is not one of the %d nodes served here", NodeLabel(v), len(s.nodes))
		}
		node = ns.label
	}
	if v := q.Get("runbook"); v != "" {
		if !s.hasColumn(v) {
			return "", "", fmt.Errorf("no runbook %q (known: %s)", v, strings.Join(s.columns, ", "))
		}
		runbook = v
	}
	return node, runbook, nil
}

func (s *Server) hasColumn(id string) bool {
	for _, c := range s.columns {
		if c == id {
			return true
		}
	}
	return false
}

func (s *Server) serveReports(w http.ResponseWriter, r *http.Request) {
	node, runbook, err := s.nodeAndRunbook(r)
	if err != nil {
		jsonError(w, http.StatusNotFound, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, s.Reports(node, runbook))
}

// Timeline is the JSON of /api/v1/history and of `tbops history -o json`:
// transitions, oldest first ([] when none).
type Timeline struct {
	Transitions []Transition `json:"transitions"`
}

// NewTimeline wraps transitions for JSON, nil as [].
func NewTimeline(ts []Transition) Timeline {
	if ts == nil {
		ts = []Transition{}
	}
	return Timeline{Transitions: ts}
}

func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request) {
	node, runbook, err := s.nodeAndRunbook(r)
	if err != nil {
		jsonError(w, http.StatusNotFound, "%v", err)
		return
	}
	f := Filter{Node: node, Runbook: runbook, Limit: DefaultHistoryLimit}
	q := r.URL.Query()
	if v := q.Get("since"); v != "" {
		if f.Since, err = time.Parse(time.RFC3339, v); err != nil {
			jsonError(w, http.StatusBadRequest, "since=%q: want an RFC 3339 time such as 2026-11-29T03:00:00Z", v)
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			jsonError(w, http.StatusBadRequest, "limit=%q: want a number from 1 to %d", v, MaxHistoryLimit)
			return
		}
		f.Limit = n
	}
	ts, err := s.History(r.Context(), f)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "reading the history: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, NewTimeline(ts))
}

// AlertLog is the JSON of /api/v1/alerts and of `tbops history --alerts -o
// json`: alerts received, oldest first, each with its notifications ([] when
// none).
type AlertLog struct {
	Alerts []AlertRecord `json:"alerts"`
}

// NewAlertLog wraps alerts for JSON, nil as [].
func NewAlertLog(as []AlertRecord) AlertLog {
	if as == nil {
		as = []AlertRecord{}
	}
	for i := range as {
		if as[i].Notifications == nil {
			as[i].Notifications = []NotificationRecord{}
		}
	}
	return AlertLog{Alerts: as}
}

func (s *Server) serveAlerts(w http.ResponseWriter, r *http.Request) {
	node, _, err := s.nodeAndRunbook(r)
	if err != nil {
		jsonError(w, http.StatusNotFound, "%v", err)
		return
	}
	f := AlertFilter{Node: node, Limit: DefaultHistoryLimit}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			jsonError(w, http.StatusBadRequest, "limit=%q: want a number from 1 to %d", v, MaxHistoryLimit)
			return
		}
		f.Limit = n
	}
	as, err := s.Alerts(r.Context(), f)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "reading the alerts: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, NewAlertLog(as))
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if s.closed.Load() {
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// serveProbe diagnoses one target now and answers Prometheus text:
// probe_success, probe_duration_seconds and the target's verdict series.
func (s *Server) serveProbe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target := q.Get("target")
	if target == "" {
		http.Error(w, "target parameter is missing: /probe?target=http://node:3030/", http.StatusBadRequest)
		return
	}
	select {
	case s.probes <- struct{}{}:
		defer release(s.probes)
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("%d probes already running; retry", cap(s.probes)), http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.probeTimeout(r))
	defer cancel()

	label, rbs, done, status, err := s.probeRunbooks(ctx, target)
	defer done()
	if err == nil {
		rbs, err = s.pick(rbs, q.Get("runbook"))
		status = http.StatusBadRequest
	}
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.probe(ctx, label, rbs))
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// pick narrows rbs to the runbook id ("" keeps them all).
func (s *Server) pick(rbs []tbops.Runbook, id string) ([]tbops.Runbook, error) {
	if id == "" {
		return rbs, nil
	}
	for _, rb := range rbs {
		if rb.ID() == id {
			return []tbops.Runbook{rb}, nil
		}
	}
	return nil, fmt.Errorf("no runbook %q (known: %s)", id, strings.Join(s.columns, ", "))
}

// probe runs the runbooks now and returns the answer: it succeeded when every
// runbook made its report (whatever the verdict) before the deadline.
func (s *Server) probe(ctx context.Context, label string, rbs []tbops.Runbook) *probeCollector {
	start := time.Now()
	var failed atomic.Bool
	watched := make([]tbops.Runbook, len(rbs))
	for i, rb := range rbs {
		watched[i] = tbops.Func(rb.ID(), func(ctx context.Context) (tbops.Report, error) {
			rep, err := rb.Diagnose(ctx)
			if err != nil {
				failed.Store(true)
			}
			return rep, err
		})
	}
	reports := s.diagnose(ctx, label, watched)
	return &probeCollector{verdict: newVerdictDescs(nil), node: label, runbooks: watched, reports: reports,
		success: !failed.Load() && ctx.Err() == nil, took: time.Since(start).Seconds(),
		successDesc:  prometheus.NewDesc(MetricProbeSuccess, "Whether every runbook asked for ran (whatever its verdict).", nil, nil),
		durationDesc: prometheus.NewDesc(MetricProbeDuration, "How long the probe took.", nil, nil)}
}

// probeTimeout is the probe's deadline: WithProbeTimeout, or less when
// Prometheus says it gives up sooner.
func (s *Server) probeTimeout(r *http.Request) time.Duration {
	d := s.cfg.probeTimeout
	secs, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64)
	if err == nil && secs > 0 && secs < d.Seconds() {
		d = max(time.Duration(secs*float64(time.Second))-probeTimeoutOffset, probeTimeoutOffset)
	}
	return d
}

// probeRunbooks returns the label and runbooks a probe of target runs: a
// configured node's own (with its history), or, with WithProbeAny, fresh
// ones over a source made for the probe, which done releases. It refuses a
// target that is not configured (403) or not an http(s) URL (400).
func (s *Server) probeRunbooks(ctx context.Context, target string) (label string, rbs []tbops.Runbook, done func(), status int, err error) {
	done = func() {}
	if ns, ok := s.lookupNode(target); ok {
		return ns.label, ns.runbooks, done, 0, nil
	}
	if !s.cfg.probeAny {
		return "", nil, done, http.StatusForbidden,
			fmt.Errorf("target %q is not one of the %d nodes served here, and probes of other targets are off", NodeLabel(target), len(s.nodes))
	}
	if err := checkNodeURL(target); err != nil {
		return "", nil, done, http.StatusBadRequest, fmt.Errorf("target %v", err)
	}
	n := Node{URL: target}
	src, sc := s.sourceFor(n)
	if sc != nil {
		_ = sc.Scrape(ctx) // one sample: a failure shows as the runbooks' missing data
		done = sc.Close
	}
	return n.Label(), s.runbooks(n, src), done, 0, nil
}

// probeCollector is one probe's answer.
type probeCollector struct {
	verdict                   verdictDescs
	successDesc, durationDesc *prometheus.Desc
	node                      string
	runbooks                  []tbops.Runbook
	reports                   []tbops.Report
	success                   bool
	took                      float64
}

func (p *probeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.successDesc
	ch <- p.durationDesc
	p.verdict.describe(ch)
}

func (p *probeCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(p.successDesc, prometheus.GaugeValue, boolValue(p.success))
	ch <- prometheus.MustNewConstMetric(p.durationDesc, prometheus.GaugeValue, p.took)
	for i, r := range p.reports {
		p.verdict.collect(ch, p.node, p.runbooks[i].ID(), r)
	}
}
