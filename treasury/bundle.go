package treasury

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// DefaultDumpWindow is how far back the bundle's Prometheus dump reaches.
const DefaultDumpWindow = time.Hour

// BundleSeries are the treasury series the incident bundle dumps.
var bundleSeries = []string{MetricBacklog, MetricBalance, MetricErrors, MetricDisbursements,
	MetricLag + "_count", MetricLag + "_sum", MetricTickDuration + "_count", MetricTickDuration + "_sum"}

// Bundle describes a written incident bundle (Path D).
type Bundle struct {
	// Path is the directory or .tar.gz written.
	Path string `json:"path"`
	// Files are the names inside it.
	Files []string `json:"files"`
	// Started is the best estimate of when the problem started (zero if unknown),
	// and StartedWhy the signal it comes from.
	Started    time.Time `json:"started,omitempty"`
	StartedWhy string    `json:"started_why,omitempty"`
}

// WriteBundle writes Path D's incident bundle to path: a directory, or a gzipped
// tar when path ends in .tar.gz or .tgz. It holds disbursements.json (the
// balance, executor and every disbursement now), executor_logs.txt (every log
// line mentioning treasury_executor or DisbursementError), prometheus_dump.json
// (the treasury series over the last hour from src, when src is not nil),
// report.json (r, when not nil) and summary.txt (when the problem started and
// what to send). It refuses to overwrite an existing file or a non-empty
// directory. Reading failures become notes in summary.txt, not errors. URL
// passwords are redacted in every file (tbops.RedactText), log lines included.
func WriteBundle(ctx context.Context, path string, c *Client, src promq.Source, opts Options, r *tbops.Report) (Bundle, error) {
	clock := time.Now
	if c != nil {
		clock = c.Now
	}
	opts, err := opts.withDefaults(clock)
	if err != nil {
		return Bundle{}, err
	}
	if path == "" {
		return Bundle{}, fmt.Errorf("%w: bundle path is empty", ErrInvalidArgument)
	}
	tarball := strings.HasSuffix(path, ".tar.gz") || strings.HasSuffix(path, ".tgz")
	if err := checkFresh(path, tarball); err != nil {
		return Bundle{}, err
	}
	now := opts.Now()
	files := map[string][]byte{}
	var notes []string

	// Disbursement snapshot.
	snap := map[string]any{"taken_at": now.UTC()}
	if c != nil {
		bal, err := c.Balance(ctx)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s failed: %v", MethodBalance, err))
		} else {
			snap["balance"] = bal
		}
		var ds []Disbursement
		var invalid []string
		for d, err := range c.All(ctx, ListOptions{}) {
			if err != nil {
				if errors.Is(err, ErrRecord) {
					invalid = append(invalid, err.Error())
					continue
				}
				notes = append(notes, fmt.Sprintf("%s failed after %d records: %v", MethodDisbursements, len(ds), err))
				break
			}
			if len(ds) >= opts.MaxDisbursements {
				notes = append(notes, fmt.Sprintf("snapshot capped at %d disbursements", opts.MaxDisbursements))
				break
			}
			ds = append(ds, d)
		}
		snap["disbursements"], snap["invalid"] = ds, invalid
		if ctx.Err() != nil {
			return Bundle{}, ctx.Err()
		}
		b := startEstimate(now, bal, ds)
		files["disbursements.json"], _ = json.MarshalIndent(snap, "", "  ")
		started, startedWhy := b.at, b.why
		// Metric dump, and the backlog's own start.
		dump, mStart, mWhy := promDump(ctx, src, now, &notes)
		if dump != nil {
			files["prometheus_dump.json"] = dump
		}
		if !mStart.IsZero() && (started.IsZero() || mStart.Before(started)) {
			started, startedWhy = mStart, mWhy
		}
		return finishBundle(path, tarball, files, notes, now, started, startedWhy, r, opts)
	}
	dump, mStart, mWhy := promDump(ctx, src, now, &notes)
	if dump != nil {
		files["prometheus_dump.json"] = dump
	}
	return finishBundle(path, tarball, files, notes, now, mStart, mWhy, r, opts)
}

type bundleStart struct {
	at  time.Time
	why string
}

// startEstimate is the earliest sign of trouble in the RPC data: the executor's
// last error, the oldest disbursement queued for more than an hour, or the last
// success of an executor that now fails.
func startEstimate(now time.Time, bal Balance, ds []Disbursement) bundleStart {
	var b bundleStart
	consider := func(unix int64, why string) {
		if unix <= 0 {
			return
		}
		t := time.Unix(unix, 0).UTC()
		if b.at.IsZero() || t.Before(b.at) {
			b.at, b.why = t, why
		}
	}
	if e := bal.Executor; e != nil && e.LastError != nil {
		consider(orZero(e.LastErrorAt), fmt.Sprintf("executor last_error %q first reported", *e.LastError))
		consider(orZero(e.LastSuccessAt), "the executor's last success (failing since)")
	}
	cut := now.Add(-StuckAfter).Unix()
	for _, d := range ds {
		if d.Status.State == StateQueued && d.CreatedAt < cut {
			consider(d.CreatedAt, fmt.Sprintf("disbursement %d queued and never executed", d.ID))
		}
	}
	return b
}

