// Command config-reload keeps the node config current with runtime.Watcher
// (runbook "Runtime Tuning Knobs", "P2P Rate Limiting" and "Config Hot-Reload
// Fallback"): an atomic rewrite of the TOML file is applied without restart,
// both its [runtime] table and its p2p_* keys; a bad file is refused whole and
// the last good config stays; every knob says where its value came from
// (default, file or env).
//
//	go run ./examples/config-reload
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theblock/tbops/runtime"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "config-reload:", err)
		os.Exit(1)
	}
}

// config is what the watcher keeps: the node config and where each value
// came from.
type config struct {
	runtime.NodeConfig
	Settings []runtime.Setting
}

func run(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "config-reload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "node.toml")

	// A fixed environment instead of os.Getenv, so the output does not depend
	// on this shell: TB_IO_WRITE_BACKOFF_MS overrides the file.
	env := map[string]string{"TB_IO_WRITE_BACKOFF_MS": "25"}
	load := func(p string) (config, error) {
		c, settings, _, err := runtime.LoadNodeConfig(p, func(key string) string { return env[key] })
		return config{c, settings}, err
	}

	if err := writeAtomic(path, "[runtime]\nreactor_idle_poll_ms = 50\n"); err != nil {
		return err
	}
	// The first load must succeed: there is no last good config to keep yet.
	wt, err := runtime.NewWatcher(path, load,
		runtime.WithDebounce(20*time.Millisecond), // editors save in bursts; wait for the last event
		runtime.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer wt.Close()
	changes := wt.Subscribe()
	printKnobs(w, "start", wt.Current())

	// Write to a temp file and rename over the config, so the watcher never
	// reads a half-written file.
	if err := writeAtomic(path, "p2p_max_per_sec = 50\n[runtime]\nreactor_idle_poll_ms = 20\nio_read_backoff_ms = 5\n"); err != nil {
		return err
	}
	if err := wait(ctx, w, dir, changes); err != nil {
		return err
	}
	printKnobs(w, "after good reload", wt.Current())

	// A bad value (0 would make the reader spin) is refused as a whole: the
	// good p2p value beside it is not applied either.
	if err := writeAtomic(path, "p2p_max_per_sec = 80\n[runtime]\nreactor_idle_poll_ms = 10\nio_read_backoff_ms = 0\n"); err != nil {
		return err
	}
	if err := wait(ctx, w, dir, changes); err != nil {
		return err
	}
	printKnobs(w, "after bad reload (last good kept)", wt.Current())
	ok, failed := wt.Reloads()
	fmt.Fprintf(w, "config_reload_total: ok=%d error=%d\n", ok, failed)
	return nil
}

// wait prints the next reload attempt (the temp dir left out of errors).
func wait(ctx context.Context, w io.Writer, dir string, changes <-chan runtime.Change[config]) error {
	select {
	case c := <-changes:
		if c.Err != nil {
			fmt.Fprintf(w, "reload %s: %s\n", c.Result, strings.ReplaceAll(c.Err.Error(), dir+string(filepath.Separator), ""))
		} else {
			fmt.Fprintf(w, "reload %s: idle poll %v -> %v, max per peer %d -> %d\n", c.Result,
				c.Old.Knobs.ReactorIdlePoll, c.New.Knobs.ReactorIdlePoll, c.Old.P2P.MaxPerSec, c.New.P2P.MaxPerSec)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a reload: %w", ctx.Err())
	}
}

func printKnobs(w io.Writer, title string, c config) {
	fmt.Fprintf(w, "%s:\n", title)
	for _, s := range c.Settings {
		fmt.Fprintf(w, "  %-33s %6d %-8s %s\n", s.Key, s.Value, s.Unit, s.Source)
	}
}

func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
