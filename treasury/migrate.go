package treasury

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ExplorerTable is the explorer's treasury table (PROTOCOL.md section 8).
const ExplorerTable = "treasury_disbursements"

// Migration step names.
const (
	StepAddStatusPayload = "add_status_payload"
	StepRenameAmount     = "rename_amount_ct_to_amount"
	StepDropAmountIT     = "drop_amount_it"
)

// Step outcomes.
const (
	StepApplied = "applied"
	StepSkipped = "skipped"
)

// MigrationStep is one step of the explorer migration and what happened.
type MigrationStep struct {
	Name   string   `json:"name"`
	Status string   `json:"status"`
	SQL    []string `json:"sql,omitempty"`
	Detail string   `json:"detail"`
}

// MigrationResult is the outcome of MigrateExplorer: each step, and the row
// count and Σ amount before and after (they must match).
type MigrationResult struct {
	Steps      []MigrationStep `json:"steps"`
	RowsBefore int64           `json:"rows_before"`
	RowsAfter  int64           `json:"rows_after"`
	SumBefore  int64           `json:"sum_before"`
	SumAfter   int64           `json:"sum_after"`
}

// Changed says whether any step was applied.
func (m MigrationResult) Changed() bool {
	for _, s := range m.Steps {
		if s.Status == StepApplied {
			return true
		}
	}
	return false
}

// ErrDatabaseBusy is returned when another process holds the explorer database.
var ErrDatabaseBusy = errors.New("the explorer database is in use by another process")

// MigrateOptions tunes MigrateExplorer.
type MigrateOptions struct {
	// BusyTimeout is how long to wait for another process's lock before refusing
	// (default 200 ms).
	BusyTimeout time.Duration
}

// OpenExplorerDB opens the explorer's SQLite database file at path for
// MigrateExplorer, through the database/sql driver registered as driverName
// ("sqlite" for modernc.org/sqlite; this package imports no driver). The path
// is used exactly as given, whatever characters it has (#, ?, %, spaces,
// non-ASCII): it reaches SQLite as a file: URI with the path percent-escaped,
// with mode=rw so that SQLite opens it read-write and never creates it. A path
// that does not exist is an error naming it (errors.Is(err, fs.ErrNotExist)),
// never a new empty database; a directory is refused too. The pool holds at
// most one connection, because in WAL mode every open connection to the file
// holds a shared lock and the migration needs the file to itself. Close the
// returned DB when done.
func OpenExplorerDB(ctx context.Context, driverName, path string) (*sql.DB, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("treasury: explorer database: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("treasury: explorer database %s is a directory, not a database file", path)
	}
	uri, err := sqliteURI(path)
	if err != nil {
		return nil, fmt.Errorf("treasury: explorer database %s: %w", path, err)
	}
	db, err := sql.Open(driverName, uri)
	if err != nil {
		return nil, fmt.Errorf("treasury: explorer database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("treasury: explorer database %s: %w", path, err)
	}
	return db, nil
}

// sqliteURI is the SQLite URI of the existing file at path, opened read-write
// and never created: file:///abs/path?mode=rw with the path escaped, so that a
// '?' or '#' in the name is part of the name rather than the start of the
// query or fragment, and a '%' is not read as an escape.
func sqliteURI(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive path: file:///C:/…
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: "mode=rw"}
	return u.String(), nil
}

