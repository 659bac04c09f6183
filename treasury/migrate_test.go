package treasury_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/theblock/tbops/treasury"
)

// openDB opens an existing database file as the migration command does.
func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := treasury.OpenExplorerDB(context.Background(), "sqlite", path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// legacyDB creates a legacy explorer database of 25 rows at dir/explorer.db.
func legacyDB(t *testing.T, amountCol string, extra ...string) (*sql.DB, string) {
	t.Helper()
	return legacyDBAt(t, filepath.Join(t.TempDir(), "explorer.db"), amountCol, extra...)
}

// legacyDBAt creates it at path: an empty file is an empty SQLite database.
func legacyDBAt(t *testing.T, path, amountCol string, extra ...string) (*sql.DB, string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	db := openDB(t, path)
	ddl := `CREATE TABLE treasury_disbursements (id INTEGER PRIMARY KEY, destination TEXT, ` + amountCol + ` INTEGER, amount_it INTEGER,
		memo TEXT, scheduled_epoch INTEGER, created_at INTEGER, status TEXT, status_ts INTEGER, tx_hash TEXT, cancel_reason TEXT)`
	for _, q := range append([]string{ddl}, extra...) {
		_, err := db.Exec(q)
		require.NoError(t, err)
	}
	tx, err := db.Begin() // one commit, not 25 synced ones
	require.NoError(t, err)
	for i := 1; i <= 25; i++ {
		_, err := tx.Exec(`INSERT INTO treasury_disbursements (id, destination, `+amountCol+`, amount_it, memo, status) VALUES (?, 'ct1x', ?, ?, 'm', 'queued')`,
			i, i*1_000_000, i)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	return db, path
}

func columns(t *testing.T, db *sql.DB) []string {
	rows, err := db.Query(`SELECT name FROM pragma_table_info('treasury_disbursements')`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		out = append(out, n)
	}
	return out
}

var target = []string{"id", "destination", "amount", "memo", "scheduled_epoch", "created_at", "status", "status_ts", "tx_hash", "cancel_reason", "status_payload"}

func statuses(r treasury.MigrationResult) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Status)
	}
	return out
}

func TestMigrateExplorerLayouts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		col   string
		extra []string
		first []string
	}{
		{"amount_ct+amount_it", "amount_ct", nil, []string{"applied", "applied", "applied"}},
		{"amount+amount_it", "amount", nil, []string{"applied", "skipped", "applied"}},
		{"index on amount_it", "amount_ct", []string{"CREATE INDEX idx_it ON treasury_disbursements(amount_it)",
			"CREATE INDEX idx_both ON treasury_disbursements(destination, amount_it)"}, []string{"applied", "applied", "applied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := legacyDB(t, tc.col, tc.extra...)
			res, err := treasury.MigrateExplorer(ctx, db)
			require.NoError(t, err)
			assert.Equal(t, tc.first, statuses(res))
			assert.Equal(t, int64(25), res.RowsBefore)
			assert.Equal(t, res.RowsBefore, res.RowsAfter)
			assert.Equal(t, int64(325_000_000), res.SumAfter)
			assert.Equal(t, target, columns(t, db))
			// Running it again changes nothing.
			again, err := treasury.MigrateExplorer(ctx, db)
			require.NoError(t, err)
			assert.Equal(t, []string{"skipped", "skipped", "skipped"}, statuses(again))
			assert.False(t, again.Changed())
			assert.Equal(t, target, columns(t, db))
		})
	}
}

func TestMigrateExplorerLockedDatabase(t *testing.T) {
	ctx := context.Background()
	db, path := legacyDB(t, "amount_ct")
	other := openDB(t, path)
	conn, err := other.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)
	_, err = treasury.MigrateExplorer(ctx, db, treasury.MigrateOptions{BusyTimeout: 50e6})
	require.ErrorIs(t, err, treasury.ErrDatabaseBusy)
	assert.Contains(t, err.Error(), "in use by another process")
	_, err = conn.ExecContext(ctx, "ROLLBACK")
	require.NoError(t, err)
	// Nothing was half-applied; once the other writer is gone it works.
	assert.Contains(t, columns(t, db), "amount_ct")
	res, err := treasury.MigrateExplorer(ctx, db)
	require.NoError(t, err)
	assert.True(t, res.Changed())
}

