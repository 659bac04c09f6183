package governor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// RunbookID is the audit report's runbook id.
const RunbookID = "governor-audit"

// Symptom ids of the audit report.
const (
	SymStatusHashMismatch    = "status-hash-mismatch"
	SymIntentHashMismatch    = "intent-hash-mismatch"
	SymIntentDecisionMissing = "intent-decision-missing"
	SymFileHashMismatch      = "file-hash-mismatch"
	SymDecisionFilesInvalid  = "decision-files-invalid"
	SymSignatureInvalid      = "signature-invalid"
	SymSignatureMissing      = "signature-missing"
	SymGaugeDrift            = "gauge-drift"
	SymAdGateStreakMismatch  = "ad-gate-streak-mismatch"
)

// Economics gauge names (PROTOCOL.md sections 6 and 7).
const (
	MetricBlockReward         = "economics_block_reward_per_block"
	MetricEpochTxCount        = "economics_epoch_tx_count"
	MetricEpochTxVolume       = "economics_epoch_tx_volume_block"
	MetricEpochTreasuryInflow = "economics_epoch_treasury_inflow_block"
	MetricPrevUtilization     = "economics_prev_market_metrics_utilization_ppm"
	MetricPrevProviderMargin  = "economics_prev_market_metrics_provider_margin_ppm"
)

