package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Symptom ids of the node-health report.
const (
	SymptomUnreachable    = "rpc-unreachable"
	SymptomSyncing        = "syncing"
	SymptomNoPeers        = "no-peers"
	SymptomConsensus      = "consensus-unhealthy"
	SymptomNotProgressing = "height-not-progressing"
)

// Options configure NewRunbook. The zero value is ready to use.
type Options struct {
	// Now stamps the report and is when the rules are evaluated (default: the
	// client's clock, rpc.WithClock).
	Now func() time.Time
	// Eval is passed to every promq.EvalRule: promq.WithEvalInterval to match a
	// Prometheus' evaluation_interval, promq.WithHistoryHint for what the
	// warnings of an undecided window suggest.
	Eval []promq.EvalOption
	// Hint, when set, says what to do next about a call that got no JSON-RPC
	// answer; it is added to the rpc-unreachable symptom.
	Hint func(error) string
}

// Runbook is the node-health diagnosis of one node (a tbops.Runbook).
type Runbook struct {
	c    *Client
	src  promq.Source
	opts Options
}

// NewRunbook binds the diagnosis to a node's client and its metrics source.
// src may be nil: the height fallback and the progress rules are then unknown.
func NewRunbook(c *Client, src promq.Source, opts Options) *Runbook {
	return &Runbook{c: c, src: src, opts: opts}
}

// ID is "node-health".
func (rb *Runbook) ID() string { return RunbookID }

// Diagnose asks the node whether it answers, is in sync, has peers, whether
// consensus is healthy and whether its height moves, and evaluates Rules() on
// the source. The error is non-nil only when ctx ended.
func (rb *Runbook) Diagnose(ctx context.Context) (tbops.Report, error) {
	now := rb.c.Now()
	if rb.opts.Now != nil {
		now = rb.opts.Now()
	}
	d := &diagnosis{rb: rb, now: now, r: tbops.NewReport(RunbookID, rb.c.URL(), now)}
	if rb.src != nil {
		d.r.Scope = rb.src.Name()
	}
	st, stErr := rb.c.Status(ctx)
	cs, csErr := rb.c.ConsensusStatus(ctx)
	d.reachability(ctx, stErr, csErr)
	d.status(st, stErr)
	d.consensus(cs, csErr)
	d.height(ctx, st, stErr)
	d.progress(ctx)
	if err := ctx.Err(); err != nil {
		return d.r, err
	}
	d.path()
	d.r.Finalize()
	return d.r, nil
}

// diagnosis is one Diagnose run: the report as it is built.
type diagnosis struct {
	rb  *Runbook
	now time.Time
	r   tbops.Report
}

// rpcEvidence is what a call of method gave: v, or the error.
func (d *diagnosis) rpcEvidence(method string, v any, err error) tbops.Evidence {
	if err != nil {
		v = err.Error()
	}
	return tbops.Evidence{Source: tbops.SourceRPC, Query: method, Value: tbops.RawOf(v), At: d.now.UTC()}
}

// reachability decides rpc-unreachable: the node is reachable when any call
// got a JSON-RPC answer, an error object such as -32601 included. A node.*
// method the node does not serve is looked past to the reference node's own
// methods (PROTOCOL.md section 9), which also show that it answers.
func (d *diagnosis) reachability(ctx context.Context, stErr, csErr error) {
	sym := tbops.Symptom{ID: SymptomUnreachable, Summary: "node answers JSON-RPC", Status: tbops.StatusOK}
	ok := answered(stErr) || answered(csErr)
	if errors.Is(stErr, ErrMethodNotFound) || errors.Is(csErr, ErrMethodNotFound) {
		mp, mpErr := d.rb.c.MempoolStats(ctx, "")
		df, dfErr := d.rb.c.Difficulty(ctx)
		d.referenceStep(mp, mpErr, df, dfErr)
		ok = ok || answered(mpErr) || answered(dfErr)
	}
	if !ok {
		detail := stErr.Error()
		if d.rb.opts.Hint != nil {
			if h := d.rb.opts.Hint(stErr); h != "" {
				detail += "; " + h
			}
		}
		sym.Summary, sym.Firing, sym.Status, sym.Detail = "node does not answer JSON-RPC", true, tbops.StatusCritical, tbops.RawOf(detail)
	}
	sym.Evidence = []tbops.Evidence{d.rpcEvidence(MethodStatus, "answered", stErr), d.rpcEvidence(MethodConsensusStatus, "answered", csErr)}
	d.r.Symptoms = append(d.r.Symptoms, sym)
}

