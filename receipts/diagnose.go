package receipts

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// RunbookID is the id of the Receipts Flatlining runbook.
const RunbookID = "receipts-flatlining"

// Thresholds of the runbook and its SLO table, exported for callers who
// evaluate them themselves.
const (
	// StallBlocks: a market (or the whole stream) is not emitting when its last
	// receipt is this many blocks behind the tip ("flat for 5+ blocks", "any
	// market = 0 for 5 blocks").
	StallBlocks = 5
	// NoEmissionBlocks is the runbook's "markets with no emissions (last 10 blocks)".
	NoEmissionBlocks = 10
	// ValidationSuccessTarget is the SLO target (> 99.99 %) and
	// ValidationSuccessAlert the alert threshold (< 99 % for 10 min).
	ValidationSuccessTarget = 0.9999
	ValidationSuccessAlert  = 0.99
	// MinPaymentNearZeroPerSecond is what "near-zero" min-payment rejections
	// means: at most one rejection a minute (5-minute rate).
	MinPaymentNearZeroPerSecond = 1.0 / 60
	// MinPaymentSpikeFactor defines a "sudden increase": the 5-minute rejection
	// rate above near-zero and above this many times the 1-hour rate.
	MinPaymentSpikeFactor = 3
	// QueryLatencyTarget is the SLO target of p99 query latency, and
	// QueryLatencyAlert its alert threshold (> 500 ms for 5 min).
	QueryLatencyTarget = 100 * time.Millisecond
	QueryLatencyAlert  = 500 * time.Millisecond
	// ExplorerMaxLagBlocks: the explorer is "not updating" when its newest
	// receipt is more than this many blocks behind the node's.
	ExplorerMaxLagBlocks = 10
	// RevalidateBlocks is how far back the runbook re-validates after a reset.
	RevalidateBlocks = 100
)

// Windows of the runbook's queries.
const (
	// FlatWindow is the window of the metric "not emitting" and "chain stalled"
	// checks, increase(…[1m]) == 0: the shortest that holds two samples at the
	// usual 15–30 s scrape intervals. The block-exact 5-block check comes from
	// receipts.stats.
	FlatWindow          = time.Minute
	EmissionRateWindow  = time.Minute
	NoEmissionWindow    = 10 * time.Minute
	ValidationWindow    = 5 * time.Minute
	ValidationAlertFor  = 10 * time.Minute
	MinPaymentBaseline  = time.Hour
	BlockProgressWindow = 50 * time.Minute
)

// Symptom ids.
const (
	SymptomEmissionFlat      = "emission-flat"
	SymptomMarketNotEmitting = "market-not-emitting"
	SymptomValidationErrors  = "validation-errors-increasing"
	SymptomExplorerStale     = "explorer-not-updating"
	SymptomChainStalled      = "chain-stalled"
	SymptomMinPayment        = "min-payment-rejections"
)

// Path ids. The runbook's resolution has no letters; tbops names them in its
// order: A stalled markets, B validation errors, then C a stalled chain (from
// step 4) and D min-payment rejections (from step 2 and the SLO table).
const (
	PathStalledMarket    = "A"
	PathValidationErrors = "B"
	PathStalledChain     = "C"
	PathMinPayment       = "D"
)

// Options configures a Runbook. The zero value is usable.
type Options struct {
	// Now is the clock (default: the client's, rpc.WithClock, else time.Now):
	// the report's time, and the instant the metrics are evaluated at.
	Now func() time.Time
	// Markets to check (default all four).
	Markets []Market
	// ExplorerURL, when set, is fetched (GET) for the explorer check: it must
	// answer JSON with an integer "latest_receipt_height". Empty: not checked,
	// so the symptom is unknown.
	ExplorerURL string
	// ExplorerMaxLag is the lag in blocks beyond which the explorer is not
	// updating (default ExplorerMaxLagBlocks).
	ExplorerMaxLag int64
	// HTTPClient fetches ExplorerURL (default: a client with a 5 s timeout).
	HTTPClient *http.Client
	// SLO also evaluates the Receipts SLO table.
	SLO bool
	// RevalidateBlocks is how many recent blocks Apply re-validates (default
	// RevalidateBlocks).
	RevalidateBlocks int64
}

// withDefaults returns the options with defaults filled in, or an error naming
// the bad field.
func (o Options) withDefaults() (Options, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Markets) == 0 {
		o.Markets = Markets()
	}
	for _, m := range o.Markets {
		if _, err := ParseMarket(string(m)); err != nil {
			return o, fmt.Errorf("receipts: Options.Markets: %w", err)
		}
	}
	o.Markets = append([]Market(nil), o.Markets...)
	if o.ExplorerMaxLag == 0 {
		o.ExplorerMaxLag = ExplorerMaxLagBlocks
	}
	if o.ExplorerMaxLag < 0 {
		return o, fmt.Errorf("receipts: Options.ExplorerMaxLag %d: want a positive number of blocks", o.ExplorerMaxLag)
	}
	if o.ExplorerURL != "" && !strings.HasPrefix(o.ExplorerURL, "http://") && !strings.HasPrefix(o.ExplorerURL, "https://") {
		return o, fmt.Errorf("receipts: Options.ExplorerURL %q: want an http(s) URL", tbops.RedactURL(o.ExplorerURL))
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if o.RevalidateBlocks == 0 {
		o.RevalidateBlocks = RevalidateBlocks
	}
	if o.RevalidateBlocks < 0 {
		return o, fmt.Errorf("receipts: Options.RevalidateBlocks %d: want a positive number of blocks", o.RevalidateBlocks)
	}
	return o, nil
}

