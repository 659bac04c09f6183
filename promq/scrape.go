package promq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
)

// Defaults of the scrape source.
const (
	// DefaultRingSize is how many samples the scrape source keeps per series:
	// 17 minutes at one scrape a second, enough for the runbooks' 10m windows.
	DefaultRingSize = 1024
	// DefaultScrapeTimeout bounds one scrape of one URL.
	DefaultScrapeTimeout = 5 * time.Second
	// DefaultMaxScrapeBytes caps one /metrics response.
	DefaultMaxScrapeBytes = 16 << 20
	// DefaultMaxSeries caps how many series the scrape source tracks.
	DefaultMaxSeries = 100_000
	// Lookback is how old a sample may be and still answer an instant query,
	// Prometheus' default lookback delta.
	Lookback = 5 * time.Minute
	// forgetAfter is how many successful scrapes a series may be absent from
	// before the scrape source forgets it, which bounds memory under churn.
	forgetAfter = 64
)

// ErrClosed is returned by a closed scrape source.
var ErrClosed = errors.New("promq: scrape source closed")

// ScrapeOption configures NewScrape.
type ScrapeOption func(*Scrape)

// WithScrapeClock injects the clock that timestamps samples and evaluates
// queries (default time.Now). Tests pass a nodetest.FakeClock's Now and call
// Scrape between advances to get exact rates.
func WithScrapeClock(now func() time.Time) ScrapeOption {
	return func(s *Scrape) {
		if now != nil {
			s.now = now
		}
	}
}

// WithRingSize sets how many samples are kept per series (default
// DefaultRingSize, minimum 2).
func WithRingSize(n int) ScrapeOption {
	return func(s *Scrape) { s.ring = max(n, 2) }
}

// WithScrapeClient sets the HTTP client (default: a client with no overall
// timeout; each scrape has its own deadline).
func WithScrapeClient(c *http.Client) ScrapeOption {
	return func(s *Scrape) {
		if c != nil {
			s.client = c
		}
	}
}

