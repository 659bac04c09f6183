package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/runtime"
)

// configEnv names the node config file when --config is not given. Without
// either, the knobs are the defaults overridden by the environment.
const configEnv = "TB_CONFIG"

// nodeConfig is everything tbops reads from a node config file: the runtime
// knobs and the p2p settings, each with where its value came from.
type nodeConfig struct {
	// Path is the config file, nil (null) when there is none.
	Path     *string           `json:"config"`
	Runtime  []runtime.Setting `json:"runtime"`
	P2P      []runtime.Setting `json:"p2p"`
	Warnings []string          `json:"warnings"`
}

// settings is every setting, runtime first.
func (c nodeConfig) settings() []runtime.Setting {
	return append(append([]runtime.Setting(nil), c.Runtime...), c.P2P...)
}

// loadNodeConfig loads the node config file (both parts, one loader) and the
// environment; nothing is returned unless all of it loaded.
func loadNodeConfig(path string, getenv func(string) string) (nodeConfig, error) {
	_, sets, warns, err := runtime.LoadNodeConfig(path, getenv)
	if err != nil {
		return nodeConfig{}, err
	}
	c := nodeConfig{Runtime: []runtime.Setting{}, P2P: []runtime.Setting{}, Warnings: append([]string{}, warns...)}
	if path != "" {
		c.Path = &path
	}
	for _, s := range sets {
		if strings.HasPrefix(s.Key, "runtime.") {
			c.Runtime = append(c.Runtime, s)
		} else {
			c.P2P = append(c.P2P, s)
		}
	}
	return c, nil
}

// configPath is --config, else TB_CONFIG, else "" (no file).
func (a *app) configPath(flag string) string {
	if flag != "" {
		return flag
	}
	return a.getenv(configEnv)
}

// oneLine flattens joined errors into one line for the exit message.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func (a *app) runtimeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "runtime", Short: "Runtime tuning knobs, config hot-reload, reactor health",
		Long: `The node config file is --config FILE, else $TB_CONFIG; without either, knobs are
the defaults overridden by the environment (TB_REACTOR_IDLE_POLL_MS,
TB_IO_READ_BACKOFF_MS, TB_IO_WRITE_BACKOFF_MS, TB_TLS_HANDSHAKE_TIMEOUT_MS and the
TB_P2P_* variables). Precedence: defaults < file < environment.`}
	cmd.AddCommand(a.runtimeKnobsCmd(), a.runtimeWatchCmd(), a.runtimeDiagnoseCmd())
	return cmd
}

func (a *app) runtimeKnobsCmd() *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:   "knobs [--config FILE]",
		Short: "Print the effective runtime and p2p knobs and where each value came from",
		Long: `knobs prints every runtime and p2p knob's effective value and its source
(default, file or env). A bad value exits 3 naming the file or variable, the key,
the value and the allowed range; unknown keys are warnings (exit 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := a.configPath(config)
			c, err := loadNodeConfig(path, a.getenv)
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("%s — fix it and run tbops runtime knobs again", oneLine(err))}
			}
			if a.output == "json" {
				if err := a.printJSON(c); err != nil {
					return err
				}
			} else {
				src := "defaults and environment (no --config, no $" + configEnv + ")"
				if path != "" {
					src = path
				}
				fmt.Fprintf(a.stdout, "config: %s\n\n", src)
				tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY\tVALUE\tUNIT\tSOURCE\tENV")
				for _, s := range c.settings() {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Key, s.Value, s.Unit, s.Source, s.Env)
				}
				_ = tw.Flush()
				if len(c.Warnings) > 0 {
					fmt.Fprintln(a.stdout, "\nWarnings:")
					printWarnings(a.stdout, c.Warnings)
				}
			}
			if len(c.Warnings) > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "node config file (TOML; env "+configEnv+")")
	return cmd
}

// reloadLine is what watch prints per reload (one JSON object per line with -o json).
type reloadLine struct {
	At      time.Time       `json:"at"`
	Event   string          `json:"event"` // "loaded" (the initial load) or "reload"
	Result  string          `json:"result"`
	Via     string          `json:"via,omitempty"`
	Config  string          `json:"config"`
	SHA256  string          `json:"sha256,omitempty"`
	Changes []settingChange `json:"changes"`
	Error   string          `json:"error,omitempty"`
	// Warnings are why this reload was not applied (first), then the warnings
	// of the configuration in force, which stay with it across failed reloads.
	Warnings []string `json:"warnings"`
	// Settings is the whole effective configuration, on the initial line.
	Settings []runtime.Setting `json:"settings,omitempty"`
}

// reloadWarnings are the warnings of a watch line for change c.
func reloadWarnings(c runtime.Change[nodeConfig]) []string {
	out := []string{}
	if c.Err != nil {
		out = append(out, c.Err.Error())
	}
	return append(out, c.New.Warnings...)
}

// printWarnings prints warnings the way knobs and watch both do.
func printWarnings(w io.Writer, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintf(w, "  ! %s\n", s)
	}
}

// settingChange is one knob whose value or source changed in a reload.
type settingChange struct {
	Key       string `json:"key"`
	Old       int64  `json:"old"`
	New       int64  `json:"new"`
	Unit      string `json:"unit"`
	OldSource string `json:"old_source"`
	NewSource string `json:"new_source"`
}

func diffSettings(old, cur []runtime.Setting) []settingChange {
	prev := map[string]runtime.Setting{}
	for _, s := range old {
		prev[s.Key] = s
	}
	out := []settingChange{}
	for _, s := range cur {
		p := prev[s.Key]
		if p.Value != s.Value || p.Source != s.Source {
			out = append(out, settingChange{Key: s.Key, Old: p.Value, New: s.Value, Unit: s.Unit, OldSource: p.Source, NewSource: s.Source})
		}
	}
	return out
}

func (a *app) runtimeWatchCmd() *cobra.Command {
	var (
		config   string
		interval time.Duration
		settle   time.Duration
		poll     bool
	)
	cmd := &cobra.Command{
		Use:   "watch --config FILE",
		Short: "Watch the node config file and print each reload, its result and what changed (Ctrl-C stops)",
		Long: `watch loads the config file as the node does and reloads it on every change: it
