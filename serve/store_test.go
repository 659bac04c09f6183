package serve_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/serve"
)

var t0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

func openStore(t *testing.T, path string) *serve.Store {
	t.Helper()
	st, err := serve.OpenStore(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestStoreRecordsTransitionsAndReadsThemBackReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state #1?.db") // '#' and '?' are part of the name
	st := openStore(t, path)
	rep := tbops.NewReport("treasury-stuck", "http://node-a:3030/", t0)
	rep.Symptoms = []tbops.Symptom{{ID: "backlog-high", Summary: "backlog", Firing: true, Status: tbops.StatusCritical, Value: tbops.Num(80)}}
	rep.Finalize()
	id1, err := st.Record(ctx, serve.Transition{Node: "http://node-a:3030/", Runbook: "treasury-stuck", To: tbops.StatusUnknown, At: t0})
	require.NoError(t, err)
	id2, err := st.Record(ctx, serve.Transition{Node: "http://node-a:3030/", Runbook: "treasury-stuck", From: tbops.StatusUnknown,
		To: tbops.StatusCritical, At: t0.Add(10 * time.Minute), Firing: []string{"backlog-high"}, Report: &rep})
	require.NoError(t, err)
	assert.Greater(t, id2, id1)

	// A reader while serve still has the file open (WAL), read-only.
	ro, err := serve.OpenStoreReadOnly(ctx, path)
	require.NoError(t, err)
	defer ro.Close()
	ts, err := ro.Transitions(ctx, serve.Filter{Node: "http://node-a:3030/"})
	require.NoError(t, err)
	require.Len(t, ts, 2)
	assert.Equal(t, tbops.Status(""), ts[0].From, "the first verdict has no from")
	assert.Equal(t, tbops.StatusCritical, ts[1].To)
	assert.Equal(t, []string{"backlog-high"}, ts[1].Firing)
	assert.Nil(t, ts[1].Report, "listings carry no report")
	assert.True(t, ts[1].At.Equal(t0.Add(10*time.Minute)))

	full, err := ro.Transition(ctx, id2)
	require.NoError(t, err)
	require.NotNil(t, full.Report)
	want, _ := json.Marshal(rep)
	got, _ := json.Marshal(full.Report)
	assert.JSONEq(t, string(want), string(got), "the report is kept as it was")
	_, err = ro.Transition(ctx, 999)
	assert.ErrorIs(t, err, serve.ErrNotFound)
	_, err = ro.Record(ctx, serve.Transition{Node: "x", Runbook: "y", To: tbops.StatusOK, At: t0})
	assert.ErrorIs(t, err, serve.ErrReadOnly)

	since, err := ro.Transitions(ctx, serve.Filter{Since: t0.Add(time.Minute)})
	require.NoError(t, err)
	require.Len(t, since, 1)
	newest, err := ro.Transitions(ctx, serve.Filter{Limit: 1})
	require.NoError(t, err)
	require.Len(t, newest, 1)
	assert.Equal(t, id2, newest[0].ID)

	// After serve closed it cleanly (the WAL checkpointed away), read-only still works.
	require.NoError(t, st.Close())
	require.NoError(t, ro.Close())
	ro2, err := serve.OpenStoreReadOnly(ctx, path)
	require.NoError(t, err)
	defer ro2.Close()
	latest, err := ro2.Latest(ctx)
	require.NoError(t, err)
	require.Len(t, latest, 1)
	assert.Equal(t, id2, latest[0].ID)
	require.NotNil(t, latest[0].Report)
}

func TestStoreJSONHasNullFromAndNumbers(t *testing.T) {
	tr := serve.Transition{ID: 3, Node: "n", Runbook: "r", To: tbops.StatusOK, At: t0}
	b, err := json.Marshal(tr)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":3,"node":"n","runbook":"r","from":null,"to":"ok","at":"2026-11-29T03:00:00Z","firing":[]}`, string(b))
	var back serve.Transition
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, tbops.Status(""), back.From)
	tr.From = tbops.StatusWarning
	b, _ = json.Marshal(tr)
	assert.Contains(t, string(b), `"from":"warning"`)
}

