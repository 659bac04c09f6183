package serve

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"

	"github.com/theblock/tbops"
)

// SchemaVersion is the state file schema this version writes and reads: the
// number of migrations.
const SchemaVersion = 2

// migrations are the state file's schema, one step per version: version N is
// migrations()[:N] applied. A new table (the Alertmanager webhook's alerts and
// notifications, say) is a new step appended here, with SchemaVersion raised,
// never an edit of an old step.
func migrations() []string {
	return []string{
		// 1: verdict transitions. at_ms is Unix milliseconds; from_status is NULL
		// for the first verdict recorded for a node and runbook; firing is a JSON
		// array of symptom ids; report is the report's JSON.
		`CREATE TABLE transitions (
		id          INTEGER PRIMARY KEY,
		node        TEXT    NOT NULL,
		runbook     TEXT    NOT NULL,
		from_status TEXT,
		to_status   TEXT    NOT NULL,
		at_ms       INTEGER NOT NULL,
		firing      TEXT    NOT NULL,
		report      TEXT    NOT NULL
	);
	CREATE INDEX transitions_cell ON transitions (node, runbook, id);
	CREATE INDEX transitions_at ON transitions (at_ms);`,
		// 2: the Alertmanager webhook. alerts holds every alert received (alert is
		// its JSON as received, labels a JSON object; node and runbook are "" when
		// none matched; outcome and reason say what serve did with it).
		// notifications holds every notification decided for an alert: target is
		// the URL's scheme://host only, target_key a SHA-256 of the whole URL (the
		// dedupe key without the secret), verdict the verdict it carried, report
		// the report's JSON (NULL when suppressed).
		`CREATE TABLE alerts (
		id          INTEGER PRIMARY KEY,
		received_ms INTEGER NOT NULL,
		receiver    TEXT    NOT NULL,
		fingerprint TEXT    NOT NULL,
		status      TEXT    NOT NULL,
		alertname   TEXT    NOT NULL,
		labels      TEXT    NOT NULL,
		alert       TEXT    NOT NULL,
		node        TEXT    NOT NULL,
		runbook     TEXT    NOT NULL,
		outcome     TEXT    NOT NULL,
		reason      TEXT    NOT NULL
	);
	CREATE INDEX alerts_node ON alerts (node, id);
	CREATE INDEX alerts_received ON alerts (received_ms);
	CREATE TABLE notifications (
		id          INTEGER PRIMARY KEY,
		alert_id    INTEGER NOT NULL,
		fingerprint TEXT    NOT NULL,
		target      TEXT    NOT NULL,
		target_key  TEXT    NOT NULL,
		format      TEXT    NOT NULL,
		kind        TEXT    NOT NULL,
		attempts    INTEGER NOT NULL,
		result      TEXT    NOT NULL,
		error       TEXT    NOT NULL,
		at_ms       INTEGER NOT NULL,
		verdict     TEXT    NOT NULL,
		report      TEXT
	);
	CREATE INDEX notifications_key ON notifications (fingerprint, target_key, id);
	CREATE INDEX notifications_alert ON notifications (alert_id);`,
	}
}

// Store is serve's state file: one SQLite database in WAL mode holding every
// verdict transition with its report. One goroutine writes, a transaction per
// write, so a transition is durable (synchronous=FULL) when Record returns;
// readers run concurrently. It is safe for concurrent use.
type Store struct {
	db       *sql.DB
	path     string
	readOnly bool
	// readVersion is the schema of a file opened read-only (an older serve's
	// file lacks the newer tables).
	readVersion int

	writes    chan storeWrite
	done      chan struct{} // closed when the writer has stopped
	closeOnce sync.Once
	closeErr  error
	stop      chan struct{}
}

// storeWrite is one transaction for the writer goroutine.
type storeWrite struct {
	ctx context.Context
	f   func(ctx context.Context, tx *sql.Tx) error
	res chan error
}

// OpenStore opens the state file at path for serve, creating it (and applying
// the schema's migrations) if needed. Close it when done.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("serve: state file %s is a directory", path)
	}
	s, err := openStore(ctx, path, "rwc")
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("serve: state file %s: %w", path, err)
	}
	s.writes, s.stop, s.done = make(chan storeWrite), make(chan struct{}), make(chan struct{})
	go s.writer()
	return s, nil
}