// WithScrapeTimeout bounds each scrape of one URL (default DefaultScrapeTimeout).
func WithScrapeTimeout(d time.Duration) ScrapeOption {
	return func(s *Scrape) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithScrapeMaxBytes caps one /metrics response (default DefaultMaxScrapeBytes).
func WithScrapeMaxBytes(n int64) ScrapeOption {
	return func(s *Scrape) {
		if n > 0 {
			s.maxBytes = n
		}
	}
}

// WithScrapeMaxSeries caps how many series are tracked (default DefaultMaxSeries);
// a scrape that would exceed it fails.
func WithScrapeMaxSeries(n int) ScrapeOption {
	return func(s *Scrape) {
		if n > 0 {
			s.maxSeries = n
		}
	}
}

// WithScrapeHeader adds a header to every scrape request (e.g. Authorization).
func WithScrapeHeader(name, value string) ScrapeOption {
	return func(s *Scrape) { s.header.Add(name, value) }
}

// Scrape is the embedded metrics source: it scrapes /metrics URLs itself, keeps
// a bounded ring of samples per series, and evaluates rate, increase and
// histogram_quantile the way Prometheus does (see the package documentation for
// where it must differ). Every series gets an "instance" label (host:port of its
// URL) unless it has one, and each URL a synthetic "up" series, as in Prometheus.
// It is safe for concurrent use.
type Scrape struct {
	shown     string // the URLs as outputs show them: passwords redacted
	client    *http.Client
	timeout   time.Duration
	now       func() time.Time
	ring      int
	maxBytes  int64
	maxSeries int
	header    http.Header

	mu      sync.Mutex
	targets []*target
	series  map[model.Fingerprint]*ringSeries
	byName  map[string]map[model.Fingerprint]*ringSeries // series by metric name: what a selector reads
	closed  bool
	running bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

// target is the state of one scraped URL.
type target struct {
	url      string
	shown    string // url with its password redacted, for every text
	instance string
	first    time.Time // first successful scrape
	last     time.Time // last successful scrape
	gen      uint64    // successful scrapes so far
	lastErr  error     // error of the last attempt, nil when it succeeded
}

// ringSeries is one series and its most recent samples.
type ringSeries struct {
	metric model.Metric
	target int
	gen    uint64 // target gen when last seen
	up     bool   // the synthetic up series: current whatever the last scrape did
	pts    []point
	head   int // index of the oldest point once pts is full
}

func (r *ringSeries) push(p point, size int) {
	if n := len(r.pts); n > 0 {
		if last := r.pts[(r.head+n-1)%n]; p.t <= last.t {
			return // out of order or duplicate timestamp: Prometheus drops it too
		}
	}
	if len(r.pts) < size {
		r.pts = append(r.pts, p)
		return
	}
	r.pts[r.head] = p
	r.head = (r.head + 1) % len(r.pts)
}

// last returns the newest point.
func (r *ringSeries) last() point {
	n := len(r.pts)
	return r.pts[(r.head+n-1)%n]
}

// window appends the points with from < t ≤ to, oldest first.
func (r *ringSeries) window(dst []point, from, to int64) []point {
	n := len(r.pts)
	for i := 0; i < n; i++ {
		p := r.pts[(r.head+i)%n]
		if p.t > from && p.t <= to {
			dst = append(dst, p)
		}
	}
	return dst
}

// NewScrape returns a scrape source for the given /metrics URLs. It takes no
// sample until Scrape or Run is called.
func NewScrape(urls []string, opts ...ScrapeOption) *Scrape {
	s := &Scrape{
		client: &http.Client{}, timeout: DefaultScrapeTimeout,
		now: time.Now, ring: DefaultRingSize, maxBytes: DefaultMaxScrapeBytes, maxSeries: DefaultMaxSeries,
		header: http.Header{}, series: map[model.Fingerprint]*ringSeries{},
		byName: map[string]map[model.Fingerprint]*ringSeries{}, stop: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	shown := make([]string, len(urls))
	for i, u := range urls {
		t := &target{url: u, shown: tbops.RedactURL(u)}
		t.instance = t.shown
		if pu, err := url.Parse(u); err == nil && pu.Host != "" {
			t.instance = pu.Host
		}
		shown[i] = t.shown
		s.targets = append(s.targets, t)
	}
	s.shown = strings.Join(shown, ", ")
	return s
}

// Name is "scrape " and the URLs, passwords redacted.
func (s *Scrape) Name() string { return "scrape " + s.shown }

// Scrape takes one sample of every URL now, concurrently. It returns the errors
// of the URLs that failed (joined); the samples of the others are kept.
func (s *Scrape) Scrape(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	errs := make([]error, len(s.targets))
	var wg sync.WaitGroup
	for i := range s.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.scrapeOne(ctx, i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run scrapes every interval in the background until ctx is done or Close is
// called. It returns at once; a second call while running does nothing.
func (s *Scrape) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.running {
		return
	}
	s.running = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-tk.C:
				_ = s.Scrape(ctx) // failures are recorded per target and surface as warnings
			}
		}
	}()
}

// Close stops Run's loop and waits for it. Queries still answer from the
// samples already taken; Scrape returns ErrClosed.
func (s *Scrape) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// scrapeOne fetches, parses and stores one URL.
func (s *Scrape) scrapeOne(ctx context.Context, i int) error {
	t := s.targets[i]
	ts := s.now()
	vec, err := s.fetch(ctx, t, ts)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		err = s.store(i, vec, ts)
	}
	t.lastErr = err
	up := 1.0
	if err != nil {
		up = 0
	}
	s.add(i, model.Metric{model.MetricNameLabel: "up", "instance": model.LabelValue(t.instance)},
		point{t: ts.UnixMilli(), v: up}, t.gen).up = true
	return err
}

// fetch GETs and parses one exposition. Its errors name the target by its
// redacted URL.
func (s *Scrape) fetch(ctx context.Context, t *target, ts time.Time) (model.Vector, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	u := t.shown
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot scrape %s: %w", u, unwrapURLError(err)) // url.Error quotes the URL itself
	}
	for k, vs := range s.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot scrape %s: %w", u, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot scrape %s: reading the response: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot scrape %s: HTTP %d: %s", u, resp.StatusCode, snippet(body))
	}
	if int64(len(body)) > s.maxBytes {
		return nil, fmt.Errorf("cannot scrape %s: response larger than %d bytes", u, s.maxBytes)
	}
	vec, err := ParseExposition(body, resp.Header.Get("Content-Type"), ts)
	if err != nil {
		return nil, fmt.Errorf("cannot scrape %s: %w", u, err)
	}
	return vec, nil
}