func TestMigrateExplorerBadDatabase(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, writeEmpty(t, filepath.Join(t.TempDir(), "empty.db")))
	_, err := treasury.MigrateExplorer(ctx, db)
	require.ErrorContains(t, err, "no table treasury_disbursements")

	db2, _ := legacyDB(t, "amount_ct", "ALTER TABLE treasury_disbursements ADD COLUMN amount INTEGER")
	_, err = treasury.MigrateExplorer(ctx, db2)
	require.ErrorContains(t, err, "both amount_ct and amount")
	assert.NotContains(t, columns(t, db2), "status_payload", "nothing half-applied")
}

// TestOpenExplorerDBExactPath migrates databases whose names a hand-built
// "file:"+path URI gets wrong: '#' starts a fragment, '?' a query, '%' an
// escape. The exact file is migrated and no other file appears beside it.
func TestOpenExplorerDBExactPath(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"q#1.db", "a?b.db", "50% off.db", "%3F.db", "ünï 数据.db"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			db, path := legacyDBAt(t, filepath.Join(dir, name), "amount_ct")
			res, err := treasury.MigrateExplorer(ctx, db)
			require.NoError(t, err)
			assert.True(t, res.Changed())
			require.NoError(t, db.Close())

			assert.Equal(t, []string{name}, dirNames(t, dir), "only the named file, nothing created beside it")
			assert.Equal(t, target, columns(t, openDB(t, path)))
		})
	}
}

func TestOpenExplorerDBRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	legacyDBAt(t, "q#1.db", "amount")
	res, err := treasury.MigrateExplorer(context.Background(), openDB(t, "q#1.db"))
	require.NoError(t, err)
	assert.Equal(t, []string{"applied", "skipped", "applied"}, statuses(res))
	assert.Equal(t, []string{"q#1.db"}, dirNames(t, dir))
}

func TestOpenExplorerDBRefusesMissingPathAndDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "q#1.db")
	_, err := treasury.OpenExplorerDB(ctx, "sqlite", missing)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), missing)
	assert.Empty(t, dirNames(t, dir), "a missing database is never created")

	_, err = treasury.OpenExplorerDB(ctx, "sqlite", dir)
	require.ErrorContains(t, err, "is a directory")

	_, err = treasury.OpenExplorerDB(ctx, "no-such-driver", writeEmpty(t, filepath.Join(dir, "x.db")))
	require.ErrorContains(t, err, "no-such-driver")
}