// MigrateExplorer migrates the explorer's treasury_disbursements table from a
// legacy layout (amount_ct or amount, plus amount_it, no status_payload) to the
// target layout, per PROTOCOL.md section 8 and the runbook's "Explorer Treasury
// Schema Migration": add status_payload; rename amount_ct to amount; drop
// amount_it after dropping any index that uses it. Each step is applied or
// skipped (already done). Everything runs in one transaction on one connection
// holding SQLite's exclusive lock on the file: another connection that has the
// database open — a writer, or in WAL mode even a reader — makes it fail with
// ErrDatabaseBusy after the busy timeout and change nothing. That includes other
// open connections of db's own pool, so open db for the migration alone
// (OpenExplorerDB does). The row count and Σ amount are checked before and
// after; a mismatch rolls back. Running it again changes nothing. The
// connection is closed afterwards rather than returned to db's pool, which
// releases the lock.
func MigrateExplorer(ctx context.Context, db *sql.DB, opts ...MigrateOptions) (MigrationResult, error) {
	var res MigrationResult
	o := MigrateOptions{BusyTimeout: 200 * time.Millisecond}
	if len(opts) > 0 && opts[0].BusyTimeout > 0 {
		o.BusyTimeout = opts[0].BusyTimeout
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return res, wrapBusy(fmt.Errorf("treasury: explorer migration: %w", err))
	}
	defer discard(conn)
	if err := lockExclusive(ctx, conn, o.BusyTimeout); err != nil {
		return res, wrapBusy(fmt.Errorf("treasury: explorer migration: taking the exclusive lock: %w", err))
	}
	committed := false
	defer func() {
		if !committed {
			// A fresh context: the rollback must run even when ctx was cancelled.
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	res, err = migrateLocked(ctx, conn)
	if err != nil {
		return res, wrapBusy(err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return res, wrapBusy(fmt.Errorf("treasury: explorer migration: commit: %w", err))
	}
	committed = true
	return res, nil
}

// lockExclusive begins a transaction that holds the database file's EXCLUSIVE
// lock, waiting up to busy for other connections to let go.
//
// BEGIN EXCLUSIVE alone is not enough: in WAL mode it is BEGIN IMMEDIATE, which
// shuts out writers but not readers, so a running explorer would be migrated
// under. With locking_mode=EXCLUSIVE, beginning the write transaction takes the
// EXCLUSIVE lock on the file itself, which conflicts with the SHARED lock every
// WAL connection holds from its first read until it closes; an explorer that
// has the database open, reading or idle, then fails it with SQLITE_BUSY. (A
// TRUNCATE checkpoint was the other candidate, but it completes while a reader
// sits on a snapshot that is already fully checkpointed, so it misses readers.)
// In rollback-journal mode BEGIN EXCLUSIVE already waits for readers; the pragma
// only keeps the lock until the connection closes, which discard does.
func lockExclusive(ctx context.Context, conn *sql.Conn, busy time.Duration) error {
	for _, q := range []string{
		fmt.Sprintf("PRAGMA busy_timeout = %d", busy.Milliseconds()),
		"PRAGMA locking_mode = EXCLUSIVE",
		"BEGIN EXCLUSIVE",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// discard closes conn's database connection instead of returning it to the
// pool: closing is what releases an exclusive-mode lock, and the pragmas set
// for the migration must not outlive it.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

func wrapBusy(err error) error {
	s := strings.ToLower(err.Error())
	if strings.Contains(s, "database is locked") || strings.Contains(s, "sqlite_busy") || strings.Contains(s, "database is busy") {
		return fmt.Errorf("treasury: %w: %v", ErrDatabaseBusy, err)
	}
	return err
}

type column struct {
	name string
	typ  string
}

func tableColumns(ctx context.Context, conn *sql.Conn) ([]column, error) {
	rows, err := conn.QueryContext(ctx, "SELECT name, type FROM pragma_table_info(?)", ExplorerTable)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

func has(cols []column, name string) bool {
	for _, c := range cols {
		if strings.EqualFold(c.name, name) {
			return true
		}
	}
	return false
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func countAndSum(ctx context.Context, conn *sql.Conn, amountCol string) (rows, sum int64, err error) {
	q := "SELECT COUNT(*), COALESCE(SUM(" + quoteIdent(amountCol) + "), 0) FROM " + ExplorerTable
	if amountCol == "" {
		q = "SELECT COUNT(*), 0 FROM " + ExplorerTable
	}
	err = conn.QueryRowContext(ctx, q).Scan(&rows, &sum)
	return rows, sum, err
}

// indexesOn lists the explicit indexes of the table that use column.
func indexesOn(ctx context.Context, conn *sql.Conn, column string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT il.name FROM pragma_index_list(?) AS il
		WHERE il.origin = 'c' AND EXISTS (SELECT 1 FROM pragma_index_info(il.name) AS ii WHERE ii.name = ? COLLATE NOCASE)`, ExplorerTable, column)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Expression and partial indexes name the column only in their SQL.
	rows2, err := conn.QueryContext(ctx, `SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' AND tbl_name = ?`, ExplorerTable)
	if err != nil {
		return nil, err
	}
	defer rows2.Close()
	for rows2.Next() {
		var n, s string
		if err := rows2.Scan(&n, &s); err != nil {
			return nil, err
		}
		if s != "" && strings.Contains(strings.ToLower(s), strings.ToLower(column)) && !contains(out, n) {
			out = append(out, n)
		}
	}
	return out, rows2.Err()
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func migrateLocked(ctx context.Context, conn *sql.Conn) (MigrationResult, error) {
	var res MigrationResult
	fail := func(format string, args ...any) (MigrationResult, error) {
		return res, fmt.Errorf("treasury: explorer migration: "+format, args...)
	}
	cols, err := tableColumns(ctx, conn)
	if err != nil {
		return fail("reading the schema: %w", err)
	}
	if len(cols) == 0 {
		return fail("no table %s in this database (is it the explorer database?)", ExplorerTable)
	}
	hasCT, hasAmount := has(cols, "amount_ct"), has(cols, "amount")
	if hasCT && hasAmount {
		return fail("%s has both amount_ct and amount: resolve by hand, nothing changed", ExplorerTable)
	}
	before := "amount"
	if hasCT {
		before = "amount_ct"
	} else if !hasAmount {
		before = ""
	}
	res.RowsBefore, res.SumBefore, err = countAndSum(ctx, conn, before)
	if err != nil {
		return fail("counting rows: %w", err)
	}
	exec := func(step *MigrationStep, q string) error {
		step.SQL = append(step.SQL, q)
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("treasury: explorer migration: step %s: %s: %w", step.Name, q, err)
		}
		return nil
	}

	// 1. Add status_payload.
	st := MigrationStep{Name: StepAddStatusPayload}
	if has(cols, "status_payload") {
		st.Status, st.Detail = StepSkipped, "status_payload already exists"
	} else {
		if err := exec(&st, "ALTER TABLE "+ExplorerTable+" ADD COLUMN status_payload TEXT"); err != nil {
			return res, err
		}
		st.Status, st.Detail = StepApplied, "added status_payload TEXT"
	}
	res.Steps = append(res.Steps, st)

	// 2. Rename amount_ct to amount (the runbook's "amount TO amount").
	st = MigrationStep{Name: StepRenameAmount}
	switch {
	case hasCT:
		if err := exec(&st, "ALTER TABLE "+ExplorerTable+" RENAME COLUMN amount_ct TO amount"); err != nil {
			return res, err
		}
		st.Status, st.Detail = StepApplied, "renamed amount_ct to amount"
	case hasAmount:
		st.Status, st.Detail = StepSkipped, "amount already exists"
	default:
		return fail("%s has neither amount_ct nor amount: not an explorer treasury table, nothing changed", ExplorerTable)
	}
	res.Steps = append(res.Steps, st)

	// 3. Drop amount_it, after the indexes that use it.
	st = MigrationStep{Name: StepDropAmountIT}
	if has(cols, "amount_it") {
		idx, err := indexesOn(ctx, conn, "amount_it")
		if err != nil {
			return fail("listing indexes: %w", err)
		}
		for _, n := range idx {
			if err := exec(&st, "DROP INDEX "+quoteIdent(n)); err != nil {
				return res, err
			}
		}
		if err := exec(&st, "ALTER TABLE "+ExplorerTable+" DROP COLUMN amount_it"); err != nil {
			return res, err
		}
		st.Status, st.Detail = StepApplied, "dropped amount_it"
		if len(idx) > 0 {
			st.Detail += fmt.Sprintf(" and its indexes %s", strings.Join(idx, ", "))
		}
	} else {
		st.Status, st.Detail = StepSkipped, "amount_it already dropped"
	}
	res.Steps = append(res.Steps, st)

	res.RowsAfter, res.SumAfter, err = countAndSum(ctx, conn, "amount")
	if err != nil {
		return fail("counting rows after: %w", err)
	}
	if res.RowsAfter != res.RowsBefore || res.SumAfter != res.SumBefore {
		return fail("verification failed: %d rows with Σ amount %d before, %d rows with Σ %d after: rolled back",
			res.RowsBefore, res.SumBefore, res.RowsAfter, res.SumAfter)
	}
	return res, nil
}