func TestStorePruneKeepsTheNewestOfEachCell(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	for i, to := range []tbops.Status{tbops.StatusUnknown, tbops.StatusOK, tbops.StatusWarning} {
		_, err := st.Record(ctx, serve.Transition{Node: "a", Runbook: "r", To: to, At: t0.Add(time.Duration(i) * time.Hour)})
		require.NoError(t, err)
	}
	_, err := st.Record(ctx, serve.Transition{Node: "b", Runbook: "r", To: tbops.StatusOK, At: t0})
	require.NoError(t, err)
	n, err := st.Prune(ctx, t0.Add(24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "everything old but the newest of a/r and of b/r")
	left, err := st.Transitions(ctx, serve.Filter{})
	require.NoError(t, err)
	require.Len(t, left, 2)
	assert.Equal(t, tbops.StatusWarning, left[0].To)
	assert.Equal(t, "b", left[1].Node)
}

func TestStoreRefusesWhatItCannotRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	_, err := serve.OpenStoreReadOnly(ctx, filepath.Join(dir, "missing.db"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "a missing file is never created read-only")
	_, err = os.Stat(filepath.Join(dir, "missing.db"))
	assert.ErrorIs(t, err, fs.ErrNotExist)

	_, err = serve.OpenStore(ctx, dir)
	assert.ErrorContains(t, err, "is a directory")

	// Another SQLite database is not a state file.
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", "file:"+other)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE t (x)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = serve.OpenStoreReadOnly(ctx, other)
	assert.ErrorIs(t, err, serve.ErrSchemaVersion)

	// A state file from a newer tbops is refused, not downgraded.
	newer := filepath.Join(dir, "newer.db")
	st, err := serve.OpenStore(ctx, newer)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	db, err = sql.Open("sqlite", "file:"+newer)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE schema_version SET version = ?`, serve.SchemaVersion+1)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = serve.OpenStore(ctx, newer)
	assert.ErrorIs(t, err, serve.ErrSchemaVersion)
	_, err = serve.OpenStoreReadOnly(ctx, newer)
	assert.ErrorIs(t, err, serve.ErrSchemaVersion)
}

func TestStoreReopensWithoutMigratingAgain(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := serve.OpenStore(ctx, path)
	require.NoError(t, err)
	_, err = st.Record(ctx, serve.Transition{Node: "a", Runbook: "r", To: tbops.StatusOK, At: t0})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	_, err = st.Record(ctx, serve.Transition{Node: "a", Runbook: "r", To: tbops.StatusOK, At: t0})
	assert.True(t, errors.Is(err, serve.ErrClosed), "a closed store refuses writes: %v", err)

	st = openStore(t, path)
	ts, err := st.Transitions(ctx, serve.Filter{})
	require.NoError(t, err)
	assert.Len(t, ts, 1)
}

// A state file of schema version 1 (main's, before the Alertmanager webhook),
// written with that version's own statements, migrates forward with its
// transitions intact, and is readable read-only before it has migrated.
func TestStoreMigratesAVersion1File(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
		`INSERT INTO schema_version (version) VALUES (1)`,
		`CREATE TABLE transitions (id INTEGER PRIMARY KEY, node TEXT NOT NULL, runbook TEXT NOT NULL, from_status TEXT,
			to_status TEXT NOT NULL, at_ms INTEGER NOT NULL, firing TEXT NOT NULL, report TEXT NOT NULL)`,
		`CREATE INDEX transitions_cell ON transitions (node, runbook, id)`,
		`CREATE INDEX transitions_at ON transitions (at_ms)`,
		`INSERT INTO transitions (node, runbook, from_status, to_status, at_ms, firing, report)
			VALUES ('http://node-a:3030/', 'treasury-stuck', NULL, 'critical', 1796007600000, '["backlog-high"]', 'null')`,
	} {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	require.NoError(t, db.Close())

	ro, err := serve.OpenStoreReadOnly(ctx, path)
	require.NoError(t, err, "an older file is readable while the older serve still runs")
	ts, err := ro.Transitions(ctx, serve.Filter{})
	require.NoError(t, err)
	require.Len(t, ts, 1)
	_, err = ro.Alerts(ctx, serve.AlertFilter{})
	assert.ErrorContains(t, err, "schema version 1, from before the Alertmanager webhook")
	require.NoError(t, ro.Close())

	st := openStore(t, path)
	ts, err = st.Transitions(ctx, serve.Filter{})
	require.NoError(t, err)
	require.Len(t, ts, 1, "the transitions are intact")
	assert.Equal(t, tbops.StatusCritical, ts[0].To)
	assert.Equal(t, []string{"backlog-high"}, ts[0].Firing)
	assert.Equal(t, int64(1796007600000), ts[0].At.UnixMilli())
	as, err := st.Alerts(ctx, serve.AlertFilter{})
	require.NoError(t, err)
	assert.Empty(t, as, "the new tables exist, empty")
	require.NoError(t, st.Close())

	db, err = sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	var v int
	require.NoError(t, db.QueryRow(`SELECT version FROM schema_version`).Scan(&v))
	assert.Equal(t, serve.SchemaVersion, v)
}
