package serve

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/theblock/tbops"
)

const (
	// DefaultAlertQueue is how many alerts may wait for their diagnosis; an
	// alert received while it is full is recorded as dropped.
	DefaultAlertQueue = 256
	// alertWorkers is how many alerts are diagnosed and notified at once.
	alertWorkers = 4
	// recentAlertsPerNode is how many alerts of each node the page shows.
	recentAlertsPerNode = 10
)

// alertBook is what the webhook keeps in memory: the queue, the dedupe state
// and the recent alerts the page shows. With a state file it is a cache of
// the file's tables, read back at start.
type alertBook struct {
	jobs   chan alertJob
	slots  chan struct{} // one per queued job, taken before the job is recorded
	sender *sender
	// byInstance are the nodes by their metrics host:port, Prometheus' instance.
	byInstance map[string][]*nodeState

	received [3]atomic.Int64 // queued, ignored, dropped
	notified [3]atomic.Int64 // sent, failed, suppressed

	mu sync.Mutex
	// sent is the newest notification sent (or being sent) per fingerprint and
	// target: the dedupe state.
	sent   map[sentKey]*NotificationRecord
	recent map[string][]*AlertRecord // by node label ("" for none), newest last
	seq    int64                     // ids without a state file
}

type sentKey struct{ fingerprint, target string }

// alertJob is one matched alert waiting for its diagnosis.
type alertJob struct {
	rec   *AlertRecord
	alert WebhookAlert
	node  *nodeState
	rb    tbops.Runbook
}

// receivedOutcomes and notifyResults order the counters' labels.
func receivedOutcomes() [3]string { return [3]string{OutcomeQueued, OutcomeIgnored, OutcomeDropped} }
func notifyResults() [3]string    { return [3]string{ResultSent, ResultFailed, ResultSuppressed} }

func indexOf(list [3]string, v string) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return -1
}

// newAlertBook sets up the webhook's state for the nodes, reading the
// dedupe state and recent alerts back from the state file.
func (s *Server) newAlertBook(ctx context.Context) error {
	b := &alertBook{jobs: make(chan alertJob, s.cfg.alertQueue), slots: make(chan struct{}, s.cfg.alertQueue),
		sender:     newSender(s.cfg.notifyClient, s.cfg.notifyBackoff, s.cfg.notifyTotal),
		byInstance: map[string][]*nodeState{}, sent: map[sentKey]*NotificationRecord{}, recent: map[string][]*AlertRecord{}}
	for _, ns := range s.nodes {
		for _, inst := range instances(ns.node.metricsURL()) {
			b.byInstance[inst] = append(b.byInstance[inst], ns)
		}
	}
	s.book = b
	st := s.cfg.store
	if st == nil {
		return nil
	}
	sent, err := st.lastSent(ctx)
	if err != nil {
		return err
	}
	for i := range sent {
		b.sent[sentKey{sent[i].fingerprint, sent[i].targetKey}] = &sent[i]
	}
	recent, err := st.recentAlerts(ctx, recentAlertsPerNode)
	if err != nil {
		return err
	}
	for i := range recent {
		b.recent[recent[i].Node] = append(b.recent[recent[i].Node], &recent[i])
	}
	return nil
}

// instances are the instance labels Prometheus gives a target at metricsURL:
// its host:port, and its host with the scheme's port when it names none.
func instances(metricsURL string) []string {
	u, err := url.Parse(metricsURL)
	if err != nil || u.Host == "" {
		return nil
	}
	out := []string{u.Host}
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		out = append(out, net.JoinHostPort(u.Hostname(), port))
	}
	return out
}

// webhookAnswer is the body of a 200 to Alertmanager.
type webhookAnswer struct {
	Received int `json:"received"`
	Queued   int `json:"queued"`
	Ignored  int `json:"ignored"`
	Dropped  int `json:"dropped"`
}