// Options configures [Audit] and [NewRunbook].
type Options struct {
	// Dir is the decisions directory (<data_dir>/governor/decisions). When it is
	// empty the audit compares the node's governor.snapshot answers instead of
	// files (the only way to audit a remote node).
	Dir string
	// Verify configures the file checks (signatures required, trusted keys).
	Verify VerifyOptions
	// Getenv reads TB_GOVERNOR_ENABLED / TB_GOVERNOR_SHADOW_ONLY for the mode
	// finding (os.Getenv in a program that audits its own host); nil skips it.
	Getenv func(string) string
	// Reason is the exit intent's reason in the rollback play (default
	// DefaultRollbackReason).
	Reason string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Node markers: every node exports block_height_total (PROTOCOL.md section 7);
// the reference node exports a block_height gauge instead (section 9). A series
// of either says "a node is scraped here", per instance, and its value over
// tbops.EpochBlocks is the epoch the node was in when it was scraped.
const (
	MetricBlockHeight    = "block_height_total" // counter, every node
	MetricBlockHeightRef = "block_height"       // gauge, the reference node
)

// AlertTelemetryMissing is the governor's alert: a node that exports a block
// height but no economics_block_reward_per_block for 10 minutes.
const AlertTelemetryMissing = "GovernorEconomicsTelemetryMissing"

// Rules are the governor's Prometheus alerting rules: the one definition that
// `tbops rules` prints and that [Audit] evaluates (promq.EvalRule) for its
// Alerts block. Hash and gauge-against-file checks need the decision files, so
// they are audit symptoms, not rules; what PromQL can see is the economics
// telemetry vanishing.
//
// The rule is per node, for a Prometheus that scrapes a fleet: a node that
// exports a block height (block_height_total, or the reference node's
// block_height gauge) but not economics_block_reward_per_block, matched on
// instance and job. A label-less absent() would only fire when no node at all
// exports the gauge. A node whose whole scrape fails is not this alert (its
// block height vanishes too): that is Prometheus's own `up == 0`.
func Rules() []promq.Rule {
	return []promq.Rule{{
		Alert: AlertTelemetryMissing, Severity: tbops.StatusWarning,
		Expr: promq.Unless(promq.Or(promq.Metric(MetricBlockHeight), promq.Metric(MetricBlockHeightRef)),
			promq.Metric(MetricBlockReward), promq.On("instance", "job")),
		For: 10 * time.Minute, Runbook: RunbookID,
		Summary: "the economics_* gauges the governor audit compares with decision files are not exported",
	}}
}

// decisionRef is a decision found for a check: where it came from and its hash.
type decisionRef struct {
	epoch      uint64
	where      string // file path or "governor.snapshot {epoch: N}"
	source     string // tbops.SourceFile or tbops.SourceRPC
	hash       string
	storedHash string
	gate       string
	intentID   string
	decision   *Decision // a governor.snapshot answer, kept for its sample
	err        error     // the decision could not be read
}

func (d decisionRef) evidence(at time.Time) tbops.Evidence {
	var v any = d.hash
	if d.err != nil {
		v = d.err.Error()
	}
	return tbops.Evidence{Source: d.source, Query: d.where, Value: tbops.RawOf(v), At: at}
}

// Audit runs the runbook's auditing workflow ("Economics Autopilot Gate") and
// the tiered ad-gate check ("Ad Market Quality + Cost Signals"):
//
//  1. governor.status's last_economics_snapshot_hash against the newest
//     economics decision;
//  2. every intent's snapshot_hash (governor.intents and status.pending)
//     against its decision (matched by intent_id, else by epoch);
//  3. a snapshot_hash stored inside a decision against the decision itself;
//  4. every economics_* gauge (and the status's telemetry gauges and sample)
//     against the field of the decision sample it mirrors;
//  5. ad_gate_streak_windows per tier against the ad_contextual / ad_presence
//     gates' enter streaks;
//
// plus, with a Dir, the file checks of [VerifyDir] (names, strict JSON,
// sidecars), and the Alerts block: each of [Rules] evaluated on src
// (promq.EvalRule). Every mismatch is a firing symptom whose evidence holds
// both values and where each came from; a comparison the evidence cannot
// decide is unknown, with a warning saying what would decide it (see the
// package documentation, "Audit"). Nothing is changed: the rollback play is a
// plan (path "rollback", carried out by [Runbook.Apply]). src may be nil
// (gauge and ad checks and the alert are then unknown). The error is non-nil
// only for a cancelled ctx or a missing client.
func Audit(ctx context.Context, c *Client, src promq.Source, opts Options) (tbops.Report, error) {
	if c == nil {
		return tbops.Report{}, errors.New("governor: Audit: nil client")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	a := &auditor{ctx: ctx, c: c, src: src, opts: opts, now: now, r: tbops.NewReport(RunbookID, c.URL(), now()),
		snapshots: map[uint64]decisionRef{}}
	if src != nil {
		a.r.Scope = src.Name()
	}
	a.run()
	if err := ctx.Err(); err != nil {
		return a.r, err
	}
	a.r.Finalize()
	return a.r, nil
}

type auditor struct {
	ctx  context.Context
	c    *Client
	src  promq.Source
	opts Options
	now  func() time.Time
	r    tbops.Report

	// Metrics, read before the node (readMetrics).
	metrics scrapeView

	status     Status
	statusErr  error
	intents    []Intent
	intentsQ   string
	intentsErr error

	// Dir mode: the index built while verifying.
	dirErr   error // the directory could not be read (to the end)
	files    []FileResult
	byEpoch  map[uint64]FileResult
	byIntent map[string]uint64
	// Snapshot mode: answers by epoch.
	snapshots map[uint64]decisionRef

	econ      []decisionRef // the economics decisions found, oldest first
	latest    *decisionRef  // the newest of them
	sample    *EconomicsSample
	sampleSrc tbops.Evidence
	mismatch  bool // something calls for the rollback play
}

func (a *auditor) ev(source, query string, value any) tbops.Evidence {
	return tbops.Evidence{Source: source, Query: query, Value: tbops.RawOf(value), At: a.now().UTC()}
}

func (a *auditor) run() {
	// Metrics first: no gauge is then newer than the node's answers it is
	// compared with (see checkGauges and adStep).
	a.readMetrics()
	statusEv := a.readNode()
	if a.ctx.Err() != nil {
		return
	}
	if a.opts.Dir != "" {
		a.verifyDir()
	} else {
		a.r.Steps = append(a.r.Steps, tbops.Step{ID: "decision-source", Title: "Where the decisions come from",
			Findings: []string{"no decisions directory given: decisions are the node's governor.snapshot answers (give the directory, <data_dir>/governor/decisions, to check the files and their signatures)"}})
	}
	a.findEconomics()
	a.checkStatusHash(statusEv)
	a.checkIntents()
	a.checkStoredHashes()
	a.loadSample()
	a.checkGauges()
	a.gatesStep()
	a.adStep()
	a.modeStep()
	a.rollbackPath()
	a.alerts()
}

// readNode reads governor.status and the intents (governor.intents, plus the
// status's pending ones), and returns the status's evidence.
func (a *auditor) readNode() tbops.Evidence {
	a.status, a.statusErr = a.c.Status(a.ctx)
	statusEv := a.ev(tbops.SourceRPC, "governor.status", nil)
	if a.statusErr != nil {
		statusEv.Value = tbops.RawOf(a.statusErr.Error())
		a.r.Warnf("governor.status: %v", a.statusErr)
	} else {
		statusEv.Value = tbops.RawOf(map[string]any{"last_economics_snapshot_hash": nullIfEmpty(a.status.LastEconomicsSnapshotHash),
			"economics_autopilot": a.status.EconomicsAutopilot, "enabled": a.status.Enabled, "shadow_only": a.status.ShadowOnly, "epoch": a.status.Epoch})
	}
	a.intents, a.intentsQ, a.intentsErr = a.c.intents(a.ctx, "")
	if a.intentsErr != nil {
		a.r.Warnf("%s: %v", a.intentsQ, a.intentsErr)
	}
	if a.statusErr == nil {
		seen := map[string]bool{}
		for _, in := range a.intents {
			seen[in.ID] = true
		}
		for _, in := range a.status.Pending {
			if !seen[in.ID] {
				a.intents = append(a.intents, in)
			}
		}
	}
	return statusEv
}

// verifyDir runs the file checks and builds the index.
func (a *auditor) verifyDir() {
	a.byEpoch, a.byIntent = map[uint64]FileResult{}, map[string]uint64{}
	sum, err := VerifyDir(a.ctx, a.opts.Dir, a.opts.Verify, func(r FileResult) error {
		if r.Hash != "" && !hasProblem(r, ProblemBadName) {
			if prev, dup := a.byEpoch[r.Epoch]; !dup || prev.Name > r.Name {
				a.byEpoch[r.Epoch] = r
			}
			if r.IntentID != "" {
				a.byIntent[r.IntentID] = r.Epoch
			}
		}
		if len(r.Problems) > 0 {
			a.files = append(a.files, r)
		}
		return nil
	})
	a.dirErr = err
	dirEv := a.ev(tbops.SourceFile, a.opts.Dir, sum)
	if err != nil {
		a.r.Warnf("decisions directory %s: %v", a.opts.Dir, err)
		dirEv.Value = tbops.RawOf(err.Error())
	}
	sort.Slice(a.files, func(i, j int) bool { return a.files[i].Name < a.files[j].Name })
	findings := []string{fmt.Sprintf("%s: %d entries, %d ok, %d failed, %d signed, %d unsigned",
		a.opts.Dir, sum.Files, sum.OK, sum.Failed, sum.Signed, sum.Unsigned)}

	invalid, sig, missing := fileProblems{}, fileProblems{}, fileProblems{}
	var unsigned []string
	for _, f := range a.files {
		for _, p := range f.Problems {
			e := a.ev(tbops.SourceFile, f.Path, p.Kind+": "+p.Detail)
			switch p.Kind {
			case ProblemHashMismatch:
				// reported by checkStoredHashes
			case ProblemSignatureInvalid, ProblemSidecarInvalid:
				sig.add(f.Path, p, e)
			case ProblemSignatureMissing:
				unsigned = append(unsigned, f.Name)
				if a.opts.Verify.RequireSignatures {
					missing.add(f.Path, p, e)
				}
			default:
				invalid.add(f.Path, p, e)
			}
		}
	}
	// A directory that could not be read leaves what was not found unknown.
	fire := func(id, summary string, sev tbops.Status, bad fileProblems) {
		s := tbops.Symptom{ID: id, Summary: summary, Status: tbops.StatusOK, Value: tbops.Num(0), Evidence: []tbops.Evidence{dirEv}}
		switch {
		case len(bad.byFile) > 0:
			s.Firing, s.Status, s.Value, s.Detail, s.Evidence = true, sev, tbops.Num(len(bad.byFile)), tbops.RawOf(bad.byFile), bad.evidence
			s.Summary = fmt.Sprintf("%d %s", len(bad.byFile), strings.TrimPrefix(summary, "decision-file "))
		case err != nil:
			s.Status, s.Value = tbops.StatusUnknown, nil
		}
		a.r.Symptoms = append(a.r.Symptoms, s)
	}
	fire(SymDecisionFilesInvalid, "decision files that are misnamed, unreadable or not valid decisions", tbops.StatusWarning, invalid)
	fire(SymSignatureInvalid, "decision-file signatures (.sig) that do not verify", tbops.StatusCritical, sig)
	if len(sig.byFile) > 0 {
		a.mismatch = true
	}
	if a.opts.Verify.RequireSignatures {
		fire(SymSignatureMissing, "decision files without a .sig sidecar (signatures required)", tbops.StatusWarning, missing)
	} else if len(unsigned) > 0 {
		findings = append(findings, fmt.Sprintf("%d files have no .sig sidecar (signatures are optional unless required): %s",
			len(unsigned), truncList(unsigned, 5)))
	}
	for _, f := range a.files {
		if f.Failed {
			findings = append(findings, f.Err().Error())
		}
	}
	a.r.Steps = append(a.r.Steps, tbops.Step{ID: "decision-files", Title: "Decision files (" + DecisionsSubdir + ")", Findings: findings, Evidence: []tbops.Evidence{dirEv}})
}

// fileProblems are one symptom's problems: each file's, and their evidence.
type fileProblems struct {
	byFile   map[string][]Problem
	evidence []tbops.Evidence
}

func (f *fileProblems) add(path string, p Problem, e tbops.Evidence) {
	if f.byFile == nil {
		f.byFile = map[string][]Problem{}
	}
	f.byFile[path] = append(f.byFile[path], p)
	f.evidence = append(f.evidence, e)
}

func hasProblem(r FileResult, kind string) bool {
	for _, p := range r.Problems {
		if p.Kind == kind {
			return true
		}
	}
	return false
}

func truncList(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}

// fileRef turns a verified file into a decisionRef.
func fileRef(f FileResult) decisionRef {
	return decisionRef{epoch: f.Epoch, where: f.Path, source: tbops.SourceFile, hash: f.Hash, storedHash: f.StoredHash, gate: f.Gate, intentID: f.IntentID}
}

// snapshot reads (once) the node's decision of an epoch.
func (a *auditor) snapshot(epoch uint64) decisionRef {
	if d, ok := a.snapshots[epoch]; ok {
		return d
	}
	ref := decisionRef{epoch: epoch, where: fmt.Sprintf("governor.snapshot {\"epoch\":%d}", epoch), source: tbops.SourceRPC}
	d, err := a.c.Snapshot(a.ctx, epoch)
	if err != nil {
		ref.err = err
	} else {
		ref.hash, ref.err = d.Hash()
		ref.storedHash, ref.gate, ref.intentID, ref.decision = d.StoredHash, d.Gate, d.IntentID, &d
	}
	a.snapshots[epoch] = ref
	return ref
}

// decisionFor finds the decision an intent refers to.
func (a *auditor) decisionFor(in Intent) (decisionRef, bool) {
	if a.opts.Dir != "" {
		if e, ok := a.byIntent[in.ID]; ok && in.ID != "" {
			return fileRef(a.byEpoch[e]), true
		}
		if f, ok := a.byEpoch[in.Epoch]; ok {
			return fileRef(f), true
		}
		return decisionRef{epoch: in.Epoch, where: filepath.Join(a.opts.Dir, FileName(in.Epoch)), source: tbops.SourceFile,
			err: errors.New("no decision file")}, false
	}
	ref := a.snapshot(in.Epoch)
	return ref, ref.err == nil
}

// findEconomics lists the economics decisions, oldest first, and the newest:
// with a Dir the economics files; without, the node's decisions of the epochs
// its economics intents name, or else of the status's epoch if that one is an
// economics decision.
func (a *auditor) findEconomics() {
	if a.opts.Dir != "" {
		for _, f := range a.byEpoch {
			if f.Gate == GateEconomics {
				a.econ = append(a.econ, fileRef(f))
			}
		}
	} else {
		seen := map[uint64]bool{}
		for _, in := range a.intents {
			if in.Gate == GateEconomics && !seen[in.Epoch] {
				seen[in.Epoch] = true
				a.econ = append(a.econ, a.snapshot(in.Epoch))
			}
		}
		if len(a.econ) == 0 && a.statusErr == nil {
			if ref := a.snapshot(a.status.Epoch); ref.err == nil && ref.gate == GateEconomics {
				a.econ = append(a.econ, ref)
			}
		}
	}
	sort.Slice(a.econ, func(i, j int) bool { return a.econ[i].epoch < a.econ[j].epoch })
	if n := len(a.econ); n > 0 {
		a.latest = &a.econ[n-1]
	}
}

// econByHash is the economics decision with this hash, or nil.
func (a *auditor) econByHash(h string) *decisionRef {
	for i := range a.econ {
		if a.econ[i].err == nil && SameHash(h, a.econ[i].hash) {
			return &a.econ[i]
		}
	}
	return nil
}

func (a *auditor) checkStatusHash(statusEv tbops.Evidence) {
	s := tbops.Symptom{ID: SymStatusHashMismatch, Summary: "governor.status last_economics_snapshot_hash matches the newest economics decision"}
	h := a.status.LastEconomicsSnapshotHash
	switch {
	case a.statusErr != nil:
		s.Status, s.Evidence = tbops.StatusUnknown, []tbops.Evidence{statusEv}
	case h == "":
		s.Status, s.Evidence = tbops.StatusUnknown, []tbops.Evidence{statusEv}
		a.r.Warnf("governor.status has no last_economics_snapshot_hash: nothing to compare")
	case a.latest == nil:
		s.Status, s.Evidence = tbops.StatusUnknown, []tbops.Evidence{statusEv}
		a.r.Warnf("no economics decision found to compare last_economics_snapshot_hash %s with", h)
	case a.latest.err != nil:
		s.Status, s.Evidence = tbops.StatusUnknown, []tbops.Evidence{statusEv, a.latest.evidence(a.now().UTC())}
		a.r.Warnf("%s: %v", a.latest.where, a.latest.err)
	default:
		s.Evidence = []tbops.Evidence{a.ev(tbops.SourceRPC, "governor.status .last_economics_snapshot_hash", h), a.latest.evidence(a.now().UTC())}
		s.Detail = tbops.RawOf(map[string]any{"status_hash": h, "decision_hash": a.latest.hash, "decision": a.latest.where})
		named := a.econByHash(h)
		switch {
		case SameHash(h, a.latest.hash):
			s.Status = tbops.StatusOK
		case named != nil && a.statusMayPrecede(named):
			s.Status = tbops.StatusUnknown
			a.r.Warnf("governor.status (epoch %d) names the economics decision of epoch %d, and the newest, of epoch %d, may have been made after the status was read: an audit in a later epoch decides it",
				a.status.Epoch, named.epoch, a.latest.epoch)
		default:
			s.Firing, s.Status = true, tbops.StatusCritical
			s.Summary = fmt.Sprintf("governor.status last_economics_snapshot_hash %s does not match %s (epoch %d) which hashes to %s",
				h, a.latest.where, a.latest.epoch, a.latest.hash)
			if named != nil {
				s.Summary += fmt.Sprintf("; it matches the decision of epoch %d instead", named.epoch)
			}
			a.mismatch = true
		}
	}
	a.r.Symptoms = append(a.r.Symptoms, s)
}

// statusMayPrecede says the status, which names the decision named rather than
// the newest, may have been read before the newest decisions were made: they
// are all of the status's epoch or later (a decision of epoch E is made by the
// end of epoch E), and named was the newest before them. Only the files read
// after the status show them, so the status is not yet known to be wrong.
func (a *auditor) statusMayPrecede(named *decisionRef) bool {
	var before *decisionRef
	for i := range a.econ {
		if a.econ[i].epoch < a.status.Epoch {
			before = &a.econ[i]
		}
	}
	return named == before || named.epoch >= a.status.Epoch
}

func (a *auditor) checkIntents() {
	mis := tbops.Symptom{ID: SymIntentHashMismatch, Summary: "every intent's snapshot_hash matches its decision", Status: tbops.StatusOK, Value: tbops.Num(0)}
	miss := tbops.Symptom{ID: SymIntentDecisionMissing, Summary: "every intent has a decision and a snapshot_hash", Status: tbops.StatusOK, Value: tbops.Num(0)}
	var findings []string
	var mismatches, missing []map[string]any
	unchecked := a.intentsErr != nil || (len(a.intents) == 0 && a.statusErr != nil) // not every intent was read
	at := a.now().UTC()
	for _, in := range a.intents {
		q := fmt.Sprintf("%s intent %s (gate %s, epoch %d) .snapshot_hash", a.intentsQ, in.ID, in.Gate, in.Epoch)
		ref, ok := a.decisionFor(in)
		switch {
		case in.SnapshotHash == "":
			missing = append(missing, map[string]any{"intent": in.ID, "problem": "no snapshot_hash"})
			miss.Evidence = append(miss.Evidence, a.ev(tbops.SourceRPC, q, nil))
		case !ok && !a.knownMissing(ref):
			unchecked = true
			a.r.Warnf("intent %s: its decision %s could not be read, so it was not checked: %v", in.ID, ref.where, ref.err)
		case !ok:
			missing = append(missing, map[string]any{"intent": in.ID, "decision": ref.where, "problem": errString(ref.err)})
			miss.Evidence = append(miss.Evidence, a.ev(tbops.SourceRPC, q, in.SnapshotHash), ref.evidence(at))
		case !SameHash(in.SnapshotHash, ref.hash):
			mismatches = append(mismatches, map[string]any{"intent": in.ID, "intent_hash": in.SnapshotHash, "decision": ref.where, "decision_hash": ref.hash})
			mis.Evidence = append(mis.Evidence, a.ev(tbops.SourceRPC, q, in.SnapshotHash), ref.evidence(at))
			findings = append(findings, fmt.Sprintf("MISMATCH intent %s (%s %s, epoch %d): snapshot_hash %s, %s hashes to %s",
				in.ID, in.Gate, in.Action, in.Epoch, in.SnapshotHash, ref.where, ref.hash))
		default:
			findings = append(findings, fmt.Sprintf("ok intent %s (%s %s, epoch %d, %s): %s", in.ID, in.Gate, in.Action, in.Epoch, in.State, in.SnapshotHash))
		}
	}
	if len(mismatches) > 0 {
		mis.Firing, mis.Status, mis.Value, mis.Detail = true, tbops.StatusCritical, tbops.Num(len(mismatches)), tbops.RawOf(mismatches)
		mis.Summary = fmt.Sprintf("%d intents' snapshot_hash do not match their decisions", len(mismatches))
		a.mismatch = true
	}
	if len(missing) > 0 {
		miss.Firing, miss.Status, miss.Value, miss.Detail = true, tbops.StatusWarning, tbops.Num(len(missing)), tbops.RawOf(missing)
		miss.Summary = fmt.Sprintf("%d intents have no decision or no snapshot_hash", len(missing))
	}
	for _, s := range []*tbops.Symptom{&mis, &miss} {
		if unchecked && !s.Firing {
			s.Status, s.Value = tbops.StatusUnknown, nil
		}
	}
	base := a.ev(tbops.SourceRPC, a.intentsQ, len(a.intents))
	if len(mis.Evidence) == 0 {
		mis.Evidence = []tbops.Evidence{base}
	}
	if len(miss.Evidence) == 0 {
		miss.Evidence = []tbops.Evidence{base}
	}
	if len(a.intents) == 0 {
		findings = append(findings, "no intents")
	}
	a.r.Symptoms = append(a.r.Symptoms, mis, miss)
	a.r.Steps = append(a.r.Steps, tbops.Step{ID: "intents", Title: "Intents' snapshot_hash against their decisions", Findings: findings, Evidence: []tbops.Evidence{base}})
}

// knownMissing says a decision that was not found is known not to exist: the
// directory was read to the end, or the node answered "not found".
func (a *auditor) knownMissing(ref decisionRef) bool {
	if a.opts.Dir != "" {
		return a.dirErr == nil
	}
	return errors.Is(ref.err, ErrNotFound)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkStoredHashes: a snapshot_hash stored inside a decision must be its own hash.
func (a *auditor) checkStoredHashes() {
	s := tbops.Symptom{ID: SymFileHashMismatch, Summary: "snapshot_hash stored inside each decision matches the decision", Status: tbops.StatusOK, Value: tbops.Num(0)}
	at := a.now().UTC()
	var bad []map[string]any
	checked := 0
	add := func(ref decisionRef) {
		if ref.err != nil || ref.storedHash == "" {
			return
		}
		checked++
		if !SameHash(ref.storedHash, ref.hash) {
			bad = append(bad, map[string]any{"decision": ref.where, "stored_hash": ref.storedHash, "computed_hash": ref.hash})
			s.Evidence = append(s.Evidence, tbops.Evidence{Source: ref.source, Query: ref.where + " .snapshot_hash", Value: tbops.RawOf(ref.storedHash), At: at},
				tbops.Evidence{Source: ref.source, Query: ref.where + " (BLAKE3 of the canonical encoding)", Value: tbops.RawOf(ref.hash), At: at})
		}
	}
	if a.opts.Dir != "" {
		for _, f := range a.files {
			if hasProblem(f, ProblemHashMismatch) {
				add(fileRef(f))
			}
		}
		for _, f := range a.byEpoch {
			if f.StoredHash != "" {
				checked++
			}
		}
	} else {
		epochs := make([]uint64, 0, len(a.snapshots))
		for e := range a.snapshots {
			epochs = append(epochs, e)
		}
		sort.Slice(epochs, func(i, j int) bool { return epochs[i] < epochs[j] })
		for _, e := range epochs {
			add(a.snapshots[e])
		}
	}
	if len(bad) > 0 {
		s.Firing, s.Status, s.Value, s.Detail = true, tbops.StatusCritical, tbops.Num(len(bad)), tbops.RawOf(bad)
		s.Summary = fmt.Sprintf("%d decisions store a snapshot_hash that is not their own hash", len(bad))
		a.mismatch = true
	} else {
		s.Value = tbops.Num(checked)
		s.Evidence = []tbops.Evidence{a.ev(sourceOf(a.opts.Dir), "decisions carrying snapshot_hash", checked)}
		if a.dirErr != nil {
			s.Status, s.Value = tbops.StatusUnknown, nil
		}
	}
	a.r.Symptoms = append(a.r.Symptoms, s)
}

func sourceOf(dir string) string {
	if dir != "" {
		return tbops.SourceFile
	}
	return tbops.SourceRPC
}

func (a *auditor) gatesStep() {
	if a.statusErr != nil {
		return
	}
	st := a.status
	findings := []string{fmt.Sprintf("governor %s (enabled %t, shadow_only %t), economics_autopilot=%t, epoch %d, window %ds",
		Mode{Enabled: st.Enabled, ShadowOnly: st.ShadowOnly}, st.Enabled, st.ShadowOnly, st.EconomicsAutopilot, st.Epoch, st.WindowSecs)}
	for _, g := range st.Gates {
		f := g.String()
		if g.RawName != "" {
			f += " [node name " + g.RawName + "]"
		}
		if g.LastReason != "" {
			f += ": " + g.LastReason
		}
		findings = append(findings, f)
	}
	for _, want := range []string{GateEconomics, GateAdContextual, GateAdPresence} {
		if _, ok := st.Gate(want); !ok {
			findings = append(findings, "gate "+want+" is not in governor.status")
		}
	}
	a.r.Steps = append(a.r.Steps, tbops.Step{ID: "gates", Title: "Gates and streaks", Findings: findings,
		Evidence: []tbops.Evidence{a.ev(tbops.SourceRPC, "governor.status .gates", st.Gates)}})
}

func (a *auditor) modeStep() {
	if a.opts.Getenv == nil {
		return
	}
	m, err := ModeFromEnv(a.opts.Getenv)
	if err != nil {
		a.r.Warnf("%v", err)
		return
	}
	if len(m.Set) == 0 {
		return // nothing set here: this host is probably not the governor's
	}
	f := fmt.Sprintf("this host's environment selects %s (%s)", m, strings.Join(m.Set, ", "))
	if a.statusErr == nil {
		node := Mode{Enabled: a.status.Enabled, ShadowOnly: a.status.ShadowOnly}
		if node.String() != m.String() {
			f += fmt.Sprintf("; the node reports %s: the governor process has not picked the environment up (restart it), or this is another host", node)
		}
	}
	a.r.Steps = append(a.r.Steps, tbops.Step{ID: "mode", Title: "Governor mode from the environment", Findings: []string{f},
		Evidence: []tbops.Evidence{a.ev(tbops.SourceHost, "env "+EnvEnabled+", "+EnvShadowOnly, m)}})
}

func (a *auditor) rollbackPath() {
	if a.statusErr != nil {
		return
	}
	in := RollbackInput{Status: a.status, Gate: GateEconomics, Reason: a.opts.Reason}
	if a.opts.Getenv != nil {
		if m, err := ModeFromEnv(a.opts.Getenv); err == nil {
			in.Env = &m
		}
	}
	switch {
	case a.mismatch:
		in.KnownGood = "not established: the newest economics decision failed this audit; re-enter from an earlier decision whose hashes and gauges agree"
	case a.latest != nil && a.latest.err == nil:
		in.KnownGood = fmt.Sprintf("epoch %d, hash %s (%s)", a.latest.epoch, a.latest.hash, a.latest.where)
	}
	plan := PlanRollback(in)
	why := "no hash, signature, gauge or ad-streak check fired"
	if a.mismatch {
		var ids []string
		for _, s := range a.r.Firing() {
			ids = append(ids, s.ID)
		}
		why = "the audit found " + strings.Join(ids, ", ") + ": stop the gate from applying while you troubleshoot"
	}
	a.r.Paths = append(a.r.Paths, tbops.Path{ID: "rollback", Title: "Rollback play (economics autopilot gate)", Matched: a.mismatch, Why: why, Actions: plan.Actions()})
}