// referenceStep records the reference node's mempool.stats and
// consensus.difficulty, asked when a node.* method is not served.
func (d *diagnosis) referenceStep(mp MempoolStats, mpErr error, df Difficulty, dfErr error) {
	step := tbops.Step{ID: "reference-node", Title: "Reference-node methods (node.* not served)",
		Evidence: []tbops.Evidence{d.rpcEvidence(MethodMempoolStats, mp, mpErr), d.rpcEvidence(MethodDifficulty, df, dfErr)}}
	if mpErr == nil {
		step.Findings = append(step.Findings, fmt.Sprintf("mempool.stats: %s transactions, age p50 %s p95 %s, fee floor %s, p50 %s, p90 %s",
			show(mp.Size), show(mp.AgeP50), show(mp.AgeP95), show(mp.FeeFloor), show(mp.FeeP50), show(mp.FeeP90)))
	} else {
		step.Findings = append(step.Findings, problem(MethodMempoolStats, mpErr))
	}
	if dfErr == nil {
		step.Findings = append(step.Findings, "consensus.difficulty: "+show(df.Difficulty))
	} else {
		step.Findings = append(step.Findings, problem(MethodDifficulty, dfErr))
	}
	d.r.Steps = append(d.r.Steps, step)
}

// status decides syncing and no-peers from node.status.
func (d *diagnosis) status(st Status, err error) {
	ev := []tbops.Evidence{d.rpcEvidence(MethodStatus, st, err)}
	syncing := tbops.Symptom{ID: SymptomSyncing, Summary: "node is syncing", Status: tbops.StatusUnknown, Evidence: ev}
	peers := tbops.Symptom{ID: SymptomNoPeers, Summary: "node has no peers", Status: tbops.StatusUnknown, Threshold: tbops.Num(0), Evidence: ev}
	if err != nil {
		why := problem(MethodStatus, err)
		syncing.Detail, peers.Detail = tbops.RawOf(why), tbops.RawOf(why)
		d.r.Warnf("%s: syncing and peers unknown", why)
	} else {
		if st.Syncing != nil {
			syncing.Firing, syncing.Status, syncing.Detail = *st.Syncing, warnIf(*st.Syncing), tbops.RawOf(*st.Syncing)
		} else {
			syncing.Detail = tbops.RawOf(MethodStatus + " has no syncing field")
		}
		if st.Peers != nil {
			peers.Firing, peers.Status, peers.Value = *st.Peers == 0, warnIf(*st.Peers == 0), tbops.Num(*st.Peers)
		} else {
			peers.Detail = tbops.RawOf(MethodStatus + " has no peers field")
		}
		d.r.Steps = append(d.r.Steps, tbops.Step{ID: "node-status", Title: "Node status", Evidence: ev, Findings: []string{
			fmt.Sprintf("height %s, epoch %s, %s peers, syncing %s, version %s",
				show(st.CurrentBlockHeight), show(st.Epoch), show(st.Peers), show(st.Syncing), show(st.Version))}})
	}
	d.r.Symptoms = append(d.r.Symptoms, syncing, peers)
}

