package treasury_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/theblock/tbops/treasury"
)

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func legacyDB(t *testing.T, amountCol string, extra ...string) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "explorer.db")
	db := openDB(t, path)
	ddl := `CREATE TABLE treasury_disbursements (id INTEGER PRIMARY KEY, destination TEXT, ` + amountCol + ` INTEGER, amount_it INTEGER,
		memo TEXT, scheduled_epoch INTEGER, created_at INTEGER, status TEXT, status_ts INTEGER, tx_hash TEXT, cancel_reason TEXT)`
	for _, q := range append([]string{ddl}, extra...) {
		_, err := db.Exec(q)
		require.NoError(t, err)
	}
	for i := 1; i <= 25; i++ {
		_, err := db.Exec(`INSERT INTO treasury_disbursements (id, destination, `+amountCol+`, amount_it, memo, status) VALUES (?, 'ct1x', ?, ?, 'm', 'queued')`,
			i, i*1_000_000, i)
		require.NoError(t, err)
	}
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
	assert.Contains(t, err.Error(), "stop explorer first")
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
	db := openDB(t, filepath.Join(t.TempDir(), "empty.db"))
	_, err := treasury.MigrateExplorer(ctx, db)
	require.ErrorContains(t, err, "no table treasury_disbursements")

	db2, _ := legacyDB(t, "amount_ct", "ALTER TABLE treasury_disbursements ADD COLUMN amount INTEGER")
	_, err = treasury.MigrateExplorer(ctx, db2)
	require.ErrorContains(t, err, "both amount_ct and amount")
	assert.NotContains(t, columns(t, db2), "status_payload", "nothing half-applied")
}
