package serve

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/theblock/tbops"
)

// What serve did with an alert it received (AlertRecord.Outcome).
const (
	// OutcomeQueued: matched to a node and runbook, waiting for its diagnosis.
	OutcomeQueued = "queued"
	// OutcomeDiagnosed: the runbook ran for the node; Reason is its verdict.
	OutcomeDiagnosed = "diagnosed"
	// OutcomeIgnored: not a tbops alert, or no configured node; Reason says which.
	OutcomeIgnored = "ignored"
	// OutcomeDropped: matched, but the diagnosis queue was full (Reason "queue
	// full"); Alertmanager's next delivery tries again.
	OutcomeDropped = "dropped"
)

// Notification results (NotificationRecord.Result, and the result label of
// tbops_notifications_total).
const (
	// ResultSending: being sent (attempts so far in Attempts).
	ResultSending = "sending"
	// ResultSent: the target answered 2xx.
	ResultSent = "sent"
	// ResultFailed: every attempt failed within the retry bound, or the target
	// refused it (a 4xx other than 429); Error says why.
	ResultFailed = "failed"
	// ResultSuppressed: nothing sent, as a notification of the same alert and
	// verdict went to the target within the repeat interval; Error says when.
	ResultSuppressed = "suppressed"
)

// AlertRecord is one alert serve received from Alertmanager, and what it did
// with it.
type AlertRecord struct {
	// ID is the state file's row id (in memory: a counter).
	ID          int64             `json:"id"`
	ReceivedAt  time.Time         `json:"received_at"`
	Receiver    string            `json:"receiver"`
	Fingerprint string            `json:"fingerprint"`
	Status      string            `json:"status"`
	Alertname   string            `json:"alertname"`
	Labels      map[string]string `json:"labels"`
	// Node is the matched node's Label, "" when none matched.
	Node string `json:"node"`
	// Runbook is the runbook the alert names, "" when it names none.
	Runbook string `json:"runbook"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	// Notifications are those decided for this alert, oldest first.
	Notifications []NotificationRecord `json:"notifications"`
}

// NotificationRecord is one notification decided for an alert: sent,
// failed or suppressed.
type NotificationRecord struct {
	ID      int64 `json:"id"`
	AlertID int64 `json:"alert_id"`
	// Target is the notify URL's scheme://host: the path of a Slack webhook URL
	// is its secret, so it is never kept or shown.
	Target string `json:"target"`
	Format string `json:"format"`
	// Kind is AlertFiring or AlertResolved.
	Kind     string `json:"kind"`
	Attempts int    `json:"attempts"`
	Result   string `json:"result"`
	Error    string `json:"error,omitempty"`
	// At is when it was decided (and, once sent, when it was sent).
	At time.Time `json:"at"`
	// Status is the verdict of the report it carried.
	Status tbops.Status `json:"status"`
	// Report is the report it carried; nil in listings and when suppressed.
	Report *tbops.Report `json:"report,omitempty"`

	fingerprint, targetKey, verdict string
}

// AlertFilter selects alerts. Empty fields select everything.
type AlertFilter struct {
	// Node is a node's Label.
	Node    string
	Runbook string
	// Since keeps alerts received at or after it.
	Since time.Time
	// Limit keeps only the newest Limit alerts (0: all).
	Limit int
}

// recordAlerts writes the alerts of one webhook delivery in one transaction
// and sets their IDs.
func (s *Store) recordAlerts(ctx context.Context, recs []AlertRecord, raws [][]byte) error {
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for i := range recs {
			r := &recs[i]
			labels, err := json.Marshal(r.Labels)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO alerts (received_ms, receiver, fingerprint, status, alertname,
				labels, alert, node, runbook, outcome, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.ReceivedAt.UnixMilli(), r.Receiver, r.Fingerprint, r.Status, r.Alertname, string(labels), string(raws[i]),
				r.Node, r.Runbook, r.Outcome, r.Reason)
			if err != nil {
				return err
			}
			if r.ID, err = res.LastInsertId(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("serve: recording %d alerts in %s: %w", len(recs), s.path, err)
	}
	return nil
}

// setOutcome records what became of an alert.
func (s *Store) setOutcome(ctx context.Context, id int64, outcome, reason string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE alerts SET outcome = ?, reason = ? WHERE id = ?`, outcome, reason, id)
		return err
	})
}