// Runbook is the Receipts Flatlining runbook bound to one node: its client,
// its metrics source (nil for none) and options. It is a tbops.Runbook and a
// tbops.Applier. Safe for concurrent use.
type Runbook struct {
	c    *Client
	src  promq.Source
	opts Options
}

// NewRunbook binds the runbook to a node's client and metrics source (src may
// be nil: what only metrics show is then unknown). Options are checked by
// Diagnose and Apply.
func NewRunbook(c *Client, src promq.Source, opts Options) *Runbook {
	return &Runbook{c: c, src: src, opts: opts}
}

// ID is RunbookID.
func (rb *Runbook) ID() string { return RunbookID }

func (rb *Runbook) options() (Options, error) {
	if rb.c == nil {
		return Options{}, errors.New("receipts: the runbook has no client")
	}
	o := rb.opts
	if o.Now == nil {
		o.Now = rb.c.now
	}
	return o.withDefaults()
}

// Diagnose runs the Receipts Flatlining runbook. It only reads; Apply carries
// out the actions that change the node. It returns an error only for invalid
// options or a cancelled ctx; missing data is reported as unknown symptoms
// and warnings.
func (rb *Runbook) Diagnose(ctx context.Context) (tbops.Report, error) {
	opts, err := rb.options()
	if err != nil {
		return tbops.Report{}, err
	}
	d := &diagnosis{ctx: ctx, c: rb.c, src: rb.src, opts: opts, now: opts.Now(), seen: map[string]bool{}}
	d.r = tbops.NewReport(RunbookID, rb.c.URL(), d.now)
	if rb.src != nil {
		d.r.Scope = rb.src.Name()
	}
	d.gather()
	if err := ctx.Err(); err != nil {
		return d.r, err
	}
	d.evalRules()
	d.chainStalled()
	d.stepEmission()
	d.stepValidation()
	d.stepMarketStats()
	d.stepBlocks()
	d.stepExplorer()
	d.stepRoundTrips()
	if err := ctx.Err(); err != nil {
		return d.r, err
	}
	d.paths()
	d.alerts()
	if opts.SLO {
		d.slos()
	}
	d.r.Finalize()
	return d.r, ctx.Err()
}

// tri is a three-valued verdict: known and true/false, or unknown.
type tri struct{ known, yes bool }

func yes() tri         { return tri{true, true} }
func no() tri          { return tri{true, false} }
func isYes(t tri) bool { return t.known && t.yes }
func isNo(t tri) bool  { return t.known && !t.yes }

// or is true if either is, false if one is known false and neither true.
func (t tri) or(u tri) tri {
	switch {
	case isYes(t) || isYes(u):
		return yes()
	case t.known || u.known:
		return no()
	}
	return tri{}
}

// market is what the diagnosis learned about one market.
type market struct {
	m        Market
	stats    *Stats
	statsErr error
	// blocksSince is the tip minus last_emitted_height, when both are known.
	blocksSince *int64
	// stalled: no receipt for StallBlocks blocks, from receipts.stats when it
	// answered, else from the ReceiptsMarketNotEmitting rule.
	stalled tri
	why     string
}

// ruleResult is one rule of Rules() evaluated on the source.
type ruleResult struct {
	rule  promq.Rule
	state promq.RuleState
	ok    bool // evaluated (a source, and no error)
}

type diagnosis struct {
	ctx  context.Context
	c    *Client
	src  promq.Source
	opts Options
	now  time.Time
	r    tbops.Report
	seen map[string]bool // warnings already given
	rtt  []time.Duration // tbops's own round trips to the node

	status    *NodeStatus
	consensus *ConsensusStatus
	markets   []*market
	rules     []ruleResult

	chain    tri              // the chain makes no blocks
	blocks   promq.Evaluation // increase(block_height_total[1m])
	blocksOK bool
	stalled  []Market // markets known not to emit
}

func (d *diagnosis) warn(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if !d.seen[s] {
		d.seen[s] = true
		d.r.Warnings = append(d.r.Warnings, s)
	}
}

func (d *diagnosis) warnAll(ws []string) {
	for _, w := range ws {
		d.warn("%s", w)
	}
}