// serveWebhook records every alert of an Alertmanager delivery, in one
// transaction, and queues the diagnosis of those that name a tbops rule and a
// configured node. It answers at once: the diagnosis and the notifications
// run on the alert workers.
func (s *Server) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if !s.webhookAuthorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tbops serve"`)
		jsonError(w, http.StatusUnauthorized, "missing or wrong bearer token: set the webhook_config's http_config.authorization.credentials to serve's token")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.webhookMaxBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		jsonError(w, http.StatusRequestEntityTooLarge, "body over %d bytes: lower the webhook_config's max_alerts", s.cfg.webhookMaxBytes)
		return
	}
	if err != nil {
		jsonError(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	p, err := DecodeWebhook(bytes.NewReader(body))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "%v", err)
		return
	}
	recs, jobs := s.admit(p, s.cfg.now().UTC())
	if err := s.recordReceived(r.Context(), p, recs); err != nil {
		for range jobs {
			release(s.book.slots)
		}
		s.cfg.logger.Error("state file write failed; the alerts were not taken", "err", err)
		jsonError(w, http.StatusInternalServerError, "recording the alerts failed; Alertmanager will retry: %v", err)
		return
	}
	var ans webhookAnswer
	for _, rec := range recs {
		ans.Received++
		switch rec.Outcome {
		case OutcomeQueued:
			ans.Queued++
		case OutcomeIgnored:
			ans.Ignored++
		default:
			ans.Dropped++
		}
		s.book.received[indexOf(receivedOutcomes(), rec.Outcome)].Add(1)
	}
	for _, j := range jobs {
		s.book.jobs <- j // never blocks: its slot was taken
	}
	writeJSON(w, http.StatusOK, ans)
}

// webhookAuthorized checks the bearer token, when one is set, in constant
// time.
func (s *Server) webhookAuthorized(r *http.Request) bool {
	if s.cfg.webhookToken == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.webhookToken)) == 1
}

// admit matches every alert to its runbook and node and takes a queue slot
// for each that matched; nothing is recorded yet.
func (s *Server) admit(p WebhookPayload, now time.Time) ([]*AlertRecord, []alertJob) {
	recs := make([]*AlertRecord, 0, len(p.Alerts))
	var jobs []alertJob
	for _, a := range p.Alerts {
		rec := &AlertRecord{ReceivedAt: now, Receiver: p.Receiver, Fingerprint: a.Fingerprint, Status: a.Status,
			Alertname: a.Name(), Labels: a.Labels, Outcome: OutcomeIgnored, Notifications: []NotificationRecord{}}
		ns, rb, reason := s.matchAlert(a, rec)
		switch {
		case ns == nil:
			rec.Reason = reason
		case tryAcquire(s.book.slots):
			rec.Outcome = OutcomeQueued
			jobs = append(jobs, alertJob{rec: rec, alert: a, node: ns, rb: rb})
		default:
			rec.Outcome, rec.Reason = OutcomeDropped, "queue full"
		}
		recs = append(recs, rec)
	}
	return recs, jobs
}

// matchAlert finds the runbook the alert names and the node it is about,
// setting rec's Runbook and Node; reason says why not when the node is nil.
func (s *Server) matchAlert(a WebhookAlert, rec *AlertRecord) (*nodeState, tbops.Runbook, string) {
	id, ok := s.cfg.alertRunbooks[a.Name()]
	if !ok {
		return nil, nil, fmt.Sprintf("alertname %s is not one of tbops's rules", a.Name())
	}
	rec.Runbook = id
	label := cmpOr(s.cfg.nodeLabel, "instance")
	v := a.Labels[label]
	if v == "" {
		return nil, nil, fmt.Sprintf("the alert has no %s label to name its node", label)
	}
	var nodes []*nodeState
	if s.cfg.nodeLabel == "" {
		nodes = s.book.byInstance[v]
	} else if ns, ok := s.lookupNode(v); ok {
		nodes = []*nodeState{ns}
	}
	switch len(nodes) {
	case 0:
		return nil, nil, fmt.Sprintf("%s=%q is none of the %d nodes served here", label, NodeLabel(v), len(s.nodes))
	case 1:
	default:
		return nil, nil, fmt.Sprintf("%s=%q names %d nodes served here; tell them apart with --node-label", label, v, len(nodes))
	}
	ns := nodes[0]
	rec.Node = ns.label
	for _, rb := range ns.runbooks {
		if rb.ID() == id {
			return ns, rb, ""
		}
	}
	return nil, nil, fmt.Sprintf("runbook %s is not run here", id)
}

