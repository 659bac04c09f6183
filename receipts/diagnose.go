package receipts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// RunbookID is the id of the Receipts Flatlining runbook.
const RunbookID = "receipts-flatlining"

// Thresholds of the runbook and its SLO table, exported for the alert-rules
// generator and for callers who evaluate them themselves.
const (
	// StallBlocks: a market (or the whole stream) is not emitting after this many
	// blocks without a receipt ("flat for 5+ blocks", "any market = 0 for 5 blocks").
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
	// FlatWindow is the default window of the "not emitting" and "chain stalled"
	// metric checks: increase(…[1m]) == 0. One minute holds at least two
	// samples at the usual 15–30 s scrape intervals; the block-exact 5-block
	// check comes from receipts.stats (see the package documentation).
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

// Options configures Diagnose and Apply. The zero value is usable.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Markets to check (default all four).
	Markets []Market
	// FlatWindow is the window of the metric "not emitting" checks (default
	// FlatWindow; at least StallBlocks seconds).
	FlatWindow time.Duration
	// ExplorerURL, when set, is fetched (GET) for the explorer check: it must
	// answer JSON with an integer "latest_receipt_height". Empty: not checked.
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

func (o *Options) defaults() error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Markets) == 0 {
		o.Markets = Markets()
	}
	for _, m := range o.Markets {
		if _, err := ParseMarket(string(m)); err != nil {
			return fmt.Errorf("receipts: Options.Markets: %w", err)
		}
	}
	if o.FlatWindow == 0 {
		o.FlatWindow = FlatWindow
	}
	if o.FlatWindow < StallBlocks*time.Second {
		return fmt.Errorf("receipts: Options.FlatWindow %s: want at least %d s (%d blocks)", o.FlatWindow, StallBlocks, StallBlocks)
	}
	if o.ExplorerMaxLag == 0 {
		o.ExplorerMaxLag = ExplorerMaxLagBlocks
	}
	if o.ExplorerMaxLag < 0 {
		return fmt.Errorf("receipts: Options.ExplorerMaxLag %d: want a positive number of blocks", o.ExplorerMaxLag)
	}
	if o.ExplorerURL != "" && !strings.HasPrefix(o.ExplorerURL, "http://") && !strings.HasPrefix(o.ExplorerURL, "https://") {
		return fmt.Errorf("receipts: Options.ExplorerURL %q: want an http(s) URL", o.ExplorerURL)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if o.RevalidateBlocks == 0 {
		o.RevalidateBlocks = RevalidateBlocks
	}
	if o.RevalidateBlocks < 0 {
		return fmt.Errorf("receipts: Options.RevalidateBlocks %d: want a positive number of blocks", o.RevalidateBlocks)
	}
	return nil
}

// tri is a three-valued verdict: known and true/false, or unknown.
type tri struct{ known, yes bool }

