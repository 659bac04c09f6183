package runtime_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/runtime"
)

func ExampleLoadKnobs() {
	dir, _ := os.MkdirTemp("", "knobs")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "node.toml")
	_ = os.WriteFile(path, []byte("p2p_max_per_sec = 50\n\n[runtime]\nreactor_idle_poll_ms = 50\nio_read_backof_ms = 3\n"), 0o644)
	env := map[string]string{"TB_IO_WRITE_BACKOFF_MS": "25"}

	knobs, settings, warnings, err := runtime.LoadKnobs(path, func(k string) string { return env[k] })
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range settings {
		fmt.Printf("%-33s %6s  %s\n", s.Key, s.Value, s.Source)
	}
	fmt.Println("idle poll:", knobs.ReactorIdlePoll)
	for _, w := range warnings {
		fmt.Println("warning:", filepath.Base(w[len("config "):]))
	}

	// A bad value names the file, the key, the value and the range; nothing applies.
	_ = os.WriteFile(path, []byte("[runtime]\nio_read_backoff_ms = -5\n"), 0o644)
	_, _, _, err = runtime.LoadKnobs(path, nil)
	fmt.Println(filepath.Base(err.Error()[len("config "):]))
	// Output:
	// runtime.reactor_idle_poll_ms          50  file
	// runtime.io_read_backoff_ms            10  default
	// runtime.io_write_backoff_ms           25  env
	// runtime.tls_handshake_timeout_ms   10000  default
	// idle poll: 50ms
	// warning: node.toml: unknown key "runtime.io_read_backof_ms" ignored (known: reactor_idle_poll_ms, io_read_backoff_ms, io_write_backoff_ms, tls_handshake_timeout_ms)
	// node.toml: runtime.io_read_backoff_ms = -5: out of range (allowed 1..10000 ms)
}

func ExampleNewWatcher() {
	dir, _ := os.MkdirTemp("", "watch")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "node.toml")
	_ = os.WriteFile(path, []byte("[runtime]\nio_read_backoff_ms = 20\n"), 0o644)

	load := func(p string) (runtime.Knobs, error) {
		k, _, _, err := runtime.LoadKnobs(p, nil)
		return k, err
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

func ExampleDiagnoseReactor() {
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	node, _ := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName("runtime-missed-wakeups"))
	defer node.Close()
	src := promq.NewScrape([]string{node.MetricsURL()}, promq.WithScrapeClock(clk.Now), promq.WithRingSize(64))
	defer src.Close()
	ctx := context.Background()
	for range 17 { // a scrape a minute for 16 minutes
		_ = src.Scrape(ctx)
		clk.Advance(time.Minute)
	}
	clk.Advance(-time.Minute)

	r, _ := runtime.DiagnoseReactor(ctx, src, runtime.DefaultKnobs(), runtime.ReactorOptions{Now: clk.Now})
	fmt.Println(r.Runbook, r.Status)
	for _, s := range r.Firing() {
		fmt.Printf("%s: +%v\n", s.ID, *s.Value)
	}
	for _, p := range r.Matched() {
		fmt.Println("path", p.ID+":", p.Title)
	}
	// Output:
	// runtime-reactor warning
	// read-without-ready-growing: +2250
	// write-without-ready-growing: +720
	// path A: Missed IO wakeups: reactor/event-mapping issue
}