// OpenStoreReadOnly opens an existing state file for reading only (SQLite
// mode=ro), as `tbops history` does while serve may be writing it. A missing
// file is an error (errors.Is(err, fs.ErrNotExist)), never a new database.
func OpenStoreReadOnly(ctx context.Context, path string) (*Store, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("serve: state file: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("serve: state file %s is a directory", path)
	}
	s, err := openStore(ctx, path, "ro")
	if err != nil {
		return nil, err
	}
	v, err := s.version(ctx)
	if err == nil && (v < 1 || v > SchemaVersion) {
		err = fmt.Errorf("%w: version %d, this tbops reads 1 to %d", ErrSchemaVersion, v, SchemaVersion)
	}
	if err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("serve: state file %s: %w", path, err)
	}
	s.readOnly, s.readVersion = true, v
	s.done = make(chan struct{})
	close(s.done)
	return s, nil
}

func openStore(ctx context.Context, path, mode string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("serve: state file %s: %w", path, err)
	}
	// A file: URI with the path escaped, so that '?', '#' and '%' in a name
	// are part of the name.
	q := url.Values{"mode": {mode}}
	q.Add("_pragma", "busy_timeout(5000)")
	if mode != "ro" {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("serve: state file %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("serve: state file %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// version reads schema_version; a file without it is not a state file.
func (s *Store) version(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return 0, fmt.Errorf("%w: no schema_version table (not a tbops serve state file?)", ErrSchemaVersion)
		}
		return 0, err
	}
	return v, nil
}

// migrate brings the schema to SchemaVersion, one transaction per step.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_version (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)`); err != nil {
		return err
	}
	v, err := s.version(ctx)
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: version %d was written by a newer tbops (this one knows %d)", ErrSchemaVersion, v, SchemaVersion)
	}
	steps := migrations()
	for ; v < SchemaVersion; v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, steps[v]); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migration to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// writer runs every write, one transaction each, until Close.
func (s *Store) writer() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case w := <-s.writes:
			w.res <- s.transact(w.ctx, w.f)
		}
	}
}

func (s *Store) transact(ctx context.Context, f func(context.Context, *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// write hands f to the writer goroutine and waits for its commit.
func (s *Store) write(ctx context.Context, f func(context.Context, *sql.Tx) error) error {
	if s.readOnly {
		return ErrReadOnly
	}
	w := storeWrite{ctx: ctx, f: f, res: make(chan error, 1)}
	select {
	case s.writes <- w:
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-w.res
}

// Path is the state file's path as given.
func (s *Store) Path() string { return s.path }

// Record writes one transition (its ID is ignored) in a transaction of its
// own and returns the ID it was given, once committed.
func (s *Store) Record(ctx context.Context, t Transition) (int64, error) {
	firing, err := json.Marshal(nonNilStrings(t.Firing))
	if err != nil {
		return 0, err
	}
	var report []byte
	if t.Report != nil {
		if report, err = json.Marshal(t.Report); err != nil {
			return 0, fmt.Errorf("serve: encoding the report of %s %s: %w", t.Node, t.Runbook, err)
		}
	} else {
		report = []byte("null")
	}
	var from any
	if t.From != "" {
		from = string(t.From)
	}
	var id int64
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO transitions (node, runbook, from_status, to_status, at_ms, firing, report)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, t.Node, t.Runbook, from, string(t.To), t.At.UnixMilli(), string(firing), string(report))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("serve: recording %s %s → %s in %s: %w", t.Node, t.Runbook, t.To, s.path, err)
	}
	return id, nil
}

// Prune deletes the transitions older than before, except the newest of each
// node and runbook (so a verdict that has held for longer than the retention
// is still known after a restart), and the alerts received and notifications
// decided before it. It returns how many transitions it deleted.
func (s *Store) Prune(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM transitions WHERE at_ms < ?
			AND id NOT IN (SELECT MAX(id) FROM transitions GROUP BY node, runbook)`, before.UnixMilli())
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM notifications WHERE at_ms < ?`, before.UnixMilli()); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM alerts WHERE received_ms < ?
			AND id NOT IN (SELECT alert_id FROM notifications)`, before.UnixMilli())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("serve: pruning %s: %w", s.path, err)
	}
	return n, nil
}

// Filter selects transitions. Empty fields select everything.
type Filter struct {
	// Node is a node's Label.
	Node    string
	Runbook string
	// Since keeps transitions at or after it.
	Since time.Time
	// Limit keeps only the newest Limit transitions (0: all).
	Limit int
}

// transitionColumns are the columns scanTransition reads, without the report.
const transitionColumns = `id, node, runbook, from_status, to_status, at_ms, firing`

// Transitions returns the transitions f selects, oldest first, without their
// reports (Report fetches one).
func (s *Store) Transitions(ctx context.Context, f Filter) ([]Transition, error) {
	var where []string
	var args []any
	if f.Node != "" {
		where, args = append(where, "node = ?"), append(args, f.Node)
	}
	if f.Runbook != "" {
		where, args = append(where, "runbook = ?"), append(args, f.Runbook)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at_ms >= ?"), append(args, f.Since.UnixMilli())
	}
	q := `SELECT ` + transitionColumns + ` FROM transitions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	out, err := s.query(ctx, q, false, args...)
	if err != nil {
		return nil, err
	}
	reverse(out)
	return out, nil
}