// timed runs one RPC call and keeps its round trip, an observation of the
// link and of tbops itself (never of the node's own query latency).
func (d *diagnosis) timed(call func() error) error {
	start := d.c.now()
	err := call()
	d.rtt = append(d.rtt, d.c.now().Sub(start))
	return err
}

func (d *diagnosis) rpcEvidence(query string, v any) tbops.Evidence {
	return tbops.Evidence{Source: tbops.SourceRPC, Query: query, Value: tbops.RawOf(v), At: d.now.UTC()}
}

// rpcWarn says what an RPC failure means for the diagnosis.
func (d *diagnosis) rpcWarn(method string, err error, consequence string) {
	if errors.Is(err, ErrMethodNotFound) {
		d.warn("the node does not serve %s (-32601): %s", method, consequence)
		return
	}
	d.warn("%s failed: %v; %s", method, err, consequence)
}

// noSource is the warning of a diagnosis without a metrics source.
const noSource = "no metrics source: the metric checks and alerts are unknown"

// eval evaluates an expression on the source now. ok is false, with a
// warning, when there is no source or the evaluation failed; coverage warnings
// are the caller's to give when they explain an unknown verdict.
func (d *diagnosis) eval(e promq.Expr) (promq.Evaluation, bool) {
	if d.src == nil {
		d.warn(noSource)
		return promq.Evaluation{}, false
	}
	ev, err := promq.Eval(d.ctx, d.src, e, d.now)
	if err != nil {
		d.warn("%s: %v", e, err)
		return promq.Evaluation{}, false
	}
	return ev, true
}

// undecided says why an evaluation left a verdict unknown: the evaluation's
// own warnings (no data, a window not covered), or how much of the window was
// observed when its series exist but their values are not decided.
func (d *diagnosis) undecided(what string, ev promq.Evaluation) {
	if len(ev.Warnings) > 0 {
		d.warnAll(ev.Warnings)
		return
	}
	d.warn("%s: only %s of the %s window observed: %s", what, roundDur(ev.Observed), roundDur(ev.Needed), promq.HistoryHint)
}

func statsQuery(m Market) string { return fmt.Sprintf("receipts.stats {\"market\":%q}", m) }

// gather reads node.status, node.consensus_status and receipts.stats of each market.
func (d *diagnosis) gather() {
	var st NodeStatus
	if err := d.timed(func() (err error) { st, err = d.c.NodeStatus(d.ctx); return err }); err != nil {
		d.rpcWarn("node.status", err, "blocks since each market's last receipt unknown")
	} else {
		d.status = &st
	}
	var cs ConsensusStatus
	if err := d.timed(func() (err error) { cs, err = d.c.ConsensusStatus(d.ctx); return err }); err != nil {
		d.rpcWarn("node.consensus_status", err, "consensus not checked")
	} else {
		d.consensus = &cs
	}
	for _, m := range d.opts.Markets {
		mk := &market{m: m}
		d.markets = append(d.markets, mk)
		var s Stats
		if err := d.timed(func() (err error) { s, err = d.c.Stats(d.ctx, m); return err }); err != nil {
			mk.statsErr = err
			if errors.Is(err, ErrMethodNotFound) {
				d.rpcWarn("receipts.stats", err, "per-market stats unavailable")
			} else {
				d.rpcWarn(statsQuery(m), err, "stats unavailable for this market")
			}
			continue
		}
		mk.stats = &s
		if d.status == nil {
			continue
		}
		since := d.status.CurrentBlockHeight - s.LastEmittedHeight
		if since < 0 {
			// Answers taken a moment apart, or stats running ahead of the status:
			// say so rather than report a negative age.
			d.warn("receipts.stats for %s says last_emitted_height %d, above node.status current_block_height %d", m, s.LastEmittedHeight, d.status.CurrentBlockHeight)
			since = 0
		}
		mk.blocksSince = &since
		never := s.EmittedTotal == 0 && s.LastEmittedHeight == 0
		mk.stalled = tri{true, never || since >= StallBlocks}
		switch {
		case never:
			mk.why = fmt.Sprintf("%s has never emitted", m)
		case since >= StallBlocks:
			mk.why = fmt.Sprintf("%s: no receipt for %d blocks (last at height %d)", m, since, s.LastEmittedHeight)
		}
	}
}

// evalRules evaluates every rule of Rules() on the source, once: the Alerts
// block and the symptoms that are an alert's condition read these states.
func (d *diagnosis) evalRules() {
	for _, rule := range Rules() {
		res := ruleResult{rule: rule}
		if d.src == nil {
			d.warn(noSource)
		} else if st, err := promq.EvalRule(d.ctx, d.src, rule, d.now); err != nil {
			d.warn("alert %s not evaluated: %v", rule.Alert, err)
		} else {
			res.state, res.ok = st, true
		}
		d.rules = append(d.rules, res)
	}
}

// rule returns the evaluation of the first rule named alert.
func (d *diagnosis) rule(alert string) ruleResult {
	for _, r := range d.rules {
		if r.rule.Alert == alert {
			return r
		}
	}
	return ruleResult{}
}