prints the result of each reload (ok, or the error while the last good
configuration stays in force) and the knobs that changed. File events are used
where available; otherwise (or with --poll) the file is polled every
--poll-interval, and a change is seen up to one interval late.

A file written in place is applied only after its content stayed unchanged for
--settle (default 250ms), so a truncate-then-write is never applied half-written;
a file renamed into place (write a temporary file, then rename it over the
config) is applied at once. A file that became empty is refused. Every line
carries the warnings in force: why a reload was not applied, and the running
configuration's own (unknown keys). -o json prints one JSON object per line,
with a "warnings" array.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := a.configPath(config)
			if path == "" {
				return &exitError{code: 3, err: fmt.Errorf("watch needs a config file: pass --config FILE or set %s", configEnv)}
			}
			if interval <= 0 {
				return &exitError{code: 3, err: fmt.Errorf("--poll-interval %s: want a positive duration such as 2s", interval)}
			}
			if settle <= 0 {
				return &exitError{code: 3, err: fmt.Errorf("--settle %s: want a positive duration such as 250ms", settle)}
			}
			var logger *slog.Logger
			if a.output == "json" {
				logger = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			} else {
				logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			opts := []runtime.WatchOption{runtime.WithLogger(logger), runtime.WithPollInterval(interval), runtime.WithSettle(settle)}
			if poll {
				opts = append(opts, runtime.WithPolling())
				fmt.Fprintf(a.stderr, "tbops: polling %s every %s (--poll): expect up to one poll interval of delay before reload\n", path, interval)
			}
			load := func(p string) (nodeConfig, error) {
				c, err := loadNodeConfig(p, a.getenv)
				if err != nil {
					return c, errors.New(oneLine(err))
				}
				c.Path = &path
				return c, nil
			}
			w, err := runtime.NewWatcher(path, load, opts...)
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("%s — fix it and run tbops runtime watch again", oneLine(err))}
			}
			defer w.Close()
			changes := w.Subscribe()
			cur := w.Current()
			a.printReload(reloadLine{At: time.Now().UTC(), Event: "loaded", Result: runtime.ReloadOK, Config: path,
				Changes: []settingChange{}, Warnings: cur.Warnings, Settings: cur.settings()})
			ctx := cmd.Context()
			for {
				select {
				case <-ctx.Done():
					return nil
				case c, ok := <-changes:
					if !ok {
						return nil
					}
					line := reloadLine{At: c.At.UTC(), Event: "reload", Result: c.Result, Via: c.Via, Config: path, SHA256: c.Hash,
						Changes: diffSettings(c.Old.settings(), c.New.settings()), Warnings: reloadWarnings(c)}
					if c.Err != nil {
						line.Error = c.Err.Error()
					}
					a.printReload(line)
				}
			}
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "node config file to watch (TOML; env "+configEnv+")")
	cmd.Flags().DurationVar(&interval, "poll-interval", runtime.DefaultPollInterval, "poll interval when file events are unavailable")
	cmd.Flags().DurationVar(&settle, "settle", runtime.DefaultSettle, "how long a file written in place must stay unchanged before it is applied")
	cmd.Flags().BoolVar(&poll, "poll", false, "poll instead of using file events")
	return cmd
}