// ParseExposition parses one /metrics response body (Prometheus text format, or
// whatever contentType names that expfmt can decode: protobuf, OpenMetrics) into
// flat samples stamped ts unless they carry their own timestamp. Histograms and
// summaries become their _bucket/_sum/_count series, as Prometheus stores them.
func ParseExposition(body []byte, contentType string, ts time.Time) (model.Vector, error) {
	var fams []*dto.MetricFamily
	format := expfmt.ResponseFormat(http.Header{"Content-Type": []string{contentType}})
	switch format.FormatType() {
	case expfmt.TypeProtoDelim, expfmt.TypeOpenMetrics:
		dec := expfmt.NewDecoder(bytes.NewReader(body), format)
		for {
			mf := &dto.MetricFamily{}
			if err := dec.Decode(mf); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("parsing %s: %w", contentType, err)
			}
			fams = append(fams, mf)
		}
	default:
		if looksLikeHTML(body) {
			return nil, fmt.Errorf("got an HTML page, not metrics: %s", snippet(body))
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		m, err := p.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("parsing the text format: %w", err)
		}
		fams = make([]*dto.MetricFamily, 0, len(m))
		for _, mf := range m {
			fams = append(fams, mf)
		}
	}
	vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.TimeFromUnixNano(ts.UnixNano())}, fams...)
	if err != nil {
		return nil, fmt.Errorf("extracting samples: %w", err)
	}
	return vec, nil
}

// store adds one scrape's samples; s.mu is held. Nothing is stored when the
// scrape would exceed the series cap.
func (s *Scrape) store(i int, vec model.Vector, ts time.Time) error {
	t := s.targets[i]
	fresh := 0
	for _, smp := range vec {
		s.label(t, smp)
		if _, ok := s.series[smp.Metric.Fingerprint()]; !ok {
			fresh++
		}
	}
	if len(s.series)+fresh > s.maxSeries {
		return fmt.Errorf("cannot scrape %s: more than %d series tracked", t.shown, s.maxSeries)
	}
	t.gen++
	if t.gen == 1 {
		t.first = ts
	}
	t.last = ts
	for _, smp := range vec {
		s.add(i, smp.Metric, point{t: int64(smp.Timestamp), v: float64(smp.Value)}, t.gen)
	}
	for fp, r := range s.series {
		if r.target == i && t.gen-r.gen > forgetAfter {
			delete(s.series, fp)
			s.unindex(fp, r)
		}
	}
	return nil
}

// label adds the instance label, as Prometheus does (a label the target sets wins).
func (s *Scrape) label(t *target, smp *model.Sample) {
	if _, ok := smp.Metric["instance"]; !ok {
		smp.Metric["instance"] = model.LabelValue(t.instance)
	}
}

// add appends one point to a series, creating it; s.mu is held.
func (s *Scrape) add(i int, m model.Metric, p point, gen uint64) *ringSeries {
	fp := m.Fingerprint()
	r, ok := s.series[fp]
	if !ok {
		r = &ringSeries{metric: m, target: i, pts: make([]point, 0, min(s.ring, 8))}
		s.series[fp] = r
		s.index(fp, r)
	}
	r.gen = gen
	r.push(p, s.ring)
	return r
}

// index files a new series under its metric name; s.mu is held.
func (s *Scrape) index(fp model.Fingerprint, r *ringSeries) {
	name := string(r.metric[model.MetricNameLabel])
	if s.byName[name] == nil {
		s.byName[name] = map[model.Fingerprint]*ringSeries{}
	}
	s.byName[name][fp] = r
}

// unindex takes a forgotten series out of the index; s.mu is held.
func (s *Scrape) unindex(fp model.Fingerprint, r *ringSeries) {
	name := string(r.metric[model.MetricNameLabel])
	delete(s.byName[name], fp)
	if len(s.byName[name]) == 0 {
		delete(s.byName, name)
	}
}

// matching is the series a selector may match: those of its metric name (a
// selector matches only its own name), so a question reads a handful of series,
// not all the source holds. s.mu is held.
func (s *Scrape) matching(sel Selector) map[model.Fingerprint]*ringSeries {
	return s.byName[sel.Metric]
}