// marketNotEmittingByRule is the ReceiptsMarketNotEmitting alert of one
// market: unknown when the rule was not evaluated or the market has no series.
func marketNotEmittingByRule(r ruleResult, m Market) tri {
	if !r.ok {
		return tri{}
	}
	present := false
	for _, v := range r.state.Values {
		present = present || string(v.Metric["market"]) == string(m)
	}
	if !present {
		return tri{}
	}
	for _, a := range r.state.Alerts {
		if string(a.Labels["market"]) == string(m) {
			return tri{a.Known, a.Firing}
		}
	}
	return no() // its series exists and is certainly not returned
}

// stepEmission is runbook step 1 and the two emission symptoms.
func (d *diagnosis) stepEmission() {
	step := tbops.Step{ID: "emission-rate", Title: "Emission rate by market"}
	emitted := promq.Select(MetricEmitted)
	if ev, ok := d.eval(promq.Rate(emitted, EmissionRateWindow)); ok {
		step.Evidence = append(step.Evidence, ev.Evidence)
		by := byLabel(ev.Series, "market")
		parts := make([]string, 0, len(d.markets))
		for _, mk := range d.markets {
			parts = append(parts, string(mk.m)+" "+showSeries(by[string(mk.m)], "/s"))
		}
		step.Findings = append(step.Findings, "emission rate (1m): "+strings.Join(parts, ", "))
	}
	if ev, ok := d.eval(promq.EQc(promq.Increase(emitted, NoEmissionWindow), 0)); ok {
		step.Evidence = append(step.Evidence, ev.Evidence)
		var none []string
		for _, s := range ev.Series {
			if s.Known {
				none = append(none, string(s.Metric["market"]))
			}
		}
		answer := listOrNone(none)
		if !ev.Known {
			answer += fmt.Sprintf("; undecided for the rest (observed %s of %s)", roundDur(ev.Observed), roundDur(ev.Needed))
		}
		step.Findings = append(step.Findings, "markets with increase(receipt_emitted_total[10m]) == 0 (the runbook's \"last 10 blocks\" query spans 10 minutes): "+answer)
	}
	if d.status != nil {
		var quiet []string
		for _, mk := range d.markets {
			if mk.blocksSince != nil && *mk.blocksSince >= NoEmissionBlocks {
				quiet = append(quiet, fmt.Sprintf("%s (%d blocks)", mk.m, *mk.blocksSince))
			}
		}
		step.Findings = append(step.Findings, fmt.Sprintf("markets with no receipt in the last %d blocks (receipts.stats last_emitted_height): %s", NoEmissionBlocks, listOrNone(quiet)))
	}
	d.r.Symptoms = append(d.r.Symptoms, d.emissionFlat(), d.marketNotEmitting())
	d.r.Steps = append(d.r.Steps, step)
}

// marketNotEmitting decides each market from last_emitted_height against the
// tip (exact), or, where receipts.stats did not answer, from the
// ReceiptsMarketNotEmitting alert; never from a short metric delta.
func (d *diagnosis) marketNotEmitting() tbops.Symptom {
	sym := tbops.Symptom{ID: SymptomMarketNotEmitting, Summary: "one or more markets (storage, compute, energy, ad) not emitting",
		Threshold: tbops.Num(StallBlocks)}
	byRule, usedRule := d.rule(AlertMarketNotEmitting), false
	var unknown, why []string
	for _, mk := range d.markets {
		if mk.stats != nil {
			sym.Evidence = append(sym.Evidence, d.rpcEvidence(statsQuery(mk.m),
				map[string]any{"last_emitted_height": mk.stats.LastEmittedHeight, "emitted_total": mk.stats.EmittedTotal, "blocks_since": mk.blocksSince}))
		}
		if !mk.stalled.known {
			usedRule = true
			mk.stalled = marketNotEmittingByRule(byRule, mk.m)
			if isYes(mk.stalled) {
				mk.why = fmt.Sprintf("%s: %s fires", mk.m, AlertMarketNotEmitting)
			}
		}
		switch {
		case !mk.stalled.known:
			unknown = append(unknown, string(mk.m))
		case mk.stalled.yes:
			d.stalled = append(d.stalled, mk.m)
			why = append(why, mk.why)
		}
	}
	if d.status != nil {
		sym.Evidence = append(sym.Evidence, d.rpcEvidence("node.status", map[string]any{"current_block_height": d.status.CurrentBlockHeight}))
	}
	if usedRule && byRule.ok {
		sym.Evidence = append(sym.Evidence, byRule.state.Evidence...)
	}
	switch {
	case len(d.stalled) > 0:
		sym.Firing, sym.Status = true, tbops.StatusCritical
		sym.Value, sym.Detail = tbops.Num(len(d.stalled)), tbops.RawOf(marketNames(d.stalled))
		sym.Summary = "not emitting: " + strings.Join(why, "; ")
	case len(unknown) > 0:
		sym.Status = tbops.StatusUnknown
		d.warn("emission not decided for %s: receipts.stats with node.status did not answer and %s is undecided", strings.Join(unknown, ", "), AlertMarketNotEmitting)
		if byRule.ok {
			d.warnAll(byRule.state.Warnings)
		}
	default:
		sym.Status, sym.Value = tbops.StatusOK, tbops.Num(0)
	}
	return sym
}