func promDump(ctx context.Context, src promq.Source, now time.Time, notes *[]string) ([]byte, time.Time, string) {
	if src == nil {
		*notes = append(*notes, "no metrics source: no Prometheus dump (fetch one with curl http://localhost:9090/api/v1/query_range?...)")
		return nil, time.Time{}, ""
	}
	type series struct {
		Query    string         `json:"query"`
		Evidence tbops.Evidence `json:"evidence"`
		Result   any            `json:"result"`
		Warnings []string       `json:"warnings,omitempty"`
	}
	out := map[string]any{"source": src.Name(), "window": DefaultDumpWindow.String(), "taken_at": now.UTC()}
	var all []series
	var started time.Time
	var why string
	for _, name := range bundleSeries {
		rr, err := src.Samples(ctx, promq.Select(name), DefaultDumpWindow)
		if err != nil {
			*notes = append(*notes, fmt.Sprintf("metrics %s: %v", name, err))
			continue
		}
		all = append(all, series{Query: fmt.Sprintf("%s[%s]", name, DefaultDumpWindow), Evidence: rr.Evidence, Result: rr.Matrix, Warnings: rr.Warnings})
		if name == MetricBacklog {
			for _, s := range rr.Matrix {
				// The start of the current run above the warning threshold.
				var runStart time.Time
				for i := len(s.Values) - 1; i >= 0 && float64(s.Values[i].Value) > BacklogWarning; i-- {
					runStart = s.Values[i].Timestamp.Time().UTC()
				}
				if !runStart.IsZero() && (started.IsZero() || runStart.Before(started)) {
					started, why = runStart, fmt.Sprintf("%s above %d since (within the dumped hour)", MetricBacklog, BacklogWarning)
				}
			}
		}
	}
	out["series"] = all
	b, _ := json.MarshalIndent(out, "", "  ")
	return b, started, why
}

func finishBundle(path string, tarball bool, files map[string][]byte, notes []string, now, started time.Time, why string, r *tbops.Report, opts Options) (Bundle, error) {
	logs, err := ScanLogs(opts.LogGlobs, IsExecutorLine, 100_000, opts.LogMaxBytes)
	if err != nil {
		return Bundle{}, err
	}
	notes = append(notes, logs.Problems...)
	var lb strings.Builder
	for _, l := range logs.Lines {
		lb.WriteString(l.File + ":" + l.Line + "\n")
	}
	files["executor_logs.txt"] = []byte(lb.String())
	if r != nil {
		files["report.json"], _ = json.MarshalIndent(r, "", "  ")
	}
	var s strings.Builder
	fmt.Fprintf(&s, "Treasury incident bundle, taken %s\n\n", now.UTC().Format(time.RFC3339))
	if started.IsZero() {
		fmt.Fprintln(&s, "When it started: unknown (no failing executor, stuck disbursement or high backlog found)")
	} else {
		fmt.Fprintf(&s, "When it started: %s (%s ago): %s\n", started.Format(time.RFC3339), now.Sub(started).Round(time.Second), why)
	}
	if r != nil {
		fmt.Fprintf(&s, "Diagnosis: %s", strings.ToUpper(string(r.Status)))
		for _, sy := range r.Firing() {
			fmt.Fprintf(&s, "; %s", sy.ID)
		}
		fmt.Fprintln(&s)
	}
	fmt.Fprintf(&s, "Executor log lines: %d\n", len(logs.Lines))
	fmt.Fprintln(&s, "\nSend to the operations team: this bundle (disbursements.json, executor_logs.txt, prometheus_dump.json, report.json) and a description of when the issue started.")
	if len(notes) > 0 {
		fmt.Fprintln(&s, "\nNotes:")
		for _, n := range notes {
			fmt.Fprintf(&s, "  - %s\n", n)
		}
	}
	files["summary.txt"] = []byte(s.String())

	names := make([]string, 0, len(files))
	for n, b := range files {
		if !strings.HasPrefix(n, "_") {
			names = append(names, n)
		}
		// The bundle is sent away: no URL password in it, whether it came with
		// an error, a report or a node's log line.
		files[n] = []byte(tbops.RedactText(string(b)))
	}
	sort.Strings(names)
	b := Bundle{Path: path, Files: names, Started: started, StartedWhy: why}
	if tarball {
		return b, writeTarGz(path, names, files, now)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return b, fmt.Errorf("treasury: bundle: %w", err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(path, n), files[n], 0o644); err != nil {
			return b, fmt.Errorf("treasury: bundle: %w", err)
		}
	}
	return b, nil
}

func checkFresh(path string, tarball bool) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("treasury: bundle %s: %w", path, err)
	}
	if tarball || !st.IsDir() {
		return fmt.Errorf("treasury: bundle %s already exists: choose a new path", path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("treasury: bundle %s: %w", path, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("treasury: bundle directory %s is not empty: choose a new path", path)
	}
	return nil
}

// writeTarGz writes the files into a temporary file beside path and renames it
// into place, so a failure never leaves half a bundle.
func writeTarGz(path string, names []string, files map[string][]byte, now time.Time) error {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bundle-*")
	if err != nil {
		return fmt.Errorf("treasury: bundle: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("treasury: bundle: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("treasury: bundle: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("treasury: bundle: %w", err)
	}
	return nil
}