func yes() tri { return tri{true, true} }
func no() tri  { return tri{true, false} }
func (t tri) or(u tri) tri { // true if either is; false if one is known false and none true
	switch {
	case t.known && t.yes, u.known && u.yes:
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
	// blocksSince is current height − last_emitted_height (RPC).
	blocksSince int64
	rpc         tri // stalled by RPC (≥ StallBlocks blocks without a receipt)
	metric      tri // stalled by metrics (increase over FlatWindow == 0, or no series)
	noSeries    bool
	flatInc     float64
	stalled     tri
}

type diagnosis struct {
	ctx  context.Context
	c    *Client
	src  promq.Source
	opts Options
	r    tbops.Report
	seen map[string]bool // warnings already given

	status    *NodeStatus
	statusErr error
	consensus *ConsensusStatus
	markets   []*market

	chain     tri
	chainWhy  []string
	chainEv   []tbops.Evidence
	emRate5   *float64
	errRate5  *float64
	success5  *float64
	mpRate5   *float64
	stalled   []Market
	latencyEv *tbops.Evidence
}

func (d *diagnosis) now() time.Time { return d.opts.Now().UTC() }

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

// metric runs one metrics question; ok is false (with a warning) when there is
// no source or it failed.
func (d *diagnosis) metric(what string, f func(promq.Source) (promq.Result, error)) (promq.Result, bool) {
	if d.src == nil {
		d.warn("no metrics source: %s not checked", what)
		return promq.Result{}, false
	}
	res, err := f(d.src)
	if err != nil {
		d.warn("%s: %v", what, err)
		return promq.Result{}, false
	}
	d.warnAll(res.Warnings)
	return res, true
}

func (d *diagnosis) rpcEvidence(query string, v any) tbops.Evidence {
	return tbops.Evidence{Source: tbops.SourceRPC, Query: query, Value: tbops.RawOf(v), At: d.now()}
}

// rpcWarn says what an RPC failure means for the diagnosis.
func (d *diagnosis) rpcWarn(method string, err error, consequence string) {
	if errors.Is(err, ErrMethodNotFound) {
		d.warn("the node does not serve %s (-32601): %s; check the node version", method, consequence)
		return
	}
	d.warn("%s failed: %v; %s", method, err, consequence)
}

// Diagnose runs the Receipts Flatlining runbook against a node (c) and a metrics
// source (src, may be nil). It only reads; Apply carries out the actions that
// change the node. It returns an error only for invalid options or a cancelled ctx.
func Diagnose(ctx context.Context, c *Client, src promq.Source, opts Options) (tbops.Report, error) {
	if err := opts.defaults(); err != nil {
		return tbops.Report{}, err
	}
	if c == nil {
		return tbops.Report{}, errors.New("receipts: Diagnose needs a client")
	}
	d := &diagnosis{ctx: ctx, c: c, src: src, opts: opts, seen: map[string]bool{}}
	d.r = tbops.NewReport(RunbookID, c.URL(), opts.Now())
	d.r.Target = c.URL()

	d.gatherNode()
	d.gatherMarkets()
	if err := ctx.Err(); err != nil {
		return d.r, err
	}
	d.stepEmission()
	d.stepValidation()
	d.stepMarketStats()
	d.stepBlocks()
	d.stepExplorer()
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

func (d *diagnosis) gatherNode() {
	st, err := d.c.NodeStatus(d.ctx)
	if err != nil {
		d.statusErr = err
		d.rpcWarn("node.status", err, "blocks since each market's last receipt unknown")
	} else {
		d.status = &st
	}
	cs, err := d.c.ConsensusStatus(d.ctx)
	if err != nil {
		d.rpcWarn("node.consensus_status", err, "consensus not checked")
	} else {
		d.consensus = &cs
	}
}

func (d *diagnosis) gatherMarkets() {
	for _, m := range d.opts.Markets {
		mk := &market{m: m}
		d.markets = append(d.markets, mk)
		s, err := d.c.Stats(d.ctx, m)
		if err != nil {
			mk.statsErr = err
			if errors.Is(err, ErrMethodNotFound) {
				d.rpcWarn("receipts.stats", err, "per-market stats unavailable")
			} else {
				d.rpcWarn(fmt.Sprintf("receipts.stats {\"market\":%q}", m), err, "stats unavailable for this market")
			}
			continue
		}
		mk.stats = &s
		if d.status == nil {
			continue
		}
		mk.blocksSince = d.status.CurrentBlockHeight - s.LastEmittedHeight
		if mk.blocksSince < 0 {
			// Answers taken a moment apart, or a node whose stats run ahead of its
			// status: say so rather than report a negative age.
			d.warn("receipts.stats for %s says last_emitted_height %d, above node.status current_block_height %d", m, s.LastEmittedHeight, d.status.CurrentBlockHeight)
			mk.blocksSince = 0
		}
		never := s.EmittedTotal == 0 && s.LastEmittedHeight == 0
		mk.rpc = tri{true, never || mk.blocksSince >= StallBlocks}
	}
}

// stepEmission is runbook step 1 and the two emission symptoms.
func (d *diagnosis) stepEmission() {
	step := tbops.Step{ID: "emission-rate", Title: "Emission rate by market"}
	emitted := promq.Select(MetricEmitted)

	inst, instOK := d.metric("receipt_emitted_total", func(s promq.Source) (promq.Result, error) { return s.Instant(d.ctx, emitted) })
	present := map[string]bool{}
	if instOK {
		for k := range inst.ByLabel("market") {
			present[k] = true
		}
	}
	flat, flatOK := d.metric("increase(receipt_emitted_total)", func(s promq.Source) (promq.Result, error) {
		return s.Increase(d.ctx, emitted, d.opts.FlatWindow)
	})
	flatBy := flat.ByLabel("market")
	rate, rateOK := d.metric("rate(receipt_emitted_total[1m])", func(s promq.Source) (promq.Result, error) {
		return s.Rate(d.ctx, emitted, EmissionRateWindow)
	})
	inc10, inc10OK := d.metric("increase(receipt_emitted_total[10m])", func(s promq.Source) (promq.Result, error) {
		return s.Increase(d.ctx, emitted, NoEmissionWindow)
	})
	for _, res := range []struct {
		r  promq.Result
		ok bool
	}{{rate, rateOK}, {inc10, inc10OK}, {flat, flatOK}} {
		if res.ok {
			step.Evidence = append(step.Evidence, res.r.Evidence)
		}
	}
	if rateOK && len(rate.Vector) > 0 {
		by := rate.ByLabel("market")
		var parts []string
		for _, mk := range d.markets {
			if v, ok := by[string(mk.m)]; ok {
				parts = append(parts, fmt.Sprintf("%s %.3g/s", mk.m, v))
			} else {
				parts = append(parts, fmt.Sprintf("%s no data", mk.m))
			}
		}
		step.Findings = append(step.Findings, "emission rate (1m): "+strings.Join(parts, ", "))
	}
	if inc10OK && len(inc10.Vector) > 0 {
		by := inc10.ByLabel("market")
		var none []string
		for _, mk := range d.markets {
			if v, ok := by[string(mk.m)]; ok && v == 0 {
				none = append(none, string(mk.m))
			}
		}
		step.Findings = append(step.Findings, "markets with increase(receipt_emitted_total[10m]) == 0 (the runbook's \"last 10 blocks\" query): "+listOrNone(none))
	}
	var rpcNone []string
	for _, mk := range d.markets {
		if mk.stats != nil && d.status != nil && mk.blocksSince >= NoEmissionBlocks {
			rpcNone = append(rpcNone, fmt.Sprintf("%s (%d blocks)", mk.m, mk.blocksSince))
		}
	}
	if d.status != nil {
		step.Findings = append(step.Findings, fmt.Sprintf("markets with no receipt in the last %d blocks (receipts.stats last_emitted_height): %s", NoEmissionBlocks, listOrNone(rpcNone)))
	}

	// Per-market verdicts.
	for _, mk := range d.markets {
		switch {
		case !flatOK && !instOK:
		case instOK && len(present) > 0 && !present[string(mk.m)]:
			mk.noSeries = true
			mk.metric = yes()
			d.warn("receipt_emitted_total has no series for market %q while other markets have some: counted as not emitting", mk.m)
		default:
			if v, ok := flatBy[string(mk.m)]; ok && flatOK {
				mk.flatInc = v
				mk.metric = tri{true, v <= 0}
			}
		}
		mk.stalled = mk.rpc.or(mk.metric)
	}

	// Symptom: one or more markets not emitting.
	sym := tbops.Symptom{ID: SymptomMarketNotEmitting, Summary: "one or more markets (storage, compute, energy, ad) not emitting",
		Threshold: tbops.Num(StallBlocks)}
	known, unknown := 0, []string{}
	var why []string
	for _, mk := range d.markets {
		if mk.stats != nil {
			sym.Evidence = append(sym.Evidence, d.rpcEvidence(fmt.Sprintf("receipts.stats {\"market\":%q}", mk.m),
				map[string]any{"last_emitted_height": mk.stats.LastEmittedHeight, "emitted_total": mk.stats.EmittedTotal, "blocks_since": mk.blocksSince}))
		}
		switch {
		case !mk.stalled.known:
			unknown = append(unknown, string(mk.m))
		case mk.stalled.yes:
			known++
			d.stalled = append(d.stalled, mk.m)
			why = append(why, mk.describe(d.opts.FlatWindow))
		default:
			known++
		}
	}
	if flatOK {
		sym.Evidence = append(sym.Evidence, flat.Evidence)
	}
	if d.status != nil {
		sym.Evidence = append(sym.Evidence, d.rpcEvidence("node.status", map[string]any{"current_block_height": d.status.CurrentBlockHeight}))
	}
	switch {
	case len(d.stalled) > 0:
		sym.Firing, sym.Status = true, tbops.StatusCritical
		sym.Value, sym.Detail = tbops.Num(len(d.stalled)), tbops.RawOf(marketNames(d.stalled))
		sym.Summary = "not emitting: " + strings.Join(why, "; ")
	case len(unknown) > 0:
		sym.Status = tbops.StatusUnknown
		d.warn("emission not decided for %s: neither receipts.stats with node.status nor receipt_emitted_total answered", strings.Join(unknown, ", "))
	default:
		sym.Status, sym.Value = tbops.StatusOK, tbops.Num(0)
	}

	// Symptom: receipt_emitted_total flat or decreasing for 5+ blocks.
	flatSym := tbops.Symptom{ID: SymptomEmissionFlat, Summary: "receipt_emitted_total flat or decreasing for 5+ blocks",
		Threshold: tbops.Num(StallBlocks)}
	metricFlat := tri{}
	if flatOK && len(flat.Vector) > 0 {
		total, _ := flat.Sum()
		metricFlat = tri{true, total <= 0}
		flatSym.Value = tbops.Num(total)
		flatSym.Evidence = append(flatSym.Evidence, flat.Evidence)
	}
	rpcFlat := tri{}
	allRPC, anyEmitting := true, false
	for _, mk := range d.markets {
		if !mk.rpc.known {
			allRPC = false
			continue
		}
		if !mk.rpc.yes {
			anyEmitting = true
		}
	}
	if allRPC && len(d.markets) > 0 {
		// A recent last_emitted_height only shows emission while blocks are being
		// made; it says nothing when the chain may be stalled.
		if !anyEmitting {
			rpcFlat = yes()
		} else if d.consensus != nil && d.consensus.Status != "stalled" {
			rpcFlat = no()
		}
		for _, mk := range d.markets {
			flatSym.Evidence = append(flatSym.Evidence, d.rpcEvidence(fmt.Sprintf("receipts.stats {\"market\":%q}", mk.m),
				map[string]any{"last_emitted_height": mk.stats.LastEmittedHeight, "blocks_since": mk.blocksSince}))
		}
	}
	v := metricFlat.or(rpcFlat)
	switch {
	case !v.known:
		flatSym.Status = tbops.StatusUnknown
		d.warn("receipt_emitted_total flatness not decided: no metric data and no receipts.stats for every market")
	case v.yes:
		flatSym.Firing, flatSym.Status = true, tbops.StatusCritical
		if flatSym.Value == nil {
			flatSym.Value = tbops.Num(0)
		}
	default:
		flatSym.Status = tbops.StatusOK
	}
	d.r.Symptoms = append(d.r.Symptoms, flatSym, sym)
	d.r.Steps = append(d.r.Steps, step)
}

func (mk *market) describe(window time.Duration) string {
	switch {
	case mk.rpc.known && mk.rpc.yes && mk.stats != nil && mk.stats.EmittedTotal == 0 && mk.stats.LastEmittedHeight == 0:
		return fmt.Sprintf("%s has never emitted", mk.m)
	case mk.rpc.known && mk.rpc.yes:
		return fmt.Sprintf("%s: no receipt for %d blocks (last at height %d)", mk.m, mk.blocksSince, mk.stats.LastEmittedHeight)
	case mk.noSeries:
		return fmt.Sprintf("%s: no receipt_emitted_total series", mk.m)
	}
	return fmt.Sprintf("%s: increase(receipt_emitted_total[%s]) == 0", mk.m, promDuration(window))
}

// stepValidation is runbook step 2: validation errors and min-payment rejections.
func (d *diagnosis) stepValidation() {
	step := tbops.Step{ID: "validation-errors", Title: "Validation errors and min-payment rejections"}
	errsSel := promq.Select(MetricValidationErrors)
	errRate, errOK := d.metric("rate(receipt_validation_errors_total[5m])", func(s promq.Source) (promq.Result, error) {
		return s.Rate(d.ctx, errsSel, ValidationWindow)
	})
	emRate, emOK := d.metric("rate(receipt_emitted_total[5m])", func(s promq.Source) (promq.Result, error) {
		return s.Rate(d.ctx, promq.Select(MetricEmitted), ValidationWindow)
	})
	inst, instOK := d.metric("receipt_validation_errors_total", func(s promq.Source) (promq.Result, error) { return s.Instant(d.ctx, errsSel) })
	for _, res := range []struct {
		r  promq.Result
		ok bool
	}{{errRate, errOK}, {inst, instOK}} {
		if res.ok {
			step.Evidence = append(step.Evidence, res.r.Evidence)
		}
	}
	if v, ok := errRate.Sum(); errOK && ok {
		d.errRate5 = &v
		by := errRate.ByLabel("reason")
		step.Findings = append(step.Findings, fmt.Sprintf("validation error rate (5m): %.4g/s (%s)", v, reasonList(by, "%.3g/s")))
	}
	if v, ok := emRate.Sum(); emOK && ok {
		d.emRate5 = &v
	}
	if instOK && len(inst.Vector) > 0 {
		step.Findings = append(step.Findings, "validation errors so far: "+reasonList(inst.ByLabel("reason"), "%.0f"))
	}
	if d.errRate5 != nil && d.emRate5 != nil {
		if total := *d.emRate5 + *d.errRate5; total > 0 {
			s := *d.emRate5 / total
			d.success5 = &s
			step.Findings = append(step.Findings, fmt.Sprintf("validation success (5m): %s (target > 99.99%%)", percent(s)))
		}
	}

	sym := tbops.Symptom{ID: SymptomValidationErrors, Summary: "receipt_validation_errors_total increasing",
		Threshold: tbops.Num(ValidationSuccessTarget)}
	if errOK {
		sym.Evidence = append(sym.Evidence, errRate.Evidence)
	}
	if emOK {
		sym.Evidence = append(sym.Evidence, emRate.Evidence)
	}
	switch {
	case d.errRate5 == nil:
		sym.Status = tbops.StatusUnknown
		d.warn("validation errors not checked: no data for rate(receipt_validation_errors_total[5m])")
	case *d.errRate5 <= 0:
		sym.Status, sym.Value = tbops.StatusOK, tbops.Num(0.0)
	case d.success5 == nil:
		sym.Firing, sym.Status, sym.Value = true, tbops.StatusWarning, tbops.Num(*d.errRate5)
		sym.Summary = fmt.Sprintf("validation errors increasing at %.3g/s (success ratio unknown: no emission rate)", *d.errRate5)
	case *d.success5 < ValidationSuccessAlert:
		sym.Firing, sym.Status, sym.Value = true, tbops.StatusCritical, tbops.Num(*d.errRate5)
		sym.Summary = fmt.Sprintf("validation errors increasing at %.3g/s: validation success %s, below %s", *d.errRate5, percent(*d.success5), percent(ValidationSuccessAlert))
	case *d.success5 < ValidationSuccessTarget:
		sym.Firing, sym.Status, sym.Value = true, tbops.StatusWarning, tbops.Num(*d.errRate5)
		sym.Summary = fmt.Sprintf("validation errors increasing at %.3g/s: validation success %s, below the %s target", *d.errRate5, percent(*d.success5), percent(ValidationSuccessTarget))
	default:
		sym.Status, sym.Value = tbops.StatusOK, tbops.Num(*d.errRate5)
		step.Findings = append(step.Findings, fmt.Sprintf("a trickle of validation errors (%.3g/s) within the SLO", *d.errRate5))
	}
	d.r.Symptoms = append(d.r.Symptoms, sym)

	// Min-payment rejections (0.001 BLOCK floor).
	mpSel := promq.Select(MetricMinPaymentRejected)
	mpInst, mpInstOK := d.metric("receipt_min_payment_rejected_total", func(s promq.Source) (promq.Result, error) { return s.Instant(d.ctx, mpSel) })
	mpRate, mpOK := d.metric("rate(receipt_min_payment_rejected_total[5m])", func(s promq.Source) (promq.Result, error) {
		return s.Rate(d.ctx, mpSel, ValidationWindow)
	})
	mp := tbops.Symptom{ID: SymptomMinPayment, Summary: "receipts rejected below the 0.001 BLOCK payment floor",
		Threshold: tbops.Num(MinPaymentNearZeroPerSecond)}
	if mpInstOK && len(mpInst.Vector) > 0 {
		v, _ := mpInst.Sum()
		step.Findings = append(step.Findings, fmt.Sprintf("min-payment rejections so far: %.0f", v))
		step.Evidence = append(step.Evidence, mpInst.Evidence)
	}
	if mpOK {
		mp.Evidence = append(mp.Evidence, mpRate.Evidence)
		step.Evidence = append(step.Evidence, mpRate.Evidence)
	}
	if v, ok := mpRate.Sum(); mpOK && ok {
		d.mpRate5 = &v
		step.Findings = append(step.Findings, fmt.Sprintf("min-payment rejection rate (5m): %.3g/s", v))
		mp.Value = tbops.Num(v)
		if v > MinPaymentNearZeroPerSecond {
			mp.Firing, mp.Status = true, tbops.StatusWarning
			mp.Summary = fmt.Sprintf("%.3g receipts/s rejected below the 0.001 BLOCK floor (near-zero is at most one a minute)", v)
		} else {
			mp.Status = tbops.StatusOK
		}
	} else {
		mp.Status = tbops.StatusUnknown
		d.warn("min-payment rejections not checked: no data for rate(receipt_min_payment_rejected_total[5m])")
	}
	d.r.Symptoms = append(d.r.Symptoms, mp)
	d.r.Steps = append(d.r.Steps, step)
}

// stepMarketStats is runbook step 3: receipts.stats for each market.
func (d *diagnosis) stepMarketStats() {
	step := tbops.Step{ID: "market-stats", Title: "Per-market stats (receipts.stats)"}
	for _, mk := range d.markets {
		q := fmt.Sprintf("receipts.stats {\"market\":%q}", mk.m)
		if mk.statsErr != nil {
			step.Evidence = append(step.Evidence, d.rpcEvidence(q, mk.statsErr.Error()))
			step.Findings = append(step.Findings, fmt.Sprintf("%s: stats unavailable: %v", mk.m, mk.statsErr))
			continue
		}
		s := mk.stats
		step.Evidence = append(step.Evidence, d.rpcEvidence(q, s))
		since := ""
		if d.status != nil {
			since = fmt.Sprintf(" (%d blocks ago)", mk.blocksSince)
		}
		step.Findings = append(step.Findings, fmt.Sprintf("%s: %d emitted, last at height %d%s, %d pending, validation errors %d (schema %d, duplicate %d, signature %d), %d below the payment floor",
			s.Market, s.EmittedTotal, s.LastEmittedHeight, since, s.Pending, s.ValidationErrorTotal(),
			s.ValidationErrors.SchemaMismatch, s.ValidationErrors.DuplicateDetection, s.ValidationErrors.SignatureInvalid, s.MinPaymentRejectedTotal))
	}
	step.Findings = append(step.Findings, "receipts.log is on the node host: grep <market> /var/log/node/receipts.log | tail -20")
	d.r.Steps = append(d.r.Steps, step)
}

// stepBlocks is runbook step 4: block height, progression and consensus.
func (d *diagnosis) stepBlocks() {
	step := tbops.Step{ID: "block-progression", Title: "Block height, progression and consensus"}
	sym := tbops.Symptom{ID: SymptomChainStalled, Summary: "no new blocks: receipts are emitted in blocks",
		Threshold: tbops.Num(0)}
	if d.status != nil {
		ev := d.rpcEvidence("node.status", d.status)
		step.Evidence = append(step.Evidence, ev)
		sym.Evidence = append(sym.Evidence, ev)
		step.Findings = append(step.Findings, fmt.Sprintf("current block %d (epoch %d, syncing %t, %d peers)", d.status.CurrentBlockHeight, d.status.Epoch, d.status.Syncing, d.status.Peers))
	}
	hSel := promq.Select(MetricBlockHeight)
	incFlat, flatOK := d.metric("increase(block_height_total)", func(s promq.Source) (promq.Result, error) {
		return s.Increase(d.ctx, hSel, d.opts.FlatWindow)
	})
	inc50, inc50OK := d.metric("increase(block_height_total[50m])", func(s promq.Source) (promq.Result, error) {
		return s.Increase(d.ctx, hSel, BlockProgressWindow)
	})
	if v, ok := inc50.Sum(); inc50OK && ok {
		step.Evidence = append(step.Evidence, inc50.Evidence)
		step.Findings = append(step.Findings, fmt.Sprintf("increase(block_height_total[50m]) = %.0f blocks (the runbook's \"last 50 blocks\" query spans 50 minutes: about 3000 blocks at 1 block/s)", v))
	}
	metricStalled := tri{}
	if v, ok := incFlat.Sum(); flatOK && ok {
		metricStalled = tri{true, v <= 0}
		step.Evidence = append(step.Evidence, incFlat.Evidence)
		sym.Evidence = append(sym.Evidence, incFlat.Evidence)
		step.Findings = append(step.Findings, fmt.Sprintf("increase(block_height_total[%s]) = %.0f", promDuration(d.opts.FlatWindow), v))
		if v <= 0 {
			d.chainWhy = append(d.chainWhy, fmt.Sprintf("block_height_total has not moved in %s", promDuration(d.opts.FlatWindow)))
		}
	}
	rpcStalled := tri{}
	if cs := d.consensus; cs != nil {
		ev := d.rpcEvidence("node.consensus_status", cs)
		step.Evidence = append(step.Evidence, ev)
		sym.Evidence = append(sym.Evidence, ev)
		step.Findings = append(step.Findings, fmt.Sprintf("consensus %s: round %d, finalized height %d, %d/%d validators online", cs.Status, cs.Round, cs.LastFinalizedHeight, cs.ValidatorsOnline, cs.ValidatorsTotal))
		switch cs.Status {
		case "stalled":
			rpcStalled = yes()
			d.chainWhy = append(d.chainWhy, fmt.Sprintf("consensus stalled with %d/%d validators online", cs.ValidatorsOnline, cs.ValidatorsTotal))
		case "healthy", "degraded":
			rpcStalled = no()
		default:
			d.warn("node.consensus_status: unknown status %q", cs.Status)
		}
	}
	d.chain = rpcStalled.or(metricStalled)
	d.chainEv = sym.Evidence
	switch {
	case !d.chain.known:
		sym.Status = tbops.StatusUnknown
		d.warn("chain progress not decided: neither node.consensus_status nor block_height_total answered")
	case d.chain.yes:
		sym.Firing, sym.Status = true, tbops.StatusCritical
		sym.Summary = "no new blocks (" + strings.Join(d.chainWhy, "; ") + "): receipts are emitted in blocks"
		if d.status != nil {
			sym.Value = tbops.Num(d.status.CurrentBlockHeight)
		} else {
			sym.Detail = tbops.RawOf("stalled")
		}
	default:
		sym.Status = tbops.StatusOK
		if d.status != nil {
			sym.Value = tbops.Num(d.status.CurrentBlockHeight)
		}
	}
	d.r.Symptoms = append(d.r.Symptoms, sym)
	d.r.Steps = append(d.r.Steps, step)
}

// explorerAnswer is the minimal explorer check's expected JSON.
type explorerAnswer struct {
	LatestReceiptHeight *int64 `json:"latest_receipt_height"`
}

// stepExplorer checks "explorer receipt tables not updating" when an explorer
// URL is given; otherwise the symptom is unknown (not checked): no explorer is
// part of the node, and what was not checked is never reported ok.
func (d *diagnosis) stepExplorer() {
	sym := tbops.Symptom{ID: SymptomExplorerStale, Summary: "explorer receipt tables not updating",
		Threshold: tbops.Num(d.opts.ExplorerMaxLag)}
	step := tbops.Step{ID: "explorer", Title: "Explorer receipt tables"}
	if d.opts.ExplorerURL == "" {
		sym.Status = tbops.StatusUnknown
		sym.Summary = "explorer receipt tables: not checked (no explorer URL given; pass --explorer URL)"
		step.Findings = append(step.Findings, "not checked: no explorer URL given (tbops receipts diagnose --explorer URL, which must answer {\"latest_receipt_height\": N})")
		d.r.Symptoms = append(d.r.Symptoms, sym)
		d.r.Steps = append(d.r.Steps, step)
		return
	}
	q := "GET " + d.opts.ExplorerURL
	latest, err := d.fetchExplorer()
	if err != nil {
		sym.Status = tbops.StatusUnknown
		sym.Evidence = append(sym.Evidence, tbops.Evidence{Source: tbops.SourceRPC, Query: q, Value: tbops.RawOf(err.Error()), At: d.now()})
		d.warn("explorer check failed: %v", err)
		step.Findings = append(step.Findings, "explorer not checked: "+err.Error())
		d.r.Symptoms = append(d.r.Symptoms, sym)
		d.r.Steps = append(d.r.Steps, step)
		return
	}
	sym.Evidence = append(sym.Evidence, tbops.Evidence{Source: tbops.SourceRPC, Query: q, Value: tbops.RawOf(map[string]int64{"latest_receipt_height": latest}), At: d.now()})
	// The node's newest receipt: the highest last_emitted_height, else the tip.
	nodeLatest, have := int64(0), false
	for _, mk := range d.markets {
		if mk.stats != nil && mk.stats.LastEmittedHeight > nodeLatest {
			nodeLatest, have = mk.stats.LastEmittedHeight, true
		}
	}
	if !have && d.status != nil {
		nodeLatest, have = d.status.CurrentBlockHeight, true
	}
	if !have {
		sym.Status = tbops.StatusUnknown
		d.warn("explorer lag not decided: the node's latest receipt height is unknown")
		d.r.Symptoms = append(d.r.Symptoms, sym)
		d.r.Steps = append(d.r.Steps, step)
		return
	}
	lag := nodeLatest - latest
	sym.Value = tbops.Num(lag)
	step.Findings = append(step.Findings, fmt.Sprintf("explorer's latest receipt at height %d, node's at %d: %d blocks behind", latest, nodeLatest, lag))
	if lag > d.opts.ExplorerMaxLag {
		sym.Firing, sym.Status = true, tbops.StatusWarning
		sym.Summary = fmt.Sprintf("explorer receipt tables %d blocks behind the node (latest %d vs %d)", lag, latest, nodeLatest)
	} else {
		sym.Status = tbops.StatusOK
	}
	step.Evidence = sym.Evidence
	d.r.Symptoms = append(d.r.Symptoms, sym)
	d.r.Steps = append(d.r.Steps, step)
}

func (d *diagnosis) fetchExplorer() (int64, error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, d.opts.ExplorerURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", d.opts.ExplorerURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("GET %s: reading the body: %w", d.opts.ExplorerURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: HTTP %d", d.opts.ExplorerURL, resp.StatusCode)
	}
	var a explorerAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, fmt.Errorf("GET %s: want JSON {\"latest_receipt_height\": N}: %v", d.opts.ExplorerURL, err)
	}
	if a.LatestReceiptHeight == nil {
		return 0, fmt.Errorf("GET %s: field latest_receipt_height missing", d.opts.ExplorerURL)
	}
	return *a.LatestReceiptHeight, nil
}