// emissionFlat decides "receipt_emitted_total flat or decreasing for 5+
// blocks": from receipts.stats (every market 5+ blocks behind the tip, or one
// within 5 blocks while the chain makes blocks), from a stalled chain (no
// blocks, no receipts), else from increase(…[1m]) over a covered window.
func (d *diagnosis) emissionFlat() tbops.Symptom {
	sym := tbops.Symptom{ID: SymptomEmissionFlat, Summary: "receipt_emitted_total flat or decreasing for 5+ blocks",
		Threshold: tbops.Num(StallBlocks)}
	newest, all := int64(-1), len(d.markets) > 0
	for _, mk := range d.markets {
		if mk.blocksSince == nil {
			all = false
			continue
		}
		sym.Evidence = append(sym.Evidence, d.rpcEvidence(statsQuery(mk.m),
			map[string]any{"last_emitted_height": mk.stats.LastEmittedHeight, "blocks_since": *mk.blocksSince}))
		if newest < 0 || *mk.blocksSince < newest {
			newest = *mk.blocksSince
		}
	}
	flat := tri{}
	switch {
	case isYes(d.chain):
		flat = yes()
		sym.Detail = tbops.RawOf("no new blocks: receipts are emitted in blocks")
	case all && newest >= StallBlocks:
		flat = yes()
		sym.Value = tbops.Num(newest)
	case all && isNo(d.chain):
		// A recent receipt shows emission only while blocks are being made.
		flat = no()
		sym.Value = tbops.Num(newest)
	default:
		if ev, ok := d.eval(emissionIncreaseExpr()); ok {
			sym.Evidence = append(sym.Evidence, ev.Evidence)
			flat = anySeries(ev.Series, func(s promq.Series) tri { return atMost(s, 0) })
			if !flat.known {
				d.undecided(ev.Expr, ev)
			}
		}
	}
	switch {
	case !flat.known:
		sym.Status = tbops.StatusUnknown
		d.warn("receipt_emitted_total flatness not decided: receipts.stats did not answer for every market and %s is undecided", emissionIncreaseExpr())
	case flat.yes:
		sym.Firing, sym.Status = true, tbops.StatusCritical
	default:
		sym.Status = tbops.StatusOK
	}
	return sym
}

// stepValidation is runbook step 2 and the validation and min-payment symptoms.
func (d *diagnosis) stepValidation() {
	step := tbops.Step{ID: "validation-errors", Title: "Validation errors and min-payment rejections"}
	errsSel := promq.Select(MetricValidationErrors)
	if ev, ok := d.eval(promq.Rate(errsSel, ValidationWindow)); ok {
		step.Evidence = append(step.Evidence, ev.Evidence)
		step.Findings = append(step.Findings, "validation error rate (5m): "+reasonList(byLabel(ev.Series, "reason"), func(s *promq.Series) string { return showSeries(s, "/s") }))
	}
	if ev, ok := d.eval(promq.Metric(MetricValidationErrors)); ok {
		step.Evidence = append(step.Evidence, ev.Evidence)
		step.Findings = append(step.Findings, "validation errors so far: "+reasonList(byLabel(ev.Series, "reason"), func(s *promq.Series) string { return showSeries(s, "") }))
	}
	val := d.validationErrors(&step)
	if ev, ok := d.eval(promq.Metric(MetricMinPaymentRejected)); ok {
		step.Evidence = append(step.Evidence, ev.Evidence)
		step.Findings = append(step.Findings, "min-payment rejections so far: "+showSeries(first(ev.Series), ""))
	}
	mp := d.minPayment(&step)
	d.r.Symptoms = append(d.r.Symptoms, val, mp)
	d.r.Steps = append(d.r.Steps, step)
}