// consensus decides consensus-unhealthy: stalled is critical, degraded a
// warning; a state outside the contract is unknown, not a page.
func (d *diagnosis) consensus(cs ConsensusStatus, err error) {
	ev := []tbops.Evidence{d.rpcEvidence(MethodConsensusStatus, cs, err)}
	sym := tbops.Symptom{ID: SymptomConsensus, Summary: "consensus is not healthy", Status: tbops.StatusUnknown, Evidence: ev}
	if err != nil {
		why := problem(MethodConsensusStatus, err)
		sym.Detail = tbops.RawOf(why)
		d.r.Warnf("%s: consensus unknown", why)
		d.r.Symptoms = append(d.r.Symptoms, sym)
		return
	}
	sym.Detail = tbops.RawOf(cs.Status)
	switch cs.Status {
	case ConsensusHealthy:
		sym.Status = tbops.StatusOK
	case ConsensusDegraded:
		sym.Firing, sym.Status = true, tbops.StatusWarning
	case ConsensusStalled:
		sym.Firing, sym.Status = true, tbops.StatusCritical
	case "":
		d.r.Warnf("%s has no status field: consensus unknown", MethodConsensusStatus)
	default:
		d.r.Warnf("%s: status %q is none of healthy, degraded, stalled: consensus unknown", MethodConsensusStatus, cs.Status)
	}
	d.r.Symptoms = append(d.r.Symptoms, sym)
	d.r.Steps = append(d.r.Steps, tbops.Step{ID: "consensus", Title: "Consensus status", Evidence: ev, Findings: []string{
		fmt.Sprintf("%s: round %s, finalized height %s, %s/%s validators online", show(&cs.Status), show(cs.Round),
			show(cs.LastFinalizedHeight), show(cs.ValidatorsOnline), show(cs.ValidatorsTotal))}})
}

// height finds the block height: node.status' field, else the first height
// metric the node exports.
func (d *diagnosis) height(ctx context.Context, st Status, stErr error) {
	step := tbops.Step{ID: "block-height", Title: "Block height"}
	defer func() { d.r.Steps = append(d.r.Steps, step) }()
	if stErr == nil && st.CurrentBlockHeight != nil {
		step.Findings = []string{fmt.Sprintf("height %d (%s)", *st.CurrentBlockHeight, MethodStatus)}
		step.Evidence = []tbops.Evidence{d.rpcEvidence(MethodStatus, map[string]int64{"current_block_height": *st.CurrentBlockHeight}, nil)}
		return
	}
	if d.rb.src == nil {
		step.Findings = []string{fmt.Sprintf("height unknown: %s gave none and there is no metrics source", MethodStatus)}
		return
	}
	for _, m := range []string{MetricHeight, MetricHeightGauge} {
		res, err := d.rb.src.Instant(ctx, promq.Select(m))
		if err != nil {
			d.r.Warnf("%s: %v", m, err)
			continue
		}
		step.Evidence = append(step.Evidence, res.Evidence)
		if v, ok := res.Value(); ok {
			step.Findings = []string{fmt.Sprintf("height %.0f (%s; %s gave none)", v, m, MethodStatus)}
			return
		}
	}
	step.Findings = []string{fmt.Sprintf("height unknown: %s gave none and the node exports neither %s nor %s", MethodStatus, MetricHeight, MetricHeightGauge)}
}