// recordReceived keeps the delivery's alerts: in the state file, in one
// transaction, and in memory for the page.
func (s *Server) recordReceived(ctx context.Context, p WebhookPayload, recs []*AlertRecord) error {
	if st := s.cfg.store; st != nil {
		rows := make([]AlertRecord, len(recs))
		raws := make([][]byte, len(recs))
		for i, rec := range recs {
			rows[i] = *rec
			raws[i] = mustJSON(p.Alerts[i])
		}
		if err := st.recordAlerts(ctx, rows, raws); err != nil {
			return err
		}
		for i := range recs {
			recs[i].ID = rows[i].ID
		}
	}
	b := s.book
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rec := range recs {
		if s.cfg.store == nil {
			b.seq++
			rec.ID = b.seq
		}
		list := append(b.recent[rec.Node], rec)
		b.recent[rec.Node] = list[max(len(list)-recentAlertsPerNode, 0):]
	}
	return nil
}

// alertWorker diagnoses and notifies queued alerts until ctx is done.
func (s *Server) alertWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.book.jobs:
			s.handleAlert(ctx, j)
			release(s.book.slots)
		}
	}
}

// handleAlert runs the alert's runbook for its node now, records the verdict
// as a scheduled run's, and notifies every target that has not had it.
func (s *Server) handleAlert(ctx context.Context, j alertJob) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.runTimeout)
	r := s.diagnose(rctx, j.node.label, []tbops.Runbook{j.rb})[0]
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the alert stays queued in the record
	}
	s.apply(ctx, cellKey{j.node.label, j.rb.ID()}, r)
	planned := make([]*NotificationRecord, len(s.cfg.notify))
	for i, t := range s.cfg.notify {
		planned[i] = s.plan(ctx, j, t, r)
	}
	// Diagnosed once every notification is decided: a reader that sees the
	// outcome sees them too.
	s.setOutcome(ctx, j.rec, OutcomeDiagnosed, describeVerdict(verdictOf(r)))
	note := newNotification(j.alert, j.node.label, j.rb.ID(), r)
	var wg sync.WaitGroup
	for i, t := range s.cfg.notify {
		if planned[i].Result == ResultSending {
			wg.Go(func() { s.deliver(ctx, j, t, note, planned[i]) })
		}
	}
	wg.Wait()
}

// setOutcome records what became of an alert, in memory and in the state
// file.
func (s *Server) setOutcome(ctx context.Context, rec *AlertRecord, outcome, reason string) {
	s.book.mu.Lock()
	rec.Outcome, rec.Reason = outcome, reason
	s.book.mu.Unlock()
	if st := s.cfg.store; st != nil {
		s.storeWrite(ctx, func(ctx context.Context) error { return st.setOutcome(ctx, rec.ID, outcome, reason) })
	}
}

// storeWrite runs one state-file write, bounded, even while shutting down (a
// decision taken is kept), and logs a failure.
func (s *Server) storeWrite(ctx context.Context, f func(ctx context.Context) error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
	defer cancel()
	if err := f(wctx); err != nil {
		s.cfg.logger.Error("state file write failed", "err", err)
	}
}

// decide says whether a notification of kind (the alert's status) with
// verdict goes to a target whose newest sent notification of the alert is
// last (nil when none), and why not.
func decide(kind string, last *NotificationRecord, verdict string, now time.Time, repeat time.Duration) (bool, string) {
	if kind == AlertResolved {
		if last != nil && last.Kind == AlertResolved {
			return false, "its resolved notification went at " + last.At.Format(time.RFC3339)
		}
		return true, ""
	}
	if last == nil || last.Kind == AlertResolved || last.verdict != verdict || now.Sub(last.At) >= repeat {
		return true, ""
	}
	return false, fmt.Sprintf("the same verdict (%s) went at %s; the repeat interval is %s",
		describeVerdict(verdict), last.At.Format(time.RFC3339), repeat)
}