// validationErrors decides "receipt_validation_errors_total increasing" as
// the SLO reads it: validation success over 5m below 99.99 % (warning) or
// 99 % (critical), on a covered window. A trickle within the SLO is ok.
func (d *diagnosis) validationErrors(step *tbops.Step) tbops.Symptom {
	sym := tbops.Symptom{ID: SymptomValidationErrors, Summary: "receipt_validation_errors_total increasing",
		Threshold: tbops.Num(ValidationSuccessTarget)}
	ev, ok := d.eval(validationSuccessExpr())
	if !ok {
		sym.Status = tbops.StatusUnknown
		return sym
	}
	sym.Evidence = append(sym.Evidence, ev.Evidence)
	step.Evidence = append(step.Evidence, ev.Evidence)
	s := lowest(ev.Series)
	if v := exactValue(s); v != nil {
		sym.Value = v
		step.Findings = append(step.Findings, fmt.Sprintf("validation success (5m): %s (target > 99.99%%)", percent(*v)))
	}
	crit := anySeries(ev.Series, func(s promq.Series) tri { return below(s, ValidationSuccessAlert) })
	warn := anySeries(ev.Series, func(s promq.Series) tri { return below(s, ValidationSuccessTarget) })
	switch {
	case s != nil && s.Exact && s.Value != nil && math.IsNaN(*s.Value): // 0/0
		sym.Status = tbops.StatusOK
		step.Findings = append(step.Findings, "no receipts and no validation errors in the last 5m")
	case isYes(crit):
		sym.Firing, sym.Status = true, tbops.StatusCritical
		sym.Summary = "validation errors increasing: validation success " + showPercent(s) + ", below 99%"
	case isYes(warn):
		sym.Firing, sym.Status = true, tbops.StatusWarning
		sym.Summary = "validation errors increasing: validation success " + showPercent(s) + ", below the 99.99% target"
	case isNo(warn):
		sym.Status = tbops.StatusOK
	default:
		sym.Status = tbops.StatusUnknown
		d.undecided("validation success over 5m", ev)
	}
	return sym
}

// minPayment decides "min-payment rejections above near-zero": the 5m
// rejection rate above one a minute.
func (d *diagnosis) minPayment(step *tbops.Step) tbops.Symptom {
	sym := tbops.Symptom{ID: SymptomMinPayment, Summary: "receipts rejected below the 0.001 BLOCK payment floor",
		Threshold: tbops.Num(MinPaymentNearZeroPerSecond)}
	ev, ok := d.eval(minPaymentRateExpr())
	if !ok {
		sym.Status = tbops.StatusUnknown
		return sym
	}
	sym.Evidence = append(sym.Evidence, ev.Evidence)
	step.Evidence = append(step.Evidence, ev.Evidence)
	s := first(ev.Series)
	sym.Value = exactValue(s)
	step.Findings = append(step.Findings, "min-payment rejection rate (5m): "+showSeries(s, "/s"))
	switch v := anySeries(ev.Series, func(s promq.Series) tri { return above(s, MinPaymentNearZeroPerSecond) }); {
	case isYes(v):
		sym.Firing, sym.Status = true, tbops.StatusWarning
		sym.Summary = showSeries(s, " receipts/s") + " rejected below the 0.001 BLOCK floor (near-zero is at most one a minute)"
	case isNo(v):
		sym.Status = tbops.StatusOK
	default:
		sym.Status = tbops.StatusUnknown
		d.undecided("rate(receipt_min_payment_rejected_total[5m])", ev)
	}
	return sym
}

// stepMarketStats is runbook step 3: receipts.stats for each market.
func (d *diagnosis) stepMarketStats() {
	step := tbops.Step{ID: "market-stats", Title: "Per-market stats (receipts.stats)"}
	for _, mk := range d.markets {
		if mk.statsErr != nil {
			step.Evidence = append(step.Evidence, d.rpcEvidence(statsQuery(mk.m), mk.statsErr.Error()))
			step.Findings = append(step.Findings, fmt.Sprintf("%s: stats unavailable: %v", mk.m, mk.statsErr))
			continue
		}
		s := mk.stats
		step.Evidence = append(step.Evidence, d.rpcEvidence(statsQuery(mk.m), s))
		since := ""
		if mk.blocksSince != nil {
			since = fmt.Sprintf(" (%d blocks ago)", *mk.blocksSince)
		}
		ve := s.ValidationErrors
		step.Findings = append(step.Findings, fmt.Sprintf("%s: %d emitted, last at height %d%s, %s pending, validation errors: schema %s, duplicate %s, signature %s; %s below the payment floor",
			s.Market, s.EmittedTotal, s.LastEmittedHeight, since, show(s.Pending),
			show(ve.SchemaMismatch), show(ve.DuplicateDetection), show(ve.SignatureInvalid), show(s.MinPaymentRejectedTotal)))
	}
	step.Findings = append(step.Findings, "receipts.log is on the node host: grep <market> /var/log/node/receipts.log | tail -20")
	d.r.Steps = append(d.r.Steps, step)
}

// chainStalled decides whether the chain makes blocks: node.consensus_status
// (exact), or increase(block_height_total[1m]) over a covered window.
func (d *diagnosis) chainStalled() {
	byRPC := tri{}
	if cs := d.consensus; cs != nil {
		switch cs.Status {
		case "stalled":
			byRPC = yes()
		case "healthy", "degraded":
			byRPC = no()
		default:
			d.warn("node.consensus_status: unknown status %q", cs.Status)
		}
	}
	byMetric := tri{}
	if d.blocks, d.blocksOK = d.eval(blockIncreaseExpr()); d.blocksOK {
		byMetric = anySeries(d.blocks.Series, func(s promq.Series) tri { return atMost(s, 0) })
	}
	d.chain = byRPC.or(byMetric)
	if !d.chain.known && d.blocksOK {
		d.undecided(d.blocks.Expr, d.blocks)
	}
}