// progress evaluates Rules() into the Alerts block and decides
// height-not-progressing from the rule of the height metric the node exports,
// or, when that leaves it open, from blocks this node mined inside the window.
func (d *diagnosis) progress(ctx context.Context) {
	sym := tbops.Symptom{ID: SymptomNotProgressing, Summary: "block height has not moved in 5m", Status: tbops.StatusUnknown, Threshold: tbops.Num(0)}
	defer func() { d.r.Symptoms = append(d.r.Symptoms, sym) }()
	var exported *promq.RuleState
	for _, rule := range Rules() {
		st := promq.RuleState{Rule: rule}
		if d.rb.src != nil {
			var err error
			if st, err = promq.EvalRule(ctx, d.rb.src, rule, d.now, d.rb.opts.Eval...); err != nil {
				st = promq.RuleState{Rule: rule}
				d.r.Warnf("%s: %v", rule.Alert, err)
			} else if exported == nil && len(st.NoData) == 0 {
				exported = &st
			}
		}
		d.r.Alerts = append(d.r.Alerts, st.ReportAlert())
	}
	switch {
	case d.rb.src == nil:
		sym.Detail = tbops.RawOf("no metrics source")
		d.r.Warnf("no metrics source: height progress unknown")
	case exported != nil && exported.Known:
		a := exported.ReportAlert()
		sym.Firing, sym.Status, sym.Evidence = a.Firing, a.Status, a.Evidence
		sym.Value, sym.Detail = blocksIn(exported.Worst)
	case d.mined(ctx, &sym):
	case exported != nil:
		sym.Evidence = exported.Evidence
		for _, w := range exported.Warnings {
			d.r.Warnf("height progress: %s", w)
		}
	default:
		sym.Detail = tbops.RawOf(fmt.Sprintf("the node exports neither %s nor %s", MetricHeight, MetricHeightGauge))
		d.r.Warnf("height progress unknown: the node exports neither %s nor %s", MetricHeight, MetricHeightGauge)
	}
}

// blocksIn is the height's increase over the window when the samples cover it;
// otherwise only its lower bound is known, which goes in the detail.
func blocksIn(s *promq.Series) (*float64, tbops.Raw) {
	switch {
	case s == nil:
		return nil, nil
	case s.Exact && s.Value != nil:
		return tbops.Num(*s.Value), nil
	}
	return nil, tbops.RawOf(fmt.Sprintf("at least %g blocks in the window (the samples do not cover all of it)", s.Min))
}

// mined decides the symptom ok when block_mined_total rose inside the window:
// a block mined here is a block the chain added. A flat one decides nothing (a
// node that does not mine never moves it).
func (d *diagnosis) mined(ctx context.Context, sym *tbops.Symptom) bool {
	e := promq.GTc(promq.Increase(promq.Select(MetricBlocksMined), ProgressWindow), 0)
	ev, err := promq.Eval(ctx, d.rb.src, e, d.now, d.rb.opts.Eval...)
	if err != nil || !ev.Known || !ev.Returned {
		return false
	}
	sym.Status, sym.Evidence = tbops.StatusOK, []tbops.Evidence{ev.Evidence}
	sym.Detail = tbops.RawOf(MetricBlocksMined + " rose inside the window: this node mined blocks")
	return true
}

// path matches "Node or consensus unhealthy" when a critical-side symptom fires.
func (d *diagnosis) path() {
	var why []string
	for _, id := range []string{SymptomUnreachable, SymptomConsensus, SymptomNotProgressing} {
		if s, ok := d.r.Symptom(id); ok && s.Firing {
			why = append(why, id)
		}
	}
	if len(why) == 0 {
		return
	}
	d.r.Paths = append(d.r.Paths, tbops.Path{ID: "consensus", Title: "Node or consensus unhealthy", Matched: true,
		Why: strings.Join(why, ", ") + ": every other runbook depends on a node that answers and a chain that moves",
		Actions: []tbops.Action{{Kind: "check", Command: "contract-cli node consensus --status",
			Note: "see which validators are offline", DryRun: true}}})
}

// problem says why a call of method gave nothing, for a person: a method the
// node does not serve, else the error (which names the method).
func problem(method string, err error) string {
	if errors.Is(err, ErrMethodNotFound) {
		return method + " is not served by this node (JSON-RPC -32601 method not found)"
	}
	return err.Error()
}

func warnIf(b bool) tbops.Status {
	if b {
		return tbops.StatusWarning
	}
	return tbops.StatusOK
}

// show prints a field the node may have left out.
func show[T any](p *T) string {
	if p == nil {
		return "unknown"
	}
	return fmt.Sprint(*p)
}
