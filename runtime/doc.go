// Package runtime is the node runtime's operations surface: the tuning knobs
// (RUNBOOK.md "Runtime Tuning Knobs", PROTOCOL.md section 8) loaded from the
// node's TOML config and the environment; a generic config-file Watcher with
// hot reload and the polling fallback ("Config Hot-Reload Fallback"); TLS
// handshake timeouts for HTTP servers and clients ("TLS Handshake Timeouts");
// and the reactor-health diagnosis DiagnoseReactor ("Runtime Reactor"), runbook
// id runtime-reactor.
//
// The package name shadows the standard library's runtime inside this package;
// importers who need both alias one of them.
//
// # Knobs
//
// LoadKnobs reads the [runtime] table (reactor_idle_poll_ms, io_read_backoff_ms,
// io_write_backoff_ms, tls_handshake_timeout_ms) with precedence defaults < file
// < environment (TB_REACTOR_IDLE_POLL_MS, TB_IO_READ_BACKOFF_MS,
// TB_IO_WRITE_BACKOFF_MS, TB_TLS_HANDSHAKE_TIMEOUT_MS), and returns each value
// with its source. Decisions where the runbook is open:
//
//   - Values are integers of milliseconds, in the file and in the environment.
//     A float, a string ("100") or a unit suffix is an error, not a guess.
//   - Allowed ranges (inclusive): reactor_idle_poll_ms 1..60000, the backoffs
//     1..10000, tls_handshake_timeout_ms 100..300000. Zero is refused for all of
//     them (a zero poll or backoff spins; a zero timeout is no timeout).
//   - Every bad value is reported at once (errors.Join), each naming the file or
//     environment variable, the key, the value and the range; all match
//     errors.Is(err, ErrInvalidConfig). On error nothing is applied: the Knobs
//     returned are the defaults and the caller keeps what it runs.
//   - Unknown keys are warnings, not errors, so a newer config does not stop an
//     older node. Top-level p2p_* keys belong to package p2p and are not warned
//     about. Keys are case-sensitive, as the node's are: the file is walked as a
//     map instead of being decoded into a struct, because the TOML decoder
//     matches struct fields case-insensitively and would silently apply
//     REACTOR_IDLE_POLL_MS.
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
// deadline of TLSHandshakeTimeout from accept, and Accept hands http.Server only
// connections whose handshake finished, so a peer that connects and never sends
// a ClientHello neither blocks other peers nor holds its socket past the bound.
// (A plain-HTTP request to the TLS port is therefore closed rather than answered
// with net/http's 400 page.) NewServer also sets ReadHeaderTimeout to the same
// bound so that srv.ListenAndServeTLS alone is bounded too. Clients use
// http.Transport's own TLSHandshakeTimeout (ClientConfig.NewTransport) or
// ClientConfig.DialTLS for raw TLS. TB_TLS_HANDSHAKE_TIMEOUT_MS overrides both
// (ApplyEnv); zero means the 10 s default.
//
// # Reactor health
//
// DiagnoseReactor judges runtime_read_without_ready_total and
// runtime_write_without_ready_total. "Sustained growth" (the runbook's words) is
// defined as: the counter increased in each of the last 3 five-minute
// sub-windows (15 minutes without a pause), computed from raw samples with
// counter resets handled. A single burst is not sustained. When the metrics
// source has observed less than the window (the embedded scrape source right
// after start) the observed span is split into up to 3 parts, one per sample
// interval, and judged the same way, with a warning saying how much was seen;
// fewer than two samples is unknown, never zero. Sustained growth is a warning
// (missed wakeups cost latency and CPU, not correctness). Any increase of
// config_reload_total{result="error"} in the same window is a warning too: the
// node runs a stale configuration. The report shows the knobs in force (as
// tbops loads them) and the runbook's tuning advice, including the BSD kqueue
// note. Rules returns the same checks as Prometheus alerting rules.
package runtime