// stepBlocks is runbook step 4 (block height, progression, consensus) and the
// chain-stalled symptom.
func (d *diagnosis) stepBlocks() {
	step := tbops.Step{ID: "block-progression", Title: "Block height, progression and consensus"}
	sym := tbops.Symptom{ID: SymptomChainStalled, Summary: "no new blocks: receipts are emitted in blocks", Threshold: tbops.Num(0)}
	if st := d.status; st != nil {
		ev := d.rpcEvidence("node.status", st)
		step.Evidence = append(step.Evidence, ev)
		sym.Evidence = append(sym.Evidence, ev)
		step.Findings = append(step.Findings, fmt.Sprintf("current block %d (epoch %s, syncing %s, %s peers)", st.CurrentBlockHeight, show(st.Epoch), show(st.Syncing), show(st.Peers)))
	}
	if ev, ok := d.eval(promq.Increase(promq.Select(MetricBlockHeight), BlockProgressWindow)); ok {
		step.Evidence = append(step.Evidence, ev.Evidence)
		step.Findings = append(step.Findings, "increase(block_height_total[50m]) = "+showSeries(first(ev.Series), " blocks")+" (the runbook's \"last 50 blocks\" query spans 50 minutes: about 3000 blocks at 1 block/s)")
	}
	var why []string
	if ev := d.blocks; d.blocksOK {
		s := first(ev.Series)
		step.Evidence = append(step.Evidence, ev.Evidence)
		sym.Evidence = append(sym.Evidence, ev.Evidence)
		sym.Value = exactValue(s)
		step.Findings = append(step.Findings, "increase(block_height_total[1m]) = "+showSeries(s, " blocks"))
		if isYes(anySeries(ev.Series, func(s promq.Series) tri { return atMost(s, 0) })) {
			why = append(why, "block_height_total has not moved in 1m")
		}
	}
	if cs := d.consensus; cs != nil {
		ev := d.rpcEvidence("node.consensus_status", cs)
		step.Evidence = append(step.Evidence, ev)
		sym.Evidence = append(sym.Evidence, ev)
		sym.Detail = tbops.RawOf(cs.Status)
		step.Findings = append(step.Findings, fmt.Sprintf("consensus %s: round %s, finalized height %s, %s/%s validators online",
			cs.Status, show(cs.Round), show(cs.LastFinalizedHeight), show(cs.ValidatorsOnline), show(cs.ValidatorsTotal)))
		if cs.Status == "stalled" {
			why = append(why, fmt.Sprintf("consensus stalled with %s/%s validators online", show(cs.ValidatorsOnline), show(cs.ValidatorsTotal)))
		}
	}
	switch {
	case !d.chain.known:
		sym.Status = tbops.StatusUnknown
		d.warn("chain progress not decided: node.consensus_status did not answer and increase(block_height_total[1m]) is undecided")
	case d.chain.yes:
		sym.Firing, sym.Status = true, tbops.StatusCritical
		sym.Summary = "no new blocks (" + strings.Join(why, "; ") + "): receipts are emitted in blocks"
	default:
		sym.Status = tbops.StatusOK
	}
	d.r.Symptoms = append(d.r.Symptoms, sym)
	d.r.Steps = append(d.r.Steps, step)
}