// current says whether r was in its target's last scrape (not stale).
func (s *Scrape) current(r *ringSeries) bool {
	if r.up {
		return true
	}
	t := s.targets[r.target]
	return t.lastErr == nil && r.gen == t.gen && t.gen > 0
}

// targetWarnings says which URLs have not answered; s.mu is held.
func (s *Scrape) targetWarnings() []string {
	var w []string
	for _, t := range s.targets {
		switch {
		case t.gen == 0 && t.lastErr == nil:
			w = append(w, fmt.Sprintf("%s has not been scraped yet", t.shown))
		case t.gen == 0:
			w = append(w, fmt.Sprintf("no successful scrape yet: %v", t.lastErr))
		case t.lastErr != nil:
			w = append(w, fmt.Sprintf("last scrape failed (data up to %s): %v", t.last.UTC().Format(time.RFC3339), t.lastErr))
		}
	}
	return w
}

func (s *Scrape) evidence(query string, v any, now time.Time) tbops.Evidence {
	return tbops.Evidence{Source: tbops.SourceScrape, Query: query + " (" + s.Name() + ")", Value: tbops.RawOf(v), At: now.UTC()}
}

// MetricNames lists the metric names of every series the source holds
// (including the synthetic up), sorted: what a Prometheus label-values query
// for __name__ would answer.
func (s *Scrape) MetricNames() []string {
	s.mu.Lock()
	seen := make(map[string]bool, len(s.series))
	for _, r := range s.series {
		seen[string(r.metric[model.MetricNameLabel])] = true
	}
	s.mu.Unlock()
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Instant returns the newest sample of each matching series that was present
// in its URL's last successful scrape and is at most Lookback old.
func (s *Scrape) Instant(ctx context.Context, sel Selector) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	now := s.now()
	s.mu.Lock()
	vec := s.instant(sel, now)
	warn := s.targetWarnings()
	s.mu.Unlock()
	sortVector(vec)
	if len(vec) == 0 {
		warn = append(warn, fmt.Sprintf("no data for %s", sel))
	}
	return Result{Vector: vec, Evidence: s.evidence(sel.String(), evidenceValue(vec), now), Warnings: warn}, nil
}

// instant collects the current samples; s.mu is held.
func (s *Scrape) instant(sel Selector, now time.Time) model.Vector {
	var vec model.Vector
	oldest := now.Add(-Lookback).UnixMilli()
	for _, r := range s.matching(sel) {
		if !sel.Matches(r.metric) || !s.current(r) {
			continue
		}
		p := r.last()
		if p.t < oldest || p.t > now.UnixMilli() {
			continue
		}
		vec = append(vec, &model.Sample{Metric: r.metric.Clone(), Value: model.SampleValue(p.v), Timestamp: model.Time(p.t)})
	}
	return vec
}

// rangeKind is the function a range evaluation applies.
type rangeKind int

const (
	kindRate rangeKind = iota
	kindIncrease
)

// ranged evaluates rate or increase over each matching series; s.mu is held.
// It returns the vector (metric names dropped, as PromQL does), how many series
// matched, and the smallest fraction of the window observed.
func (s *Scrape) ranged(sel Selector, w time.Duration, now time.Time, kind rangeKind) (model.Vector, int, float64) {
	var vec model.Vector
	matched := 0
	coverage := 1.0
	end := now.UnixMilli()
	from := now.Add(-w).UnixMilli()
	var buf []point
	for _, r := range s.matching(sel) {
		if !sel.Matches(r.metric) {
			continue
		}
		matched++
		// The scrape source knows nothing before its first scrape of this URL:
		// the range starts there when that is later than the window's start, so
		// a rate is over what was observed instead of being diluted by the
		// unobserved part of the window.
		start := max(from, s.targets[r.target].first.UnixMilli())
		if end <= start {
			continue
		}
		buf = r.window(buf[:0], from, end)
		d, ok := extrapolatedDelta(buf, start, end)
		if !ok {
			continue
		}
		span := float64(end-start) / 1000
		var v float64
		switch kind {
		case kindRate:
			v = d / span
		case kindIncrease:
			v = d * w.Seconds() / span
			coverage = min(coverage, span/w.Seconds())
		}
		m := r.metric.Clone()
		delete(m, model.MetricNameLabel)
		vec = append(vec, &model.Sample{Metric: m, Value: model.SampleValue(v), Timestamp: model.Time(end)})
	}
	return vec, matched, coverage
}

