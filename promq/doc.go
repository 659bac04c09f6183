// Package promq is how tbops reads metrics: a Prometheus HTTP API client, and the
// Source interface every diagnosis asks its questions through, with two
// implementations — Prometheus, which builds PromQL for a Prometheus-compatible
// server, and Scrape, which scrapes a node's /metrics itself when there is no
// Prometheus.
//
// # Missing data
//
// A selector that matches nothing is an empty Result with a warning ("no data for
// …"), never an error and never a zero. Errors are for a cancelled context, an
// invalid argument (ErrBadQuery) or a server that could not be asked. A
// histogram_quantile that evaluates to NaN (no observations in the window, no
// +Inf bucket) is also reported as no data with a warning, by both sources, so a
// NaN never reaches a report.
//
// # The Prometheus API client and source
//
// Client reads /api/v1/query, query_range, series, label values, rules and
// alerts from Prometheus, Thanos, Mimir, Cortex or VictoriaMetrics: the base URL
// may carry a path prefix ("https://mimir.example/prometheus"), user:password
// (sent as basic auth, never printed) and query parameters (sent on every call);
// WithHeader adds tenant headers such as X-Scope-OrgID. NewClient("") uses
// PROMETHEUS_URL, else http://localhost:9090, as the runbook's prometheus_query
// helper. Every attempt has a deadline (WithTimeout, also sent as the query's
// timeout parameter); reads are retried on ErrUnavailable and ErrRateLimited
// with full-jitter exponential backoff, honouring Retry-After; responses are
// capped (ErrTooLarge); queries whose URL would exceed 4 KiB are POSTed as a form.
// Every error is an *APIError naming the endpoint and the query, wrapping a kind
// (ErrBadQuery, ErrExecution, ErrTimeout, ErrUnavailable, ErrNotFound,
// ErrUnauthorized, ErrRateLimited, ErrMalformed, ErrUnsupported, …) mapped from
// the API's errorType, else from the HTTP status. An HTML page from a proxy,
// truncated JSON and unknown result types are ErrMalformed/ErrUnsupported, never
// mis-read. Results carry the server's warnings and infos verbatim.
//
// Decoding uses gjson over the validated body straight into
// prometheus/common/model values, with a hand-written scanner for the
// [timestamp, "value"] pairs (timestamps parsed exactly to the millisecond);
// strings kept are copied so the body is not retained. A result entry without
// "metric" (or with null) has the empty label set, as Prometheus' own client
// decodes it, never a nil map. Native-histogram samples
// are decoded into Sample.Histogram / SampleStream.Histograms; the Prometheus
// Source, whose answers are floats, refuses them with ErrNativeHistogram.
//
// The Prometheus source builds the PromQL each Source method names (see
// Source) and runs it as an instant query at the server's now (or at the
// injected clock's time with WithClock). Its evidence is the exact PromQL.
//
// # The scrape source
//
// Scrape keeps a ring of the newest samples of every series (DefaultRingSize per
// series, series absent from 64 successive scrapes are forgotten) and evaluates
// the Source questions with Prometheus' algorithms:
//
//   - Instant: the newest sample of each series present in its URL's last
//     successful scrape, if at most Lookback (5m) old. A failed scrape makes the
//     URL's series stale, as Prometheus' staleness markers do; the synthetic
//     series up{instance} is 1 or 0 as in Prometheus.
//   - Rate and Increase: Prometheus' extrapolatedRate — counter resets, samples
//     in the left-open window (now−w, now], extrapolation to a boundary when the
//     samples come within 1.1 average intervals of it, else half an interval,
//     never below a counter value of zero. The metric name is dropped.
//   - Quantile: the bucket series' rates (or newest values for a zero window)
//     summed by le, then Prometheus' histogram_quantile for classic buckets:
//     sorted bounds, a +Inf bucket required, equal bounds merged, counts forced
//     monotonic (with a warning, as Prometheus' info annotation), linear
//     interpolation, 0 as the lower bound of the first bucket unless it is ≤ 0,
//     and the highest finite bound when the rank falls in +Inf.
//   - Samples: the raw samples in (now−w, now].
//
// Where it must differ from Prometheus: it knows only what it has observed. When
// the window starts before the first successful scrape of a URL, the range
// starts at that scrape instead, so a rate is the rate over what was observed
// (two scrapes one second apart already give the exact rate of a linear
// counter) rather than being diluted by an unobserved part of the window; an
// increase is that observed rate times the window, with a warning saying how
// much was observed. With a full window observed, both are exactly Prometheus'
// values. Every series carries an "instance" label (host:port) but no "job"
// label. Native histograms are not scraped (the text format has none).
//
// Evidence from the scrape source names the PromQL-equivalent expression and the
// URLs: `rate(x[5m]) (scrape http://…/metrics)`. A URL's password is sent (basic
// auth) but shown redacted, in evidence, warnings, errors and Name alike
// (`http://user:xxxxx@host/metrics`, as tbops.RedactURL writes it).
package promq
