package runtime_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/runtime"
)

// One loader for the whole node config file: the [runtime] table and the
// top-level p2p_* keys, defaults < file < environment.
func ExampleLoadNodeConfig() {
	dir, _ := os.MkdirTemp("", "knobs")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "node.toml")
	_ = os.WriteFile(path, []byte("p2p_max_per_sec = 50\n\n[runtime]\nreactor_idle_poll_ms = 50\nio_read_backof_ms = 3\n"), 0o644)
	env := map[string]string{"TB_IO_WRITE_BACKOFF_MS": "25"}

	cfg, settings, warnings, err := runtime.LoadNodeConfig(path, func(k string) string { return env[k] })
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range settings {
		fmt.Printf("%-33s %6d %-8s %s\n", s.Key, s.Value, s.Unit, s.Source)
	}
	fmt.Println("idle poll:", cfg.Knobs.ReactorIdlePoll, "max per peer:", cfg.P2P.MaxPerSec)
	for _, w := range warnings {
		fmt.Println("warning:", strings.TrimPrefix(w, "config "+dir+string(filepath.Separator)))
	}

	// Every bad value, of either part, names the file, the key, the value and
	// the range; nothing applies.
	_ = os.WriteFile(path, []byte("p2p_max_per_sec = 0\n[runtime]\nio_read_backoff_ms = -5\n"), 0o644)
	_, _, _, err = runtime.LoadNodeConfig(path, nil)
	fmt.Println(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	// Output:
	// runtime.reactor_idle_poll_ms          50 ms       file
	// runtime.io_read_backoff_ms            10 ms       default
	// runtime.io_write_backoff_ms           25 ms       env
	// runtime.tls_handshake_timeout_ms   10000 ms       default
	// p2p_rate_window_secs                   1 s        default
	// p2p_max_per_sec                       50 requests file
	// p2p_max_bytes_per_sec              65536 bytes    default
	// p2p_chain_sync_interval_ms           500 ms       default
	// idle poll: 50ms max per peer: 50
	// warning: node.toml: unknown key "runtime.io_read_backof_ms" ignored (did you mean runtime.io_read_backoff_ms?)
	// config node.toml: runtime.io_read_backoff_ms = -5: out of range (allowed 1..10000 ms)
	// config node.toml: p2p_max_per_sec = 0: out of range (allowed 1..50000 requests)
}

func ExampleNewWatcher() {
	dir, _ := os.MkdirTemp("", "watch")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "node.toml")
	_ = os.WriteFile(path, []byte("[runtime]\nio_read_backoff_ms = 20\n"), 0o644)

	load := func(p string) (runtime.Knobs, error) {
		c, _, _, err := runtime.LoadNodeConfig(p, nil)
		return c.Knobs, err
	}
	w, err := runtime.NewWatcher(path, load, runtime.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	changes := w.Subscribe()
	fmt.Println("read backoff:", w.Current().IOReadBackoff)

	// Replace the file atomically, as an editor or a config manager does.
	_ = os.WriteFile(path+".tmp", []byte("[runtime]\nio_read_backoff_ms = 40\n"), 0o644)
	_ = os.Rename(path+".tmp", path)
	c := <-changes
	fmt.Println(c.Result, c.Old.IOReadBackoff, "->", c.New.IOReadBackoff)

	// A bad file keeps the last good configuration.
	_ = os.WriteFile(path+".tmp", []byte("[runtime]\nio_read_backoff_ms = 0\n"), 0o644)
	_ = os.Rename(path+".tmp", path)
	c = <-changes
	fmt.Println(c.Result, "still", w.Current().IOReadBackoff)
	// Output:
	// read backoff: 20ms
	// ok 20ms -> 40ms
	// error still 40ms
}

// The reactor runbook in the diagnosis loop, against a simulated node whose
// reactor misses wakeups. With one second of history the 15-minute rules are
// unknown, never a page from a guess; after 16 minutes of scrapes they are
// decided.
func ExampleNewRunbook() {
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	node, _ := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("runtime-missed-wakeups"))
	defer node.Close()
	ctx := context.Background()
	src, _ := nodetest.NewSource(ctx, node, clk, nodetest.DefaultScrapeInterval)
	defer src.Close()
	rb := runtime.NewRunbook(src, runtime.DefaultKnobs(), runtime.ReactorOptions{Target: node.URL(), Now: clk.Now,
		Eval: []promq.EvalOption{promq.WithHistoryHint("observe longer")}})

	_ = src.Advance(ctx, time.Second)
	r := tbops.Diagnose(ctx, clk.Now, rb)[0]
	fmt.Println(r.Runbook, r.Status, r.Warnings[0])

	_ = src.Advance(ctx, 16*time.Minute)
	r = tbops.Diagnose(ctx, clk.Now, rb)[0]
	fmt.Println(r.Runbook, r.Status)
	for _, s := range r.Firing() {
		fmt.Printf("%s: +%v in the last 5m\n", s.ID, *s.Value)
	}
	for _, p := range r.Matched() {
		fmt.Println("path", p.ID+":", p.Title)
	}
	// Output:
	// runtime-reactor unknown runtime_read_without_ready_total: only 1s of the 15m window observed: observe longer
	// runtime-reactor warning
	// read-without-ready-growing: +750 in the last 5m
	// write-without-ready-growing: +240 in the last 5m
	// path A: Missed IO wakeups: reactor/event-mapping issue
}