// recordNotification writes a notification and returns its id.
func (s *Store) recordNotification(ctx context.Context, n NotificationRecord) (int64, error) {
	var report any
	if n.Report != nil {
		b, err := json.Marshal(n.Report)
		if err != nil {
			return 0, err
		}
		report = string(b)
	}
	var id int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO notifications (alert_id, fingerprint, target, target_key, format, kind,
			attempts, result, error, at_ms, verdict, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			n.AlertID, n.fingerprint, n.Target, n.targetKey, n.Format, n.Kind, n.Attempts, n.Result, n.Error,
			n.At.UnixMilli(), n.verdict, report)
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// finishNotification records a send's outcome.
func (s *Store) finishNotification(ctx context.Context, n NotificationRecord) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE notifications SET attempts = ?, result = ?, error = ?, at_ms = ? WHERE id = ?`,
			n.Attempts, n.Result, n.Error, n.At.UnixMilli(), n.ID)
		return err
	})
}

// notificationColumns are what scanNotification reads.
const notificationColumns = `id, alert_id, fingerprint, target, target_key, format, kind, attempts, result, error, at_ms, verdict`

// lastSent returns the newest notification of every fingerprint and target
// that was sent (or was being sent when serve stopped: never sent twice), for
// the dedupe after a restart.
func (s *Store) lastSent(ctx context.Context) ([]NotificationRecord, error) {
	return s.notifications(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE id IN (
		SELECT MAX(id) FROM notifications WHERE result IN ('sent', 'sending') GROUP BY fingerprint, target_key) ORDER BY id`)
}

func (s *Store) notifications(ctx context.Context, q string, args ...any) ([]NotificationRecord, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("serve: reading %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []NotificationRecord
	for rows.Next() {
		var n NotificationRecord
		var atMS int64
		if err := rows.Scan(&n.ID, &n.AlertID, &n.fingerprint, &n.Target, &n.targetKey, &n.Format, &n.Kind,
			&n.Attempts, &n.Result, &n.Error, &atMS, &n.verdict); err != nil {
			return nil, fmt.Errorf("serve: reading %s: %w", s.path, err)
		}
		n.At, n.Status = time.UnixMilli(atMS).UTC(), verdictStatus(n.verdict)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("serve: reading %s: %w", s.path, err)
	}
	return out, nil
}

// Alerts returns the alerts f selects, oldest first, each with its
// notifications (without their reports).
func (s *Store) Alerts(ctx context.Context, f AlertFilter) ([]AlertRecord, error) {
	if s.readOnly && s.readVersion < 2 {
		return nil, fmt.Errorf("serve: %s has schema version %d, from before the Alertmanager webhook: no alerts recorded", s.path, s.readVersion)
	}
	var where []string
	var args []any
	if f.Node != "" {
		where, args = append(where, "node = ?"), append(args, f.Node)
	}
	if f.Runbook != "" {
		where, args = append(where, "runbook = ?"), append(args, f.Runbook)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "received_ms >= ?"), append(args, f.Since.UnixMilli())
	}
	q := `SELECT id, received_ms, receiver, fingerprint, status, alertname, labels, node, runbook, outcome, reason FROM alerts`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	out, err := s.alerts(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	reverse(out)
	return out, s.attachNotifications(ctx, out)
}

// recentAlerts returns the newest perNode alerts of every node (and of no
// node), oldest first, with their notifications: what the page shows after a
// restart.
func (s *Store) recentAlerts(ctx context.Context, perNode int) ([]AlertRecord, error) {
	out, err := s.alerts(ctx, `SELECT id, received_ms, receiver, fingerprint, status, alertname, labels, node, runbook, outcome, reason
		FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY node ORDER BY id DESC) AS nth FROM alerts) WHERE nth <= ? ORDER BY id`, perNode)
	if err != nil {
		return nil, err
	}
	return out, s.attachNotifications(ctx, out)
}

func (s *Store) alerts(ctx context.Context, q string, args ...any) ([]AlertRecord, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("serve: reading %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []AlertRecord
	for rows.Next() {
		var a AlertRecord
		var atMS int64
		var labels string
		if err := rows.Scan(&a.ID, &atMS, &a.Receiver, &a.Fingerprint, &a.Status, &a.Alertname, &labels,
			&a.Node, &a.Runbook, &a.Outcome, &a.Reason); err != nil {
			return nil, fmt.Errorf("serve: reading %s: %w", s.path, err)
		}
		a.ReceivedAt = time.UnixMilli(atMS).UTC()
		if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
			return nil, fmt.Errorf("serve: reading %s: alert %d: labels: %w", s.path, a.ID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("serve: reading %s: %w", s.path, err)
	}
	return out, nil
}

// attachNotifications fills each alert's Notifications.
func (s *Store) attachNotifications(ctx context.Context, alerts []AlertRecord) error {
	if len(alerts) == 0 {
		return nil
	}
	ns, err := s.notifications(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE alert_id >= ? AND alert_id <= ? ORDER BY id`,
		alerts[0].ID, alerts[len(alerts)-1].ID)
	if err != nil {
		return err
	}
	at := make(map[int64]int, len(alerts))
	for i := range alerts {
		at[alerts[i].ID] = i
		alerts[i].Notifications = []NotificationRecord{}
	}
	for _, n := range ns {
		if i, ok := at[n.AlertID]; ok {
			alerts[i].Notifications = append(alerts[i].Notifications, n)
		}
	}
	return nil
}