// TestMigrateExplorerRefusesWALReader is the runbook's "stop explorer so the
// migration can take an exclusive lock" in WAL mode, where BEGIN EXCLUSIVE
// does not wait for readers: an open read transaction, and an idle connection
// that has read, both refuse the migration and leave the database unchanged.
func TestMigrateExplorerRefusesWALReader(t *testing.T) {
	ctx := context.Background()
	db, path := legacyDB(t, "amount_ct", "PRAGMA journal_mode = WAL")
	var mode string
	require.NoError(t, db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, "wal", mode)

	reader := openDB(t, path)
	conn, err := reader.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN")
	require.NoError(t, err)
	var n int
	require.NoError(t, conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM treasury_disbursements").Scan(&n))
	require.Equal(t, 25, n)

	_, err = treasury.MigrateExplorer(ctx, db, treasury.MigrateOptions{BusyTimeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, treasury.ErrDatabaseBusy, "a reader in an open transaction")
	assert.Contains(t, err.Error(), "in use by another process")

	_, err = conn.ExecContext(ctx, "COMMIT")
	require.NoError(t, err)
	_, err = treasury.MigrateExplorer(ctx, db, treasury.MigrateOptions{BusyTimeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, treasury.ErrDatabaseBusy, "an idle explorer connection still has the file open")

	require.NoError(t, conn.Close())
	cols := columns(t, reader) // the reader's own, idle, connection
	assert.Contains(t, cols, "amount_ct", "nothing applied")
	assert.NotContains(t, cols, "status_payload", "nothing half-applied")
	require.NoError(t, reader.Close())

	res, err := treasury.MigrateExplorer(ctx, db)
	require.NoError(t, err, "explorer stopped: the migration runs")
	assert.Equal(t, int64(25), res.RowsAfter)
	assert.Equal(t, target, columns(t, db))
}

// TestMigrateExplorerReleasesTheLock: once the migration returns, explorer can
// write again at once, although db stays open (its exclusive-mode connection
// is closed, not pooled).
func TestMigrateExplorerReleasesTheLock(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"delete", "wal"} {
		t.Run(mode, func(t *testing.T) {
			db, path := legacyDB(t, "amount_ct", "PRAGMA journal_mode = "+mode)
			_, err := treasury.MigrateExplorer(ctx, db)
			require.NoError(t, err)

			other := openDB(t, path)
			_, err = other.Exec("PRAGMA busy_timeout = 0")
			require.NoError(t, err)
			_, err = other.Exec(`UPDATE treasury_disbursements SET status_payload = 'x' WHERE id = 1`)
			require.NoError(t, err, "no lock left behind")
		})
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func writeEmpty(t *testing.T, path string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	return path
}

// The path is used exactly as given, and a missing one is never created.
func ExampleOpenExplorerDB() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "explorer")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "explorer #1.db") // used as is: '#' is part of the name
	_ = os.WriteFile(path, nil, 0o644)           // an empty file is an empty database

	db, err := treasury.OpenExplorerDB(ctx, "sqlite", path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("opened:", db.Ping() == nil)
	db.Close()

	_, err = treasury.OpenExplorerDB(ctx, "sqlite", filepath.Join(dir, "missing.db"))
	fmt.Println("missing:", errors.Is(err, fs.ErrNotExist))
	entries, _ := os.ReadDir(dir)
	fmt.Println("files:", len(entries))
	// Output:
	// opened: true
	// missing: true
	// files: 1
}

// Migrate a legacy explorer database (amount_ct and amount_it, no
// status_payload): each step is applied once, the row count and the sum of
// amounts are checked, and a second run changes nothing.
func ExampleMigrateExplorer() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "explorer")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "explorer.db")
	_ = os.WriteFile(path, nil, 0o644)

	db, err := treasury.OpenExplorerDB(ctx, "sqlite", path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	_, _ = db.Exec(`CREATE TABLE treasury_disbursements (id INTEGER PRIMARY KEY, destination TEXT, amount_ct INTEGER, amount_it INTEGER)`)
	_, _ = db.Exec(`CREATE INDEX by_amount_it ON treasury_disbursements (amount_it)`)
	_, _ = db.Exec(`INSERT INTO treasury_disbursements VALUES (1, 'ct1a', 10, 1), (2, 'ct1b', 20, 2)`)

	for run := 1; run <= 2; run++ {
		res, err := treasury.MigrateExplorer(ctx, db)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, s := range res.Steps {
			fmt.Printf("run %d: %s %s\n", run, s.Name, s.Status)
		}
		fmt.Printf("run %d: %d rows, Σ amount %d before and %d after\n", run, res.RowsAfter, res.SumBefore, res.SumAfter)
	}
	// Output:
	// run 1: add_status_payload applied
	// run 1: rename_amount_ct_to_amount applied
	// run 1: drop_amount_it applied
	// run 1: 2 rows, Σ amount 30 before and 30 after
	// run 2: add_status_payload skipped
	// run 2: rename_amount_ct_to_amount skipped
	// run 2: drop_amount_it skipped
	// run 2: 2 rows, Σ amount 30 before and 30 after
}
