package serve

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/theblock/tbops"
)

// Metric names serve exports (a contract: dashboards and alerts use them).
const (
	// MetricRunbookStatus is tbops_runbook_status{node,runbook}: 0 ok,
	// 1 warning, 2 critical, 3 unknown (the exit codes).
	MetricRunbookStatus = "tbops_runbook_status"
	// MetricSymptomFiring is tbops_symptom_firing{node,runbook,symptom}: 1
	// firing, 0 not; absent while the symptom is unknown.
	MetricSymptomFiring = "tbops_symptom_firing"
	// MetricAlertFiring is tbops_alert_firing{node,runbook,alert}: 1 firing,
	// 0 not; absent while the alert is unknown.
	MetricAlertFiring = "tbops_alert_firing"
	// MetricLastRun is tbops_last_run_timestamp_seconds{node,runbook}: when
	// this process last finished the runbook on the node (Unix seconds).
	MetricLastRun = "tbops_last_run_timestamp_seconds"
	// MetricRunDuration is tbops_run_duration_seconds: how long one node's run
	// (all its runbooks) took.
	MetricRunDuration = "tbops_run_duration_seconds"
	// MetricNodeUp is tbops_node_up{node}: 1 when the node answered at its
	// last check, 0 when not; absent before the first check.
	MetricNodeUp = "tbops_node_up"
	// MetricProbeSuccess is /probe's probe_success: 1 when every runbook asked
	// for ran (whatever its verdict), 0 when one could not.
	MetricProbeSuccess = "probe_success"
	// MetricProbeDuration is /probe's probe_duration_seconds.
	MetricProbeDuration = "probe_duration_seconds"
	// MetricNotifications is tbops_notifications_total{result}: notifications
	// of alerts, by result: sent (a 2xx), failed (every attempt failed, or the
	// target refused it), suppressed (deduped: nothing new to say within the
	// repeat interval). Exported with the webhook on.
	MetricNotifications = "tbops_notifications_total"
	// MetricWebhookAlerts is tbops_alertmanager_alerts_total{outcome}: alerts
	// received on the webhook, by outcome: queued (for diagnosis), ignored (no
	// tbops rule, or no configured node), dropped (the queue was full).
	MetricWebhookAlerts = "tbops_alertmanager_alerts_total"
)

// durationBuckets are tbops_run_duration_seconds' buckets: a healthy node's
// run takes tens of milliseconds, a dead one up to the run timeout.
func durationBuckets() []float64 {
	return []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
}

// runDurations accumulates run durations for a constant histogram, so that
// every Collector (whatever its constant labels) reports the same runs.
type runDurations struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64 // per bucket, not cumulative
	count  uint64
	sum    float64
}

func newRunDurations() *runDurations {
	b := durationBuckets()
	return &runDurations{bounds: b, counts: make([]uint64, len(b))}
}

func (d *runDurations) observe(seconds float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, ub := range d.bounds {
		if seconds <= ub {
			d.counts[i]++
			break
		}
	}
	d.count++
	d.sum += seconds
}

// snapshot returns the cumulative buckets, the count and the sum.
func (d *runDurations) snapshot() (map[float64]uint64, uint64, float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := make(map[float64]uint64, len(d.bounds))
	var cum uint64
	for i, ub := range d.bounds {
		cum += d.counts[i]
		b[ub] = cum
	}
	return b, d.count, d.sum
}

// verdictDescs are the series of reports: status, symptoms and alerts.
type verdictDescs struct {
	status, symptom, alert *prometheus.Desc
}

func newVerdictDescs(constLabels prometheus.Labels) verdictDescs {
	return verdictDescs{
		status: prometheus.NewDesc(MetricRunbookStatus, "Verdict of the runbook on the node: 0 ok, 1 warning, 2 critical, 3 unknown.",
			[]string{"node", "runbook"}, constLabels),
		symptom: prometheus.NewDesc(MetricSymptomFiring, "Whether the runbook's symptom fires on the node (absent while unknown).",
			[]string{"node", "runbook", "symptom"}, constLabels),
		alert: prometheus.NewDesc(MetricAlertFiring, "Whether the runbook's alert rule fires on the node (absent while unknown).",
			[]string{"node", "runbook", "alert"}, constLabels),
	}
}

func (d verdictDescs) describe(ch chan<- *prometheus.Desc) {
	ch <- d.status
	ch <- d.symptom
	ch <- d.alert
}