// Rate is rate(sel[window]) over the samples taken; see the package
// documentation for how a window longer than what was observed is handled.
func (s *Scrape) Rate(ctx context.Context, sel Selector, window time.Duration) (Result, error) {
	return s.rangeQuery(ctx, sel, window, kindRate, rateExpr(sel, window))
}

// Increase is increase(sel[window]) over the samples taken. When the source has
// observed less of the window than asked, the increase is the observed rate
// times the window, with a warning saying so.
func (s *Scrape) Increase(ctx context.Context, sel Selector, window time.Duration) (Result, error) {
	return s.rangeQuery(ctx, sel, window, kindIncrease, increaseExpr(sel, window))
}

func (s *Scrape) rangeQuery(ctx context.Context, sel Selector, window time.Duration, kind rangeKind, expr string) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if window <= 0 {
		return Result{}, fmt.Errorf("%s: %w: window must be positive", expr, ErrBadQuery)
	}
	now := s.now()
	s.mu.Lock()
	vec, matched, coverage := s.ranged(sel, window, now, kind)
	warn := s.targetWarnings()
	s.mu.Unlock()
	sortVector(vec)
	switch {
	case matched == 0:
		warn = append(warn, fmt.Sprintf("no data for %s", sel))
	case len(vec) == 0:
		warn = append(warn, fmt.Sprintf("%s: not enough samples yet: it needs two scrapes within the last %s", expr, formatDuration(window)))
	case coverage < 0.9:
		warn = append(warn, fmt.Sprintf("%s: the scrape source observed only %s of the %s window; the increase assumes the observed rate held",
			expr, (time.Duration(coverage*float64(window))).Round(time.Second), formatDuration(window)))
	}
	return Result{Vector: vec, Evidence: s.evidence(expr, evidenceValue(vec), now), Warnings: warn}, nil
}

// Quantile is histogram_quantile(q, sum by (le) (rate(<metric>_bucket{…}[window])))
// or, with a zero window, over the newest cumulative buckets. A NaN answer (no
// observations, no +Inf bucket) is reported as no data with a warning.
func (s *Scrape) Quantile(ctx context.Context, q float64, sel Selector, window time.Duration) (Result, error) {
	expr := quantileExpr(q, sel, window)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if window < 0 {
		return Result{}, fmt.Errorf("%s: %w: window must not be negative", expr, ErrBadQuery)
	}
	now := s.now()
	bsel := bucketSelector(sel)
	s.mu.Lock()
	var vec model.Vector
	if window == 0 {
		vec = s.instant(bsel, now)
	} else {
		vec, _, _ = s.ranged(bsel, window, now, kindRate)
	}
	warn := s.targetWarnings()
	s.mu.Unlock()
	res, w := quantileOf(q, vec, expr, sel)
	warn = append(warn, w...)
	var out model.Vector
	if res != nil {
		res.Timestamp = model.TimeFromUnixNano(now.UnixNano())
		out = model.Vector{res}
	}
	return Result{Vector: out, Evidence: s.evidence(expr, evidenceValue(out), now), Warnings: warn}, nil
}

// quantileOf sums bucket samples by le and applies histogram_quantile. It returns
// nil and a warning when there is no answer.
func quantileOf(q float64, buckets model.Vector, expr string, sel Selector) (*model.Sample, []string) {
	if len(buckets) == 0 {
		return nil, []string{fmt.Sprintf("no data for %s", bucketSelector(sel))}
	}
	var warn []string
	byLE := map[float64]float64{}
	bad := 0
	for _, b := range buckets {
		le, ok := parseLE(string(b.Metric[model.BucketLabel]))
		if !ok {
			bad++
			continue
		}
		byLE[le] += float64(b.Value)
	}
	if bad > 0 {
		warn = append(warn, fmt.Sprintf("%s: %d bucket series without a valid le label ignored", expr, bad))
	}
	bs := make([]bucket, 0, len(byLE))
	for le, c := range byLE {
		bs = append(bs, bucket{upper: le, count: c})
	}
	v, forced := bucketQuantile(q, bs)
	if forced {
		warn = append(warn, fmt.Sprintf("%s: bucket counts were not monotonic and were fixed, as Prometheus does", expr))
	}
	if math.IsNaN(v) {
		why := "no observations"
		if _, ok := byLE[math.Inf(1)]; !ok {
			why = "no +Inf bucket"
		}
		return nil, append(warn, fmt.Sprintf("%s: no data (%s)", expr, why))
	}
	return &model.Sample{Metric: model.Metric{}, Value: model.SampleValue(v)}, warn
}