func (a *app) printReload(l reloadLine) {
	if a.output == "json" {
		b, err := json.Marshal(l)
		if err == nil {
			fmt.Fprintf(a.stdout, "%s\n", b)
		}
		return
	}
	ts := l.At.Format(time.RFC3339)
	switch {
	case l.Event == "loaded":
		fmt.Fprintf(a.stdout, "%s loaded %s\n", ts, l.Config)
		for _, s := range l.Settings {
			fmt.Fprintf(a.stdout, "  %s = %d %s (%s)\n", s.Key, s.Value, s.Unit, s.Source)
		}
	case l.Result == runtime.ReloadOK:
		fmt.Fprintf(a.stdout, "%s reload ok (%s)", ts, l.Via)
		if len(l.Changes) == 0 {
			fmt.Fprint(a.stdout, ": no knob changed")
		}
		fmt.Fprintln(a.stdout)
		for _, c := range l.Changes {
			fmt.Fprintf(a.stdout, "  %s: %d (%s) -> %d %s (%s)\n", c.Key, c.Old, c.OldSource, c.New, c.Unit, c.NewSource)
		}
	default:
		fmt.Fprintf(a.stdout, "%s reload error (%s): the last good configuration stays in force\n", ts, l.Via)
	}
	printWarnings(a.stdout, l.Warnings)
}

func (a *app) runtimeDiagnoseCmd() *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:   "diagnose [--config FILE]",
		Short: "Reactor health (runbook runtime-reactor): missed IO wakeups, failed config reloads, tuning advice",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			url := a.rpcURL()
			t := &target{rpcURL: url, metricsURL: a.metricsURLFor(url), now: time.Now}
			src, closeSrc, err := a.metricsSource(ctx, t.metricsURL)
			if err != nil {
				if ctx.Err() != nil {
					return &exitError{code: 3, err: ctx.Err()}
				}
				fmt.Fprintf(a.stderr, "tbops: metrics unavailable: %v\n", err)
			} else {
				t.src = src
				defer closeSrc()
			}
			r, err := a.runtimeRunbookWith(t, a.configPath(config)).Diagnose(ctx)
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			return a.printReport(r)
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "node config file whose knobs to show (env "+configEnv+")")
	return cmd
}

// runtimeRunbookFor is doctor's runtime-reactor runbook for one node: its
// knobs come from $TB_CONFIG (doctor has no --config) and the environment.
func (a *app) runtimeRunbookFor(t *target) tbops.Runbook {
	return a.runtimeRunbookWith(t, a.getenv(configEnv))
}

// runtimeRunbookWith is the runtime-reactor runbook for one node, its knobs
// loaded from the config file at path and the environment. A config that does
// not load is a warning on the report (the defaults are shown), not a failed
// diagnosis.
func (a *app) runtimeRunbookWith(t *target, path string) tbops.Runbook {
	cfg, sets, warns, err := runtime.LoadNodeConfig(path, a.getenv)
	rb := runtime.NewRunbook(t.src, cfg.Knobs, runtime.ReactorOptions{Target: t.rpcURL, Now: t.now, Settings: sets, ConfigPath: path})
	return tbops.Func(runtime.RunbookID, func(ctx context.Context) (tbops.Report, error) {
		r, derr := rb.Diagnose(ctx)
		if derr != nil {
			return r, derr
		}
		if err != nil {
			r.Warnf("runtime knobs: %s (showing the defaults)", oneLine(err))
		}
		for _, w := range warns {
			r.Warnf("%s", w)
		}
		return r, nil
	})
}

// runtimeRunbook is doctor's runtime-reactor runbook.
func (a *app) runtimeRunbook() *runbook {
	return &runbook{id: runtime.RunbookID, usesMetrics: true, diagnose: func(ctx context.Context, t *target) (tbops.Report, error) {
		return a.runtimeRunbookFor(t).Diagnose(ctx)
	}}
}
