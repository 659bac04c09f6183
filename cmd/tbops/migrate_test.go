package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/treasury"
)

// TestTreasuryMigrateExactPath is issue #14.8: `tbops treasury migrate-explorer
// 'q#1.db'` opened (and created) a file called q. It must migrate q#1.db itself.
func TestTreasuryMigrateExactPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	const name = "q#1.db"
	require.NoError(t, os.WriteFile(name, nil, 0o644)) // an empty file is an empty database
	db, err := treasury.OpenExplorerDB(context.Background(), "sqlite", name)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE treasury_disbursements (id INTEGER PRIMARY KEY, amount_ct INTEGER, amount_it INTEGER)`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO treasury_disbursements VALUES (1, 10, 1), (2, 20, 2)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	code, out, errOut := runTreasury(t, nil, "treasury", "migrate-explorer", name)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "rename_amount_ct_to_amount   applied")
	assert.Contains(t, out, "verified: 2 rows, Σ amount 30 before and after")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing created beside the database")
	assert.Equal(t, name, entries[0].Name())

	code, _, errOut = runTreasury(t, nil, "treasury", "migrate-explorer", "q#2.db")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "q#2.db: no such file or directory; pass its path")
	_, err = os.Stat("q")
	assert.ErrorIs(t, err, os.ErrNotExist, "no database is created for a missing path")
}

// TestTreasuryMigrateBusy: an explorer that still has the database open is
// refused, nothing changes, and the error says what to do.
func TestTreasuryMigrateBusy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "explorer.db")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	explorer, err := treasury.OpenExplorerDB(ctx, "sqlite", path)
	require.NoError(t, err)
	defer explorer.Close()
	_, err = explorer.Exec(`CREATE TABLE treasury_disbursements (id INTEGER PRIMARY KEY, amount_ct INTEGER, amount_it INTEGER)`)
	require.NoError(t, err)
	conn, err := explorer.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)

	code, _, errOut := runTreasury(t, nil, "treasury", "migrate-explorer", "--busy-timeout", "50ms", path)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "in use by another process")
	assert.Contains(t, errOut, "; stop explorer first, then re-run")
	_, err = conn.ExecContext(ctx, "ROLLBACK")
	require.NoError(t, err)
	var cols int
	require.NoError(t, conn.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('treasury_disbursements') WHERE name = 'amount_ct'`).Scan(&cols))
	assert.Equal(t, 1, cols, "nothing was applied")
}
