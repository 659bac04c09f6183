// Package promq is how tbops reads metrics: a Prometheus HTTP API client, the
// Source interface every diagnosis asks its questions through, with two
// implementations — Prometheus, which builds PromQL for a Prometheus-compatible
// server, and Scrape, which scrapes a node's /metrics itself when there is no
// Prometheus — and alert rules defined once, as expressions that print as
// PromQL and that promq evaluates itself.
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
// # Time windows
//
// One rule decides every windowed condition, in every runbook: it is decided
// only from evidence that covers its window, and is otherwise unknown. Never a
// page from a guess; never ok from a guess either.
//
//   - A window [t−w, t] is covered for a series when its samples reach back to
//     the window's start — a sample at or before t−w, or the first one less
//     than one sample interval (the series' average) after it, which is how
//     both a scrape source's first scrape and Prometheus' oldest sample show —
//     and forward to t: the newest sample within the 5m lookback (or one
//     interval, when longer). A covered value is exactly Prometheus' value.
//   - An uncovered rate or increase is bounded below: counters are
//     non-negative and only rise between resets, so the increase over the full
//     window is at least the rise the samples inside it show, and the rate at
//     least that over the range. The bound is carried through sums and
//     arithmetic, and decides what it can: a counter that moved makes
//     `increase(…) == 0` known false; a rise of 12 makes `> 10` known true.
//     Anything else is unknown.
//   - Instant selectors need no history. A rule's `for` needs every evaluation
//     in it decided: it is known to fire when each is known to return the
//     series, and known not to as soon as one is known not to.
//   - A condition left empty because a selector has no series at all is no
//     data: unknown, with "no data for <selector>", never ok. One that is empty
//     because its inputs exist and its comparison is false is ok.
//   - An unknown answer's warning says how much was observed of how much the
//     window needs and what would decide it: "rate(…): only 1s of the 10m
//     window observed: " and HistoryHint (the command line's --prom and tbops
//     serve; WithHistoryHint replaces it).
//
// # Expressions and rules
//
// An alert is an Rule whose Expr is built from the constructors: Metric,
// Num, Rate, Increase, HistogramQuantile, Sum, SumBy, SumWithout, GroupBy,
// GroupWithout, Add, Sub, Mul, Div, Compare (and GTc, GEc, LTc, LEc, EQc, NEc
// against a number), And, Or and Unless, with On or Ignoring. Expr.String is
// canonical PromQL, which `tbops rules` prints and Prometheus parses back to the
// same expression; Eval and EvalRule evaluate the same tree, so a report's
// Alerts block and Prometheus cannot disagree. Label matchers are equalities
// only: `status=~"a|b"` is written as the `or` of two selectors.
//
// Eval fetches every selector once through Source.Samples (so a Scoped source
// scopes it), over its longest range plus the lookback and a rule's `for`, and
// evaluates with Prometheus 2.x semantics (2.42, the version CI and Debian
// run), held bit for bit to `promtool test rules` by the differential tests:
//
//   - An instant selector takes each series' newest sample in the closed range
//     [t−5m, t]; a range selector the samples in the closed range [t−w, t].
//     Prometheus 3 makes both ranges left-open; the difference shows only for
//     a sample exactly on the boundary.
//   - rate and increase are 2.42's extrapolatedRate: counter resets, zero-point
//     clamping, extrapolation to a boundary within 1.1 average intervals, else
//     half an interval. histogram_quantile groups its input by every label but
//     le and applies 2.42's bucket algorithm; a group without observations is
//     NaN, as in Prometheus. Comparisons drop it and RuleState.Worst skips
//     it, so it never reaches a report.
//   - Functions, aggregations and arithmetic drop the metric name; comparisons
//     filter and keep it and the left-hand value. Arithmetic and comparisons
//     between vectors match one-to-one on all labels but the name, or on/
//     ignoring the labels given; and, or and unless match as sets. What
//     Prometheus refuses from the same samples — a duplicate match group, a
//     many-to-one match, two series with one label set — is an error.
//   - EvalRule evaluates on a grid every interval (WithEvalInterval, default
//     1m, Prometheus' evaluation_interval) ending at now, and fires an alert
//     whose series was returned at every grid point from now − For (rounded up
//     to the grid) to now, with the series' labels, without the metric name,
//     under the rule's Labels, as the rule manager does.
//
// Each evaluation runs twice: concretely, exactly as Prometheus would from the
// samples returned (the values reported), and abstractly, over every fuller
// history those samples could belong to — more samples before each series'
// first one — where values are ranges (an exact value, or a counter's lower
// bound) and series are certain or only possible. That second pass gives
// Known. Set operators stay sound under unknowns: and keeps a series only as
// surely as its match; or and unless, anti-monotone in one side, drop a series
// whose match is certain and only weaken one whose match is possible.
//
// Where it differs from Prometheus: it sees only the samples a source returns.
// It has no staleness markers, so a series that vanished answers an instant
// selector until the lookback passes, and a series the source has not seen is
// taken as absent. Its grid ends at now, where promtool's starts at time 0
// (with now a multiple of the interval they coincide); a grid point before a
// series' first sample may have had it, so it is unknown where promtool, which
// evaluates nothing before time 0, is quiet. sum adds in label order, which
// Prometheus' storage order may not match: three or more non-integer terms can
// differ in the last bit. There is no bool modifier, group_left/group_right,
// offset, @, regular-expression matcher or label_replace.
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