// recent returns the newest perCell transitions of every node and runbook,
// oldest first, without reports: what the page shows after a restart.
func (s *Store) recent(ctx context.Context, perCell int) ([]Transition, error) {
	out, err := s.query(ctx, `SELECT `+transitionColumns+` FROM (
		SELECT *, ROW_NUMBER() OVER (PARTITION BY node, runbook ORDER BY id DESC) AS nth FROM transitions)
		WHERE nth <= ? ORDER BY id`, false, perCell)
	return out, err
}

// Latest returns the newest transition of every node and runbook, with its
// report: the verdicts in force when serve last ran.
func (s *Store) Latest(ctx context.Context) ([]Transition, error) {
	return s.query(ctx, `SELECT `+transitionColumns+`, report FROM transitions
		WHERE id IN (SELECT MAX(id) FROM transitions GROUP BY node, runbook) ORDER BY id`, true)
}

// Transition returns one transition with its report.
func (s *Store) Transition(ctx context.Context, id int64) (Transition, error) {
	out, err := s.query(ctx, `SELECT `+transitionColumns+`, report FROM transitions WHERE id = ?`, true, id)
	if err != nil {
		return Transition{}, err
	}
	if len(out) == 0 {
		return Transition{}, fmt.Errorf("%w: transition %d in %s", ErrNotFound, id, s.path)
	}
	return out[0], nil
}

func (s *Store) query(ctx context.Context, q string, withReport bool, args ...any) ([]Transition, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("serve: reading %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		t, err := scanTransition(rows, withReport)
		if err != nil {
			return nil, fmt.Errorf("serve: reading %s: %w", s.path, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("serve: reading %s: %w", s.path, err)
	}
	return out, nil
}

func scanTransition(rows *sql.Rows, withReport bool) (Transition, error) {
	var (
		t            Transition
		from         sql.NullString
		to, firing   string
		atMS         int64
		reportColumn []byte
	)
	dest := []any{&t.ID, &t.Node, &t.Runbook, &from, &to, &atMS, &firing}
	if withReport {
		dest = append(dest, &reportColumn)
	}
	if err := rows.Scan(dest...); err != nil {
		return t, err
	}
	t.From, t.To, t.At = tbops.Status(from.String), tbops.Status(to), time.UnixMilli(atMS).UTC()
	if err := json.Unmarshal([]byte(firing), &t.Firing); err != nil {
		return t, fmt.Errorf("transition %d: firing: %w", t.ID, err)
	}
	if withReport && string(reportColumn) != "null" {
		var r tbops.Report
		if err := json.Unmarshal(reportColumn, &r); err != nil {
			return t, fmt.Errorf("transition %d: report: %w", t.ID, err)
		}
		t.Report = &r
	}
	return t, nil
}

// Close stops the writer (after the write in progress) and closes the file,
// which checkpoints the WAL into it.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