// stepRoundTrips shows tbops's own RPC round trips for what they are: an
// observation of the link and of tbops, never the node's query latency.
func (d *diagnosis) stepRoundTrips() {
	if len(d.rtt) == 0 {
		return
	}
	l := append([]time.Duration(nil), d.rtt...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	p99 := l[max(0, (99*len(l)+99)/100-1)] // nearest rank: ceil(0.99·n)
	med := l[(len(l)-1)/2]
	d.r.Steps = append(d.r.Steps, tbops.Step{ID: "rpc-round-trips", Title: "tbops's RPC round trips to the node",
		Findings: []string{fmt.Sprintf("tbops's RPC round trips to the node: p99 %s, median %s over %d calls (the link and tbops itself, not the node's query latency, which only %s shows)",
			p99.Round(time.Microsecond), med.Round(time.Microsecond), len(l), MetricQueryDuration)},
		Evidence: []tbops.Evidence{d.rpcEvidence("round trips of this diagnosis' RPC calls (measured by tbops)",
			map[string]any{"calls": len(l), "p99_seconds": p99.Seconds(), "median_seconds": med.Seconds()})}})
}

// paths picks the resolution paths.
func (d *diagnosis) paths() {
	chainStalled := isYes(d.chain)

	a := tbops.Path{ID: PathStalledMarket, Title: "Stalled markets"}
	switch {
	case len(d.stalled) > 0 && chainStalled:
		a.Why = "markets are not emitting, but the chain is stalled: no blocks, no receipts (see path C)"
	case len(d.stalled) > 0:
		a.Matched = true
		a.Why = "not emitting while the chain makes blocks: " + strings.Join(marketNames(d.stalled), ", ")
	default:
		a.Why = "no market is known to have stopped emitting"
	}
	a.Actions = append(a.Actions, tbops.Action{Kind: "restart", Target: "receipt-emitter", Command: "sudo systemctl restart receipt-emitter",
		Note: "on the node host (tbops cannot restart services)", DryRun: true})
	for _, m := range d.stalled {
		a.Actions = append(a.Actions, tbops.Action{Kind: "wait", Target: string(m), Command: fmt.Sprintf("watch -n 5 'tbops receipts stats --market %s'", m),
			Note: "last_emitted_height should follow the current block again", DryRun: true})
	}
	for _, m := range d.stalled {
		a.Actions = append(a.Actions, tbops.Action{Kind: "check", Target: string(m) + "-market", Command: fmt.Sprintf("sudo systemctl status %s-market", m),
			Note: "if the market stays stalled after the emitter restart", DryRun: true})
	}

	b := tbops.Path{ID: PathValidationErrors, Title: "Validation errors", Why: "validation errors not known to break the SLO"}
	if s, ok := d.r.Symptom(SymptomValidationErrors); ok && s.Firing {
		b.Matched, b.Why = true, s.Summary
	}
	from := "<current height − 100>"
	if d.status != nil {
		from = fmt.Sprint(max(d.status.CurrentBlockHeight-d.opts.RevalidateBlocks, 0))
	}
	b.Actions = []tbops.Action{
		{Kind: actionReset, Target: "validation-state", Command: "contract-cli receipts reset-validation-state",
			Note: "clear the node's validation state (if safe: it forgets duplicate-detection history); Apply does this", DryRun: true},
		{Kind: actionRevalidate, Target: fmt.Sprintf("last %d blocks", d.opts.RevalidateBlocks), Command: "tbops receipts validate --from-block " + from,
			Note: "re-validate the last blocks after the reset; Apply does this too", DryRun: true},
		{Kind: "wait", Target: MetricValidationErrors, Command: "watch -n 10 'tbops query receipt_validation_errors_total'",
			Note: "the counters should stop growing", DryRun: true},
	}

	c := tbops.Path{ID: PathStalledChain, Title: "Stalled chain", Why: "the chain is not known to be stalled"}
	if s, ok := d.r.Symptom(SymptomChainStalled); ok && s.Firing {
		c.Matched, c.Why = true, s.Summary
	}
	c.Actions = []tbops.Action{
		{Kind: "check", Target: "consensus", Command: "contract-cli node consensus --status",
			Note: "see which validators are offline; receipts resume with blocks, restarting the emitter will not help", DryRun: true},
		{Kind: "escalate", Target: "validators", Note: "bring validators back online until consensus is healthy", DryRun: true},
	}

	dp := tbops.Path{ID: PathMinPayment, Title: "Min-payment rejections", Why: "min-payment rejections not known to be above near-zero"}
	if s, ok := d.r.Symptom(SymptomMinPayment); ok && s.Firing {
		dp.Matched, dp.Why = true, s.Summary
	}
	worst, worstN := "<market>", int64(-1)
	for _, mk := range d.markets {
		if mk.stats != nil && mk.stats.MinPaymentRejectedTotal != nil && *mk.stats.MinPaymentRejectedTotal > worstN {
			worst, worstN = string(mk.m), *mk.stats.MinPaymentRejectedTotal
		}
	}
	dp.Actions = []tbops.Action{{Kind: "check", Target: worst, Command: "tbops receipts stats --market " + worst,
		Note: "find which market (and then which provider) pays below the 0.001 BLOCK floor; the runbook has no remedy beyond this", DryRun: true}}

	d.r.Paths = append(d.r.Paths, a, b, c, dp)
}

// Action kinds Apply carries out.
const (
	actionReset      = "reset"
	actionRevalidate = "revalidate"
)

func marketNames(ms []Market) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m)
	}
	return out
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// reasonList shows a value for each of the three validation-error reasons.
func reasonList(by map[string]*promq.Series, show func(*promq.Series) string) string {
	parts := make([]string, 0, 3)
	for _, r := range []Reason{ReasonSchemaMismatch, ReasonDuplicate, ReasonSignatureInvalid} {
		parts = append(parts, string(r)+" "+show(by[string(r)]))
	}
	return strings.Join(parts, ", ")
}

func percent(v float64) string { return fmt.Sprintf("%.4g%%", v*100) }

// roundDur prints a duration as PromQL does: 5m, 1h5m, 1s.
func roundDur(d time.Duration) string { return model.Duration(d.Round(time.Second)).String() }

// show prints an optional RPC field, "?" when the node did not send it.
func show[T any](p *T) string {
	if p == nil {
		return "?"
	}
	return fmt.Sprint(*p)
}
