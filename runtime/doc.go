// Package runtime is the node runtime's operations surface: the node config
// file (RUNBOOK.md "Runtime Tuning Knobs" and "P2P Rate Limiting", PROTOCOL.md
// section 8) loaded with the environment; a generic config-file Watcher with
// hot reload and the polling fallback ("Config Hot-Reload Fallback"); TLS
// handshake timeouts for HTTP servers and clients ("TLS Handshake Timeouts");
// and the reactor-health runbook ("Runtime Reactor", id runtime-reactor):
// NewRunbook, a tbops.Runbook, and DiagnoseReactor, the function it calls.
//
// The package name shadows the standard library's runtime inside this package;
// importers who need both alias one of them.
//
// # Node config
//
// LoadNodeConfig is the one loader of the node's TOML config file: its
// [runtime] table (reactor_idle_poll_ms, io_read_backoff_ms,
// io_write_backoff_ms, tls_handshake_timeout_ms) and its top-level p2p_* keys
// (p2p_rate_window_secs, p2p_max_per_sec, p2p_max_bytes_per_sec,
// p2p_chain_sync_interval_ms), with precedence defaults < file < environment
// (TB_REACTOR_IDLE_POLL_MS, TB_IO_READ_BACKOFF_MS, TB_IO_WRITE_BACKOFF_MS,
// TB_TLS_HANDSHAKE_TIMEOUT_MS, TB_P2P_*). It returns a NodeConfig (the Knobs
// and the P2PConfig, which converts to p2p.Config) and every key's value as a
// Setting: a number, its unit and its source. Decisions where the runbook is
// open:
//
//   - Values are integers, in the file and in the environment: milliseconds
//     for the *_ms keys, seconds, requests or bytes for the others (Specs). A
//     float, a string ("100") or a unit suffix is an error, not a guess.
//   - Allowed ranges (inclusive) are in Specs; zero is refused for all but
//     p2p_chain_sync_interval_ms, where it means off (a zero poll or backoff
//     spins; a zero timeout is no timeout).
//   - Every bad value of either part is reported at once (errors.Join of
//     *ValueError), each naming the file or environment variable, the key, the
//     value and the range with its unit; all match errors.Is(err,
//     ErrInvalidConfig). On error nothing is applied: the NodeConfig returned is
//     the defaults and the caller keeps what it runs.
//   - Unknown keys are warnings, not errors, so a newer config does not stop an
//     older node; a misspelt key gets a "did you mean", a [p2p] table or a
//     runtime knob outside [runtime] a hint. Keys are case-sensitive, as the
//     node's are: the file is walked as a map instead of being decoded into a
//     struct, because the TOML decoder matches struct fields
//     case-insensitively and would silently apply REACTOR_IDLE_POLL_MS.
//   - An empty environment variable counts as unset. A missing file given by
//     path is an error (the caller named it); path "" means no file.
//   - Files over MaxConfigBytes (1 MiB) are refused.
//
// # Watcher
//
// NewWatcher[T] keeps any configuration current: it watches the file's
// directory (and, when the file is a symlink elsewhere, the target's directory)
// with fsnotify, so an editor's rename-over, delete-and-recreate and a
// Kubernetes ConfigMap's ..data symlink swap are all seen. Events are debounced
// (100 ms after the last event of a burst, at most 10 debounces); then the file
// is read and hashed (SHA-256), and loaded only when its bytes changed — a
// touch or an unrelated file in the directory reloads nothing. The new value is
// swapped in with an atomic.Pointer: Current never locks and never sees a torn
// value. A file that fails to read, parse or validate leaves the last good value
// in place; every attempt is counted in config_reload_total{result="ok"|"error"}
// (a client_golang CounterVec, Collector) and sent to subscribers. The same bad
// bytes are counted once, not at every event.
//
// A reload never applies a torn file. A file renamed into place (a temporary
// file written, then renamed over the config, as editors and config managers
// do) is complete when it appears and is applied right after the debounce. A
// file written in place — a write event names the file itself — can be read
// between truncate and write, so it is applied only once settled: read, then
// read again a settle period later (WithSettle, default 250 ms; tbops runtime
// watch --settle), with the same hash both times and no event about the file
// in between; any such event restarts the wait, so a burst of rewrites applies only
// the content that stayed. Polling cannot tell the two kinds of write apart and
// settles every change. The file is hashed again after loading and the result
// dropped if it changed meanwhile. A file that became empty (or white space)
// while the running configuration's file was not is refused with
// ErrConfigEmptied, whose message tells the writer to write a temporary file
// and rename it into place; a deliberately empty config is written with a
// comment in it.
//
// When file events are unavailable (no inotify instances, a platform without
// them), overflow, or the config directory itself disappears, the watcher polls
// (content hash every poll interval, default 2 s, then the settle period) and
// logs at warn level "falling back to polling; expect up to one poll interval
// of delay before reload", as the runbook says. From polling it tries to restore file
// events at each tick (the directory came back), unless polling was forced with
// WithPolling. Close stops every goroutine it started.
//
// # TLS handshake timeouts
//
// net/http has no server-side handshake timeout: it bounds handshakes by the
// smallest of ReadHeaderTimeout, ReadTimeout and WriteTimeout, which conflates
// them with request timeouts. ServerConfig.NewListener bounds each handshake
// exactly: every accepted connection is handshaken in its own goroutine with a
// deadline from accept, and Accept hands http.Server only connections whose
// handshake finished, so a peer that connects and never sends a ClientHello
// neither blocks other peers nor holds its socket past the bound. (A
// plain-HTTP request to the TLS port is therefore closed rather than answered
// with net/http's 400 page.) The bound is read at every accepted connection:
// with ServerConfig.HandshakeTimeoutFunc reading a Watcher's current value, a
// reloaded tls_handshake_timeout_ms applies from the next connection on. The
// Listener counts failed handshakes by reason (timeout, error) and exports
// tls_handshake_failures_total. NewServer also sets ReadHeaderTimeout to the
// bound in force when it is called, so that srv.ListenAndServeTLS alone is
// bounded too. Clients use http.Transport's own TLSHandshakeTimeout
// (ClientConfig.NewTransport) or ClientConfig.DialTLS for raw TLS.
// TB_TLS_HANDSHAKE_TIMEOUT_MS overrides both (ApplyEnv); zero means the 10 s
// default.
//
// # Reactor health
//
// Rules is the runbook's only definition of its checks, as promq.Rule:
// RuntimeReadWithoutReadyGrowing and RuntimeWriteWithoutReadyGrowing,
// increase(runtime_*_without_ready_total[5m]) > 0 held for 10m ("sustained
// growth", the runbook's words: 15 minutes without a 5-minute pause; a single
// burst is not sustained), and ConfigReloadFailing,
// increase(config_reload_total{result="error"}[15m]) > 0 (the node runs a
// stale configuration). `tbops rules` prints them; DiagnoseReactor evaluates
// each with promq.EvalRule on the source it is given (Report.Scope names it),
// its Alerts block is those evaluations and each symptom is its rule's. So a
// rule is decided only from history that covers its window and `for`, or from
// a counter that moved (a failed reload seen is a failed reload); otherwise
// symptom and alert are unknown, with a warning saying how much was observed
// of how much is needed ("only 1s of the 15m window observed") and what would
// decide it. A one-shot doctor (two scrapes a second apart) therefore reports
// the reactor unknown, never a page from a guess; a Prometheus source or tbops
// serve, which accumulates history, decides it. Missed wakeups are a warning
// (they cost latency and CPU, not correctness), so are failed reloads. The
// report shows the knobs in force (as tbops loads them) and the runbook's
// tuning advice, including the BSD kqueue note.
//
// # Metrics
//
// Every tbops type that exports metrics does it one way: a method
//
//	Collector(constLabels prometheus.Labels) prometheus.Collector
//
// returning a collector that reads the type's own counters (atomics, so the
// counted path pays an add and nothing else) at each scrape and exports them
// with constLabels on every series, nil for none; the labels tell several
// instances apart in one registry ({"config": "node"}, {"listener": "rpc"}).
// Every series of a labelled family is exported from zero. Here:
// Watcher.Collector (config_reload_total{result}) and Listener.Collector
// (tls_handshake_failures_total{reason}); in package p2p, Limiter.Collector.
package runtime