// paths picks the resolution paths.
func (d *diagnosis) paths() {
	chainStalled := d.chain.known && d.chain.yes

	a := tbops.Path{ID: PathStalledMarket, Title: "Stalled markets"}
	switch {
	case len(d.stalled) > 0 && chainStalled:
		a.Why = "markets are not emitting, but the chain is stalled: no blocks, no receipts (see path C)"
	case len(d.stalled) > 0:
		a.Matched = true
		a.Why = "not emitting while the chain makes blocks: " + strings.Join(marketNames(d.stalled), ", ")
	default:
		a.Why = "every market emits"
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

	b := tbops.Path{ID: PathValidationErrors, Title: "Validation errors"}
	valSym := d.symptom(SymptomValidationErrors)
	if valSym != nil && valSym.Firing {
		b.Matched = true
		b.Why = valSym.Summary
	} else {
		b.Why = "validation errors within the SLO"
	}
	from := "<current height − 100>"
	if d.status != nil {
		from = fmt.Sprint(max(d.status.CurrentBlockHeight-d.opts.RevalidateBlocks, 0))
	}
	b.Actions = []tbops.Action{
		{Kind: "reset", Target: "validation-state", Command: "contract-cli receipts reset-validation-state",
			Note: "clear the node's validation state (if safe: it forgets duplicate-detection history); tbops receipts diagnose --apply does this", DryRun: true},
		{Kind: "revalidate", Target: fmt.Sprintf("last %d blocks", d.opts.RevalidateBlocks), Command: "tbops receipts validate --from-block " + from,
			Note: "re-validate the last blocks after the reset (--apply does this too)", DryRun: true},
		{Kind: "wait", Target: MetricValidationErrors, Command: "watch -n 10 'tbops query receipt_validation_errors_total'",
			Note: "the counters should stop growing", DryRun: true},
	}

	c := tbops.Path{ID: PathStalledChain, Title: "Stalled chain"}
	if chainStalled {
		c.Matched = true
		c.Why = strings.Join(d.chainWhy, "; ")
	} else {
		c.Why = "blocks are being made"
	}
	c.Actions = []tbops.Action{
		{Kind: "check", Target: "consensus", Command: "contract-cli node consensus --status",
			Note: "see which validators are offline; receipts resume with blocks, restarting the emitter will not help", DryRun: true},
		{Kind: "escalate", Target: "validators", Note: "bring validators back online until consensus is healthy", DryRun: true},
	}

	dp := tbops.Path{ID: PathMinPayment, Title: "Min-payment rejections"}
	mpSym := d.symptom(SymptomMinPayment)
	if mpSym != nil && mpSym.Firing {
		dp.Matched = true
		dp.Why = mpSym.Summary
	} else {
		dp.Why = "min-payment rejections near zero"
	}
	worst, worstN := Market(""), int64(-1)
	for _, mk := range d.markets {
		if mk.stats != nil && mk.stats.MinPaymentRejectedTotal > worstN {
			worst, worstN = mk.m, mk.stats.MinPaymentRejectedTotal
		}
	}
	if worst == "" {
		worst = "<market>"
	}
	dp.Actions = []tbops.Action{{Kind: "check", Target: string(worst), Command: "tbops receipts stats --market " + string(worst),
		Note: "find which market (and then which provider) pays below the 0.001 BLOCK floor; the runbook has no remedy beyond this", DryRun: true}}

	d.r.Paths = append(d.r.Paths, a, b, c, dp)
}

func (d *diagnosis) symptom(id string) *tbops.Symptom {
	for i := range d.r.Symptoms {
		if d.r.Symptoms[i].ID == id {
			return &d.r.Symptoms[i]
		}
	}
	return nil
}

// alerts evaluates Rules() now, from the data gathered.
func (d *diagnosis) alerts() {
	for _, rule := range Rules() {
		a := tbops.Alert{Name: rule.Alert, Severity: rule.Severity, Expr: rule.Expr, ForSeconds: rule.For.Seconds()}
		switch rule.Alert {
		case AlertMarketNotEmitting:
			var flat []string
			known := false
			for _, mk := range d.markets {
				if mk.metric.known && !mk.noSeries {
					known = true
					if mk.metric.yes {
						flat = append(flat, string(mk.m))
					}
				}
			}
			d.setAlert(&a, known, len(flat) > 0, flat)
		case AlertMarketSeriesMissing:
			var missing []string
			known := false
			for _, mk := range d.markets {
				if mk.metric.known {
					known = true
					if mk.noSeries {
						missing = append(missing, string(mk.m))
					}
				}
			}
			d.setAlert(&a, known, len(missing) > 0, missing)
		case AlertValidationSuccessLow:
			er, eok := d.rate(MetricValidationErrors, ValidationAlertFor)
			em, mok := d.rate(MetricEmitted, ValidationAlertFor)
			if eok && mok && er+em > 0 {
				s := em / (em + er)
				d.setAlert(&a, true, s < ValidationSuccessAlert, percent(s))
			} else {
				d.setAlert(&a, eok && mok, false, nil)
			}
		case AlertMinPaymentSpike:
			base, bok := d.rate(MetricMinPaymentRejected, MinPaymentBaseline)
			if d.mpRate5 != nil && bok {
				r5 := *d.mpRate5
				d.setAlert(&a, true, r5 > MinPaymentNearZeroPerSecond && r5 > MinPaymentSpikeFactor*base,
					map[string]float64{"rate_5m": r5, "rate_1h": base})
			} else {
				d.setAlert(&a, false, false, nil)
			}
		case AlertQueryLatencyHigh:
			// The node exports no query-latency metric (PROTOCOL.md section 7): the
			// alert is evaluated on the latency tbops itself observed.
			p99, ok := d.c.LatencyQuantile(0.99)
			d.setAlert(&a, ok, p99 > QueryLatencyAlert, fmt.Sprintf("%s (p99 of %d calls observed by tbops)", p99.Round(time.Microsecond), len(d.c.Latencies())))
		}
		d.r.Alerts = append(d.r.Alerts, a)
	}
}

func (d *diagnosis) setAlert(a *tbops.Alert, known, firing bool, value any) {
	v, detail := tbops.Raw(nil), tbops.RawOf(value)
	if f, ok := value.(float64); ok {
		a.Value, detail = tbops.Num(f), v
	}
	a.Detail = detail
	switch {
	case !known:
		a.Status = tbops.StatusUnknown
	case firing:
		a.Firing, a.Status = true, a.Severity
	default:
		a.Status = tbops.StatusOK
	}
}

// rate is the summed rate of a metric over a window, quietly (the alerts reuse
// metrics whose gaps the steps already warned about).
func (d *diagnosis) rate(metric string, w time.Duration) (float64, bool) {
	if d.src == nil {
		return 0, false
	}
	res, err := d.src.Rate(d.ctx, promq.Select(metric), w)
	if err != nil {
		return 0, false
	}
	return res.Sum()
}

// slos evaluates the Receipts SLO table.
func (d *diagnosis) slos() {
	// Emission in all markets: the value is how many markets emit.
	em := tbops.SLO{Name: "Emission Rate", Target: "All markets", AlertThreshold: "Any market = 0 for 5 blocks"}
	if s := d.symptom(SymptomMarketNotEmitting); s != nil {
		em.Evidence = s.Evidence
		switch s.Status {
		case tbops.StatusUnknown:
			em.Status = tbops.StatusUnknown
		case tbops.StatusOK:
			em.Met, em.Status, em.Value = true, tbops.StatusOK, tbops.Num(len(d.markets))
		default:
			em.Status, em.Value = tbops.StatusCritical, tbops.Num(len(d.markets)-len(d.stalled))
		}
	}
	// Validation success.
	vs := tbops.SLO{Name: "Validation Success", Target: "> 99.99%", AlertThreshold: "< 99% for 10 min"}
	if s := d.symptom(SymptomValidationErrors); s != nil {
		vs.Evidence = s.Evidence
	}
	switch {
	case d.success5 != nil:
		vs.Value = tbops.Num(*d.success5)
		vs.Met = *d.success5 > ValidationSuccessTarget
		vs.Status = tbops.StatusOK
		if !vs.Met {
			vs.Status = tbops.StatusWarning
			if *d.success5 < ValidationSuccessAlert {
				vs.Status = tbops.StatusCritical
			}
		}
	case d.errRate5 != nil && *d.errRate5 == 0:
		vs.Value, vs.Met, vs.Status = tbops.Num(1), true, tbops.StatusOK
	default:
		vs.Status = tbops.StatusUnknown
	}
	// Min-payment rejections near zero.
	mp := tbops.SLO{Name: "Min-Payment Rejections", Target: "Near-zero", AlertThreshold: "Sudden increase in receipt_min_payment_rejected_total"}
	if s := d.symptom(SymptomMinPayment); s != nil {
		mp.Evidence = s.Evidence
	}
	if d.mpRate5 != nil {
		mp.Value = tbops.Num(*d.mpRate5)
		mp.Met = *d.mpRate5 <= MinPaymentNearZeroPerSecond
		mp.Status = tbops.StatusOK
		if !mp.Met {
			mp.Status = tbops.StatusWarning
		}
	} else {
		mp.Status = tbops.StatusUnknown
	}
	// Query latency p99, as tbops observed it.
	ql := tbops.SLO{Name: "Query Latency p99", Target: "< 100ms", AlertThreshold: "> 500ms for 5 min"}
	if p99, ok := d.c.LatencyQuantile(0.99); ok {
		n := len(d.c.Latencies())
		ql.Value = tbops.Num(p99.Seconds())
		ql.Met = p99 < QueryLatencyTarget
		ql.Status = tbops.StatusOK
		if !ql.Met {
			ql.Status = tbops.StatusWarning
		}
		ql.Evidence = []tbops.Evidence{d.rpcEvidence("latency of this diagnosis' RPC calls", map[string]any{"p99_ms": float64(p99) / 1e6, "calls": n})}
	} else {
		ql.Status = tbops.StatusUnknown
	}
	d.r.SLOs = append(d.r.SLOs, em, vs, mp, ql)
	// "Storage: all receipts, alert when > 1 week" cannot be evaluated: the node
	// exposes no retention (oldest stored receipt) in RPC or metrics.
	d.r.Steps = append(d.r.Steps, tbops.Step{ID: "slo-storage", Title: "SLO: receipt storage",
		Findings: []string{"Storage (all receipts, alert at > 1 week) not checked: the node exposes no receipt retention in its RPC or metrics; check the node's receipt store on the host"}})
}

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

func reasonList(by map[string]float64, format string) string {
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s "+format, k, by[k]))
	}
	for _, r := range []Reason{ReasonSchemaMismatch, ReasonDuplicate, ReasonSignatureInvalid} {
		if _, ok := by[string(r)]; !ok {
			parts = append(parts, string(r)+" no data")
		}
	}
	return strings.Join(parts, ", ")
}

func percent(v float64) string {
	return fmt.Sprintf("%.4g%%", v*100)
}

// promDuration renders a duration as PromQL does (1m, 10m, 5s, 1h).
func promDuration(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