// Samples returns the raw samples of each matching series with timestamps in
// (now−window, now].
func (s *Scrape) Samples(ctx context.Context, sel Selector, window time.Duration) (RangeResult, error) {
	rr, now, err := s.samplesAt(ctx, sel, window)
	if err != nil {
		return RangeResult{}, err
	}
	rr.Evidence = s.evidence(rr.Evidence.Query, matrixEvidence(rr.Matrix), now)
	return rr, nil
}

// samples is Samples without the evidence's summary of the matrix: see sampler.
func (s *Scrape) samples(ctx context.Context, sel Selector, window time.Duration) (RangeResult, error) {
	rr, _, err := s.samplesAt(ctx, sel, window)
	return rr, err
}

// samplesAt is Samples as of the time it returns, with only the evidence's
// source and query set.
func (s *Scrape) samplesAt(ctx context.Context, sel Selector, window time.Duration) (RangeResult, time.Time, error) {
	expr := samplesExpr(sel, window)
	if err := ctx.Err(); err != nil {
		return RangeResult{}, time.Time{}, err
	}
	if window <= 0 {
		return RangeResult{}, time.Time{}, fmt.Errorf("%s: %w: window must be positive", expr, ErrBadQuery)
	}
	now := s.now()
	from, end := now.Add(-window).UnixMilli(), now.UnixMilli()
	var mat model.Matrix
	var buf []point
	s.mu.Lock()
	for _, r := range s.matching(sel) {
		if !sel.Matches(r.metric) {
			continue
		}
		buf = r.window(buf[:0], from, end)
		if len(buf) == 0 {
			continue
		}
		ss := &model.SampleStream{Metric: r.metric.Clone(), Values: make([]model.SamplePair, len(buf))}
		for i, p := range buf {
			ss.Values[i] = model.SamplePair{Timestamp: model.Time(p.t), Value: model.SampleValue(p.v)}
		}
		mat = append(mat, ss)
	}
	warn := s.targetWarnings()
	s.mu.Unlock()
	sort.Sort(mat)
	if len(mat) == 0 {
		warn = append(warn, fmt.Sprintf("no data for %s", sel))
	}
	return RangeResult{Matrix: mat, Evidence: tbops.Evidence{Source: tbops.SourceScrape, Query: expr}, Warnings: warn}, now, nil
}

// matrixEvidence summarises a matrix for evidence: the sample count and the
// newest value of each series.
func matrixEvidence(m model.Matrix) tbops.Raw {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for _, ss := range m {
		if n := len(ss.Values); n > 0 {
			out[ss.Metric.String()] = map[string]any{"samples": n, "last": jsonNumber(float64(ss.Values[n-1].Value))}
		}
	}
	return tbops.RawOf(out)
}

func sortVector(v model.Vector) {
	sort.Slice(v, func(i, j int) bool { return v[i].Metric.Before(v[j].Metric) })
}

// looksLikeHTML says whether a body is an HTML page (a proxy's error page).
func looksLikeHTML(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n\ufeff")
	if len(b) > 64 {
		b = b[:64]
	}
	l := bytes.ToLower(b)
	return bytes.HasPrefix(l, []byte("<!doctype html")) || bytes.HasPrefix(l, []byte("<html")) ||
		bytes.HasPrefix(l, []byte("<head")) || bytes.HasPrefix(l, []byte("<body"))
}

// snippet is the start of a body for an error message, on one line.
func snippet(b []byte) string {
	const n = 120
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	if s == "" {
		s = "(empty body)"
	}
	return s
}

// unwrapURLError drops net/http's `Get "url":` prefix: the callers name the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
