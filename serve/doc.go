// Package serve is the continuous doctor behind `tbops serve`: it runs every
// runbook against every node on an interval, keeps the metrics history the
// runbooks' windows need, and answers the verdicts over HTTP — Prometheus
// metrics, a blackbox_exporter-style /probe, a JSON API and a status page —
// with every verdict change kept in a state file. Programs embed it: it
// imports no domain package; New is given the runbooks (any tbops.Runbook).
//
// # Scheduling
//
// Every interval (WithInterval, default 30 s) RunOnce runs each node's
// runbooks through tbops.Diagnose, at most WithWorkers nodes at once. A node
// whose previous run is still in flight is skipped that round, so one slow
// node never holds up the others' next run; a run is bounded by WithRunTimeout
// (default: the interval) and each RPC call by its runbook's client deadline.
// A dead node costs a worker for as long as its calls take to fail (a refused
// connection: at once; a black hole: the call deadline).
//
// # History
//
// Without WithSource, serve scrapes each node's /metrics itself every scrape
// interval (WithScrapeInterval, default 15 s, independent of the interval)
// into one promq.Scrape per node, so windowed conditions ("for 10m",
// increase(…[50m]) == 0) become decidable as history accumulates, and say how
// much they have observed until then ("only 7m of the 10m window observed").
// The ring of each series holds WithHistory / scrape interval + 2 samples:
// DefaultHistory is 60 minutes (the longest window a runbook asks about, 50m,
// plus the longest "for", 10m), so 242 samples at 15 s. A sample is 16 bytes
// and the ring's slice grows to 256 of them (4 KiB); with the series' labels
// and index entry, a full series measured 5.0 KiB (5 129 B), a simulated node
// (103 series) 516 KiB, 200 nodes about 100 MiB (BenchmarkServeHistoryMemory
// in cmd/tbops; BENCHMARKS.md). The samples scale with history / scrape
// interval: a 30 s scrape interval halves them. A node may export at most
// WithMaxSeriesPerNode series (default 10 000); a scrape that would exceed it
// fails and says so. Series absent from 64 successive scrapes are forgotten.
// The history lives in memory: after a restart it starts again, and windows
// are unknown until it covers them again. With WithSource (a Prometheus
// scoped to the node, as the CLI's --prom builds) serve scrapes nothing and
// Prometheus' own history decides the windows.
//
// The first run starts once two scrapes exist (so rates are defined), at
// once with WithSource.
//
// # Verdicts and transitions
//
// A report's status that differs from the last one of the same node and
// runbook (or the first one) is a transition. With WithStore it is written to
// the state file, in a transaction of its own, before the page, the API and
// the metrics show the new report. A run cancelled by shutdown is dropped,
// not recorded: a cancelled run is no verdict. A run that hit its run timeout
// is recorded: its reports say which calls did not answer.
//
// # State file
//
// Store is one SQLite file (modernc.org/sqlite) in WAL mode, written by one
// goroutine, synchronous=FULL. Its schema is versioned (table schema_version)
// and built by migrations, one step per version; table transitions holds node,
// runbook, from, to, at (Unix ms), the firing symptom ids and the report's
// JSON. New reads back the newest transition of each configured node and
// runbook (so the page shows what happened before the restart, marked "before
// restart", and the next transition is from that verdict) and the 20 newest
// transitions of each. Retention (WithRetention, default 30 days) is a DELETE
// every hour that keeps the newest transition of each node and runbook.
// OpenStoreReadOnly opens the file with mode=ro, as `tbops history` does while
// serve runs; it reads files of older schemas too (their newer tables are
// absent). Version 2 adds the Alertmanager webhook's tables: alerts (every
// alert received: when, receiver, fingerprint, status, alertname, labels, the
// alert's JSON, node, runbook, outcome and reason) and notifications (alert
// id, fingerprint, target as scheme://host, a digest of the whole URL,
// format, kind, attempts, result, error, when, the verdict and the report's
// JSON); retention deletes them after the same time. A version 1 file is
// migrated forward at OpenStore, its transitions kept.
//
// # Alertmanager webhook
//
// With WithAlertRunbooks (alert name → runbook id: each promq.Rule's Alert
// and Runbook), Handler also takes Alertmanager's webhook at WebhookPath
// (POST; version 4 payloads, WebhookPayload). A body over WithWebhookMaxBytes
// (1 MiB) is 413; one DecodeWebhook refuses is 400 naming the field
// ("alerts[2].fingerprint: missing"); with WithWebhookToken a request without
// "Authorization: Bearer TOKEN" is 401. Every alert of an accepted delivery is
// recorded, in one transaction, and the delivery is answered 200 at once:
//
//   - an alert whose name is no tbops rule, or whose node is not served here,
//     is recorded as ignored with the reason;
//   - the others are queued (WithAlertQueue, 256; a full queue records the
//     alert as dropped, "queue full", and Alertmanager's next delivery tries
//     again) for one of four alert workers, which run while Run does.
//
// An alert names its node by its instance label, compared with the host:port
// of the node's metrics URL (Prometheus' default instance label), or, with
// WithNodeLabel(L), by its label L compared with the node's Label. The worker
// diagnoses that one runbook for that node (the node's own runbooks, under
// the run timeout), records the verdict as a scheduled run would, and decides
// one notification for each WithNotify target. Its dedupe key is the alert's
// fingerprint and the target:
//
//   - firing: sent when none was sent yet, when the last one sent was a
//     resolved one (a new episode), when the verdict changed (status, firing
//     symptoms or matched paths), or when the last was sent WithRepeatInterval
//     (4h) ago or more; else suppressed;
//   - resolved: sent, with a fresh diagnosis, unless the last one sent was
//     resolved already (one resolved notification per episode).
//
// A notification being sent counts as sent (a second delivery meanwhile sends
// nothing); a failed one does not. The dedupe state is read back from the
// state file at start. A NotifyJSON target receives a Notification:
//
//	{"alert": {...as received...}, "status": "firing"|"resolved",
//	 "node": "http://node-a:3030/", "runbook": "energy-stalled",
//	 "report": {...tbops.Report...}, "summary": "[WARNING] energy-stalled on ...
//	 firing oracle-latency-high: ...\npath A: ...\n  $ tbops energy ..."}
//
// A NotifySlack target receives an incoming-webhook message, {"text",
// "blocks"}: a header, the status, the firing symptoms and each matched path
// with its commands in a code block, cut ("…") to Slack's limits. Sending is
// a POST (no redirect followed), each attempt bounded (10 s), retried with
// exponential backoff (WithNotifyRetry: 1 s doubling to 30 s, 2 minutes in
// all) on a network error, 429 or 5xx only, never after a 2xx. A notify URL is
// a secret (a Slack webhook's path is its key): it is shown and kept as
// scheme://host only. tbops_notifications_total{result="sent"|"failed"|"suppressed"}
// and tbops_alertmanager_alerts_total{outcome="queued"|"ignored"|"dropped"}
// count them; /api/v1/alerts, the status page (under each node) and `tbops
// history --alerts` show them.
//
// # HTTP
//
// Handler serves GET and HEAD only (anything else is 405), but POST on
// WebhookPath with the webhook on, with a content security policy that allows
// no script; Serve adds a bounded http.Server (header, read, write and idle
// timeouts, 16 KiB of headers). Endpoints:
//
//   - /metrics: tbops_runbook_status{node,runbook} (0 ok, 1 warning,
//     2 critical, 3 unknown: the exit codes), tbops_symptom_firing and
//     tbops_alert_firing (0/1, absent while unknown),
//     tbops_last_run_timestamp_seconds, tbops_node_up, the
//     tbops_run_duration_seconds histogram, Go and process collectors. Only
//     this process's verdicts are exported, not restored ones.
//   - /probe?target=URL[&runbook=ID]: diagnose the target now, answering
//     probe_success (1 when every runbook asked for ran, whatever its verdict),
//     probe_duration_seconds and the target's verdict series. A configured
//     node (named by its URL or its label) is probed with its own history;
//     other targets are refused (403) unless WithProbeAny, which diagnoses
//     any http(s) URL over a source made for the probe. At most
//     WithProbeConcurrency probes run at once (more get 503); each is bounded
//     by WithProbeTimeout and by Prometheus' X-Prometheus-Scrape-Timeout-Seconds
//     less half a second.
//   - /api/v1/reports[?node=&runbook=]: Snapshot, the JSON of `tbops doctor
//     -o json`.
//   - /api/v1/history?node=&runbook=[&since=&limit=]: transitions, oldest
//     first, from the state file (else the 20 newest of each kept in memory).
//   - POST /api/v1/alertmanager: the webhook; /api/v1/alerts[?node=&limit=]:
//     the alerts received with their notifications, oldest first (AlertLog).
//   - /: the status page, nodes × runbooks with the firing symptoms and
//     matched paths; each cell links to /report (the full report, as the
//     terminal shows it, and its transitions). html/template escapes every
//     text a node sent; no script, no external asset, a meta refresh.
//   - /healthz.
//
// The node label of every output is the node's URL with its user and
// password removed (NodeLabel).
//
// # Sharding
//
// InShard / Shard split a fleet across instances without coordination: a node
// belongs to shard I of N when Prometheus' hashmod of its label (MD5, last 8
// bytes, mod N) is I. Give every instance the same node list and its own
// --shard I/N; the Prometheus that scrapes them all sees each node exactly
// once, and a hashmod relabel rule on the probe target sends each /probe to
// the instance that serves it (README, "Running continuously").
//
// # Lifecycle
//
// Serve runs until its context is done, then cancels runs and probes in
// flight, gives other requests ShutdownTimeout to finish, and returns once
// every goroutine it started has ended; the caller then closes the Store
// (which checkpoints the WAL) and the Server (which closes the scrape
// sources).
package serve