// plan decides the notification of the alert to t and records it: as being
// sent (which the dedupe counts as sent, so a second delivery in the meantime
// sends nothing), or as suppressed.
func (s *Server) plan(ctx context.Context, j alertJob, t NotifyTarget, r tbops.Report) *NotificationRecord {
	now := s.cfg.now().UTC()
	n := &NotificationRecord{AlertID: j.rec.ID, Target: t.String(), Format: t.Format, Kind: j.alert.Status,
		Result: ResultSending, At: now, Status: r.Status, fingerprint: j.alert.Fingerprint, targetKey: t.key(), verdict: verdictOf(r)}
	key := sentKey{n.fingerprint, n.targetKey}
	b := s.book
	b.mu.Lock()
	send, why := decide(n.Kind, b.sent[key], n.verdict, now, s.cfg.repeat)
	if send {
		b.sent[key] = n
	} else {
		n.Result, n.Error = ResultSuppressed, why
	}
	b.mu.Unlock()
	if !send {
		b.notified[indexOf(notifyResults(), ResultSuppressed)].Add(1)
	}
	if st := s.cfg.store; st != nil {
		stored := *n
		if send {
			stored.Report = &r
		}
		s.storeWrite(ctx, func(ctx context.Context) (err error) {
			stored.ID, err = st.recordNotification(ctx, stored)
			return err
		})
		b.mu.Lock()
		n.ID = stored.ID
		b.mu.Unlock()
	}
	s.attach(j.rec, n)
	return n
}

// attach shows a notification under its alert.
func (s *Server) attach(rec *AlertRecord, n *NotificationRecord) {
	s.book.mu.Lock()
	defer s.book.mu.Unlock()
	rec.Notifications = append(rec.Notifications, *n)
}

// deliver sends a planned notification and records its outcome. A failed one
// no longer counts for the dedupe: Alertmanager's next delivery tries again.
func (s *Server) deliver(ctx context.Context, j alertJob, t NotifyTarget, note Notification, n *NotificationRecord) {
	body, err := t.body(note)
	attempts := 0
	if err == nil {
		attempts, err = s.book.sender.send(ctx, t, body)
	}
	b := s.book
	b.mu.Lock()
	n.Attempts, n.At, n.Result = attempts, s.cfg.now().UTC(), ResultSent
	if err != nil {
		n.Result, n.Error = ResultFailed, err.Error()
		key := sentKey{n.fingerprint, n.targetKey}
		if b.sent[key] == n {
			delete(b.sent, key)
		}
	}
	done := *n
	for i := range j.rec.Notifications {
		if nn := &j.rec.Notifications[i]; nn.targetKey == n.targetKey && nn.Result == ResultSending {
			*nn = done
		}
	}
	b.mu.Unlock()
	b.notified[indexOf(notifyResults(), done.Result)].Add(1)
	if err != nil {
		s.cfg.logger.Warn("notification failed", "alert", j.rec.Alertname, "node", j.node.label, "target", done.Target, "err", err)
	}
	if st := s.cfg.store; st != nil {
		s.storeWrite(ctx, func(ctx context.Context) error { return st.finishNotification(ctx, done) })
	}
}

// Alerts returns the alerts f selects, oldest first, with their
// notifications: from the state file when there is one, else the 10 newest
// of each node kept in memory.
func (s *Server) Alerts(ctx context.Context, f AlertFilter) ([]AlertRecord, error) {
	if st := s.cfg.store; st != nil {
		return st.Alerts(ctx, f)
	}
	var out []AlertRecord
	for node, list := range s.recentAlerts() {
		if f.Node != "" && node != f.Node {
			continue
		}
		for _, a := range list {
			if !a.ReceivedAt.Before(f.Since) && (f.Runbook == "" || a.Runbook == f.Runbook) {
				out = append(out, a)
			}
		}
	}
	sortAlerts(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}

// recentAlerts copies the recent alerts by node label.
func (s *Server) recentAlerts() map[string][]AlertRecord {
	out := map[string][]AlertRecord{}
	if s.book == nil {
		return out
	}
	s.book.mu.Lock()
	defer s.book.mu.Unlock()
	for node, list := range s.book.recent {
		for _, a := range list {
			c := *a
			c.Notifications = append([]NotificationRecord{}, a.Notifications...)
			out[node] = append(out[node], c)
		}
	}
	return out
}

func sortAlerts(a []AlertRecord) { sort.Slice(a, func(i, j int) bool { return a[i].ID < a[j].ID }) }

// mustJSON is the JSON of an alert serve decoded (which always encodes).
func mustJSON(a WebhookAlert) []byte {
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return b
}

// forgetSent drops dedupe entries older than before (retention).
func (s *Server) forgetSent(before time.Time) {
	if s.book == nil {
		return
	}
	s.book.mu.Lock()
	defer s.book.mu.Unlock()
	for k, n := range s.book.sent {
		if n.At.Before(before) {
			delete(s.book.sent, k)
		}
	}
}

func tryAcquire(sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
		return false
	}
}