// collect sends one report's series. A symptom or alert named twice in a
// report (which a registry would refuse) is sent once, firing if any is.
func (d verdictDescs) collect(ch chan<- prometheus.Metric, node, runbook string, r tbops.Report) {
	ch <- prometheus.MustNewConstMetric(d.status, prometheus.GaugeValue, float64(r.Status.ExitCode()), node, runbook)
	symptoms := map[string]bool{}
	var order []string
	for _, s := range r.Symptoms {
		if s.Status == tbops.StatusUnknown && !s.Firing {
			continue
		}
		if _, seen := symptoms[s.ID]; !seen {
			order = append(order, s.ID)
		}
		symptoms[s.ID] = symptoms[s.ID] || s.Firing
	}
	for _, id := range order {
		ch <- prometheus.MustNewConstMetric(d.symptom, prometheus.GaugeValue, boolValue(symptoms[id]), node, runbook, id)
	}
	alerts := map[string]bool{}
	order = order[:0]
	for _, a := range r.Alerts {
		if a.Status == tbops.StatusUnknown && !a.Firing {
			continue
		}
		if _, seen := alerts[a.Name]; !seen {
			order = append(order, a.Name)
		}
		alerts[a.Name] = alerts[a.Name] || a.Firing
	}
	for _, name := range order {
		ch <- prometheus.MustNewConstMetric(d.alert, prometheus.GaugeValue, boolValue(alerts[name]), node, runbook, name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collector exports the server's verdicts.
type collector struct {
	s                 *Server
	verdict           verdictDescs
	lastRun, up, durs *prometheus.Desc
	notified, alerts  *prometheus.Desc
}

// Collector exports serve's verdict metrics — tbops_runbook_status,
// tbops_symptom_firing, tbops_alert_firing, tbops_last_run_timestamp_seconds,
// tbops_node_up, the tbops_run_duration_seconds histogram and, with the
// webhook on, tbops_notifications_total and tbops_alertmanager_alerts_total — with
// constLabels (may be nil) on every series. Only verdicts of this process's
// runs are exported, not those restored from the state file. /metrics serves
// it alongside the Go and process collectors.
func (s *Server) Collector(constLabels prometheus.Labels) prometheus.Collector {
	return &collector{s: s, verdict: newVerdictDescs(constLabels),
		lastRun: prometheus.NewDesc(MetricLastRun, "When tbops serve last finished the runbook on the node (Unix seconds).",
			[]string{"node", "runbook"}, constLabels),
		up: prometheus.NewDesc(MetricNodeUp, "Whether the node answered at its last check (absent before the first).",
			[]string{"node"}, constLabels),
		durs: prometheus.NewDesc(MetricRunDuration, "How long one node's run (all its runbooks) took.", nil, constLabels),
		notified: prometheus.NewDesc(MetricNotifications, "Notifications of Alertmanager alerts, by result (sent, failed, suppressed).",
			[]string{"result"}, constLabels),
		alerts: prometheus.NewDesc(MetricWebhookAlerts, "Alerts received on the Alertmanager webhook, by outcome (queued, ignored, dropped).",
			[]string{"outcome"}, constLabels),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.verdict.describe(ch)
	ch <- c.lastRun
	ch <- c.up
	ch <- c.durs
	ch <- c.notified
	ch <- c.alerts
}

// Collect implements prometheus.Collector. It copies the verdicts under the
// lock and sends them after, so a slow scrape never holds up a run.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	type fresh struct {
		key     cellKey
		report  tbops.Report
		lastRun float64
	}
	type up struct {
		label string
		up    bool
	}
	var cells []fresh
	var ups []up
	s := c.s
	s.mu.Lock()
	for _, ns := range s.nodes {
		if ns.upKnown {
			ups = append(ups, up{ns.label, ns.up})
		}
		for _, id := range s.columns {
			k := cellKey{ns.label, id}
			if cl, ok := s.cells[k]; ok && cl.fresh {
				cells = append(cells, fresh{k, cl.report, float64(cl.lastRun.UnixMilli()) / 1000})
			}
		}
	}
	s.mu.Unlock()
	for _, u := range ups {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolValue(u.up), u.label)
	}
	for _, f := range cells {
		c.verdict.collect(ch, f.key.node, f.key.runbook, f.report)
		ch <- prometheus.MustNewConstMetric(c.lastRun, prometheus.GaugeValue, f.lastRun, f.key.node, f.key.runbook)
	}
	buckets, count, sum := s.durs.snapshot()
	ch <- prometheus.MustNewConstHistogram(c.durs, count, sum, buckets)
	if b := s.book; b != nil {
		for i, result := range notifyResults() {
			ch <- prometheus.MustNewConstMetric(c.notified, prometheus.CounterValue, float64(b.notified[i].Load()), result)
		}
		for i, outcome := range receivedOutcomes() {
			ch <- prometheus.MustNewConstMetric(c.alerts, prometheus.CounterValue, float64(b.received[i].Load()), outcome)
		}
	}
}
