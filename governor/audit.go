package governor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
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

// Options configures [Audit].
type Options struct {
	// Dir is the decisions directory (<data_dir>/governor/decisions). When it is
	// empty the audit compares the node's governor.snapshot answers instead of
	// files (the only way to audit a remote node).
	Dir string
	// Verify configures the file checks (signatures required, trusted keys).
	Verify VerifyOptions
	// Getenv reads TB_GOVERNOR_ENABLED / TB_GOVERNOR_SHADOW_ONLY for the mode
	// finding; nil skips it.
	Getenv func(string) string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Node markers: every node exports block_height_total (PROTOCOL.md section 7);
// the reference node exports a block_height gauge instead (section 9). A series
// of either says "a node is scraped here", per instance.
const (
	MetricBlockHeight    = "block_height_total" // counter, every node
	MetricBlockHeightRef = "block_height"       // gauge, the reference node
)

// Rules are the governor's Prometheus alerting rules (for `tbops rules`). Hash
// and gauge-against-file checks need the decision files, so they are audit
// symptoms, not rules; what PromQL can see is the economics telemetry vanishing.
//
// The rule is per node, for a Prometheus that scrapes a fleet: a node that
// exports a block height (block_height_total, or the reference node's
// block_height gauge) but not economics_block_reward_per_block, matched on
// instance and job. A label-less absent() would only fire when no node at all
// exports the gauge. A node whose whole scrape fails is not this alert (its
// block height vanishes too): that is Prometheus's own `up == 0`.
func Rules() []tbops.Rule {
	return []tbops.Rule{{
		Alert: "GovernorEconomicsTelemetryMissing", Severity: tbops.StatusWarning,
		Expr: "(" + MetricBlockHeight + " or " + MetricBlockHeightRef + ") unless on(instance, job) " + MetricBlockReward,
		For:  10 * time.Minute, Runbook: RunbookID,
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
	err        error // the decision could not be read
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
// sidecars). Every mismatch is a firing symptom whose evidence holds both
// values and where each came from. Nothing is changed: the rollback play is a
// plan (path "rollback"). src may be nil (gauge and ad checks are then
// unknown). The error is non-nil only for a cancelled ctx or a missing client.
func Audit(ctx context.Context, c *Client, src promq.Source, opts Options) (tbops.Report, error) {
	if c == nil {
		return tbops.Report{}, errors.New("governor.Audit: nil client")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	a := &auditor{ctx: ctx, c: c, src: src, opts: opts, now: now, r: tbops.NewReport(RunbookID, c.URL(), now()),
		snapshots: map[uint64]decisionRef{}}
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

	status    Status
	statusErr error
	intents   []Intent
	intentsQ  string

	// Dir mode: the index built while verifying.
	files      []FileResult
	byEpoch    map[uint64]FileResult
	byIntent   map[string]uint64
	byHash     map[string]uint64
	dirSummary VerifySummary
	// Snapshot mode: answers by epoch.
	snapshots map[uint64]decisionRef

	latest    *decisionRef // newest economics decision
	sample    *EconomicsSample
	sampleSrc tbops.Evidence
	mismatch  bool // something calls for the rollback play
}

func (a *auditor) ev(source, query string, value any) tbops.Evidence {
	return tbops.Evidence{Source: source, Query: query, Value: tbops.RawOf(value), At: a.now().UTC()}
}

func (a *auditor) run() {
	a.status, a.statusErr = a.c.Status(a.ctx)
	statusEv := a.ev(tbops.SourceRPC, "governor.status", nil)
	if a.statusErr != nil {
		statusEv.Value = tbops.RawOf(a.statusErr.Error())
		a.r.Warnf("governor.status: %v", a.statusErr)
	} else {
		statusEv.Value = tbops.RawOf(map[string]any{"last_economics_snapshot_hash": a.status.LastEconomicsSnapshotHash,
			"economics_autopilot": a.status.EconomicsAutopilot, "enabled": a.status.Enabled, "shadow_only": a.status.ShadowOnly, "epoch": a.status.Epoch})
	}
	var ierr error
	a.intents, a.intentsQ, ierr = a.c.intents(a.ctx, "")
	if ierr != nil {
		a.r.Warnf("%s: %v", a.intentsQ, ierr)
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
	if a.ctx.Err() != nil {
		return
	}

	if a.opts.Dir != "" {
		a.verifyDir()
	} else {
		a.r.Steps = append(a.r.Steps, tbops.Step{ID: "decision-source", Title: "Where the decisions come from",
			Findings: []string{"no decisions directory given: decisions are the node's governor.snapshot answers (give --dir <data_dir>/governor/decisions to check the files and their signatures)"}})
	}
	a.findLatest()
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

// verifyDir runs the file checks and builds the index.
func (a *auditor) verifyDir() {
	a.byEpoch, a.byIntent, a.byHash = map[uint64]FileResult{}, map[string]uint64{}, map[string]uint64{}
	sum, err := VerifyDir(a.ctx, a.opts.Dir, a.opts.Verify, func(r FileResult) error {
		if r.Hash != "" && !hasProblem(r, ProblemBadName) {
			if prev, dup := a.byEpoch[r.Epoch]; !dup || prev.Name > r.Name {
				a.byEpoch[r.Epoch] = r
			}
			if r.IntentID != "" {
				a.byIntent[r.IntentID] = r.Epoch
			}
			a.byHash[r.Hash] = r.Epoch
		}
		if len(r.Problems) > 0 {
			a.files = append(a.files, r)
		}
		return nil
	})
	a.dirSummary = sum
	dirEv := a.ev(tbops.SourceFile, a.opts.Dir, sum)
	if err != nil {
		a.r.Warnf("decisions directory %s: %v", a.opts.Dir, err)
		dirEv.Value = tbops.RawOf(err.Error())
	}
	sort.Slice(a.files, func(i, j int) bool { return a.files[i].Name < a.files[j].Name })
	findings := []string{fmt.Sprintf("%s: %d entries, %d ok, %d failed, %d signed, %d unsigned",
		a.opts.Dir, sum.Files, sum.OK, sum.Failed, sum.Signed, sum.Unsigned)}

	invalid := tbops.Symptom{ID: SymDecisionFilesInvalid, Summary: "decision files that are misnamed, unreadable or not valid decisions", Status: tbops.StatusOK, Value: tbops.Num(0)}
	sig := tbops.Symptom{ID: SymSignatureInvalid, Summary: "decision-file signatures (.sig) that do not verify", Status: tbops.StatusOK, Value: tbops.Num(0)}
	missing := tbops.Symptom{ID: SymSignatureMissing, Summary: "decision files without a .sig sidecar (signatures required)", Status: tbops.StatusOK, Value: tbops.Num(0)}
	var unsigned []string
	for _, f := range a.files {
		for _, p := range f.Problems {
			e := a.ev(tbops.SourceFile, f.Path, p.Kind+": "+p.Detail)
			switch p.Kind {
			case ProblemHashMismatch:
				// reported by checkStoredHashes
			case ProblemSignatureInvalid, ProblemSidecarInvalid:
				sig.Evidence = append(sig.Evidence, e)
			case ProblemSignatureMissing:
				unsigned = append(unsigned, f.Name)
				if a.opts.Verify.RequireSignatures {
					missing.Evidence = append(missing.Evidence, e)
				}
			default:
				invalid.Evidence = append(invalid.Evidence, e)
			}
		}
	}
	if err != nil {
		invalid.Status, invalid.Value = tbops.StatusUnknown, nil
		invalid.Evidence = append(invalid.Evidence, dirEv)
	}
	fire := func(s *tbops.Symptom, sev tbops.Status) {
		if len(s.Evidence) > 0 {
			files := map[string]bool{}
			for _, e := range s.Evidence {
				files[e.Query] = true
			}
			s.Firing, s.Status, s.Value = true, sev, tbops.Num(len(files))
			s.Summary = fmt.Sprintf("%d %s", len(files), strings.TrimPrefix(s.Summary, "decision-file "))
		}
		if len(s.Evidence) == 0 {
			s.Evidence = []tbops.Evidence{dirEv}
		}
		a.r.Symptoms = append(a.r.Symptoms, *s)
	}
	fire(&invalid, tbops.StatusWarning)
	fire(&sig, tbops.StatusCritical)
	if sig.Firing {
		a.mismatch = true
	}
	if a.opts.Verify.RequireSignatures {
		fire(&missing, tbops.StatusWarning)
	} else if len(unsigned) > 0 {
		findings = append(findings, fmt.Sprintf("%d files have no .sig sidecar (signatures are optional; require them with --require-signatures): %s",
			len(unsigned), truncList(unsigned, 5)))
	}
	for _, f := range a.files {
		if f.Failed {
			findings = append(findings, f.Err().Error())
		}
	}
	a.r.Steps = append(a.r.Steps, tbops.Step{ID: "decision-files", Title: "Decision files (" + DecisionsSubdir + ")", Findings: findings, Evidence: []tbops.Evidence{dirEv}})
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
		ref.storedHash, ref.gate, ref.intentID = d.StoredHash, d.Gate, d.IntentID
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

// findLatest picks the newest economics decision: with a Dir the highest
// economics epoch among the files; without, the highest epoch among economics
// intents, else the status epoch.
func (a *auditor) findLatest() {
	if a.opts.Dir != "" {
		var best *FileResult
		for e, f := range a.byEpoch {
			if f.Gate == GateEconomics && (best == nil || e > best.Epoch) {
				f := f
				best = &f
			}
		}
		if best != nil {
			ref := fileRef(*best)
			a.latest = &ref
		}
		return
	}
	var epoch uint64
	found := false
	for _, in := range a.intents {
		if in.Gate == GateEconomics && (!found || in.Epoch > epoch) {
			epoch, found = in.Epoch, true
		}
	}
	if !found && a.statusErr == nil {
		epoch, found = a.status.Epoch, true
	}
	if found {
		ref := a.snapshot(epoch)
		a.latest = &ref
	}
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
		if SameHash(h, a.latest.hash) {
			s.Status = tbops.StatusOK
		} else {
			s.Firing, s.Status = true, tbops.StatusCritical
			s.Summary = fmt.Sprintf("governor.status last_economics_snapshot_hash %s does not match %s (epoch %d) which hashes to %s",
				h, a.latest.where, a.latest.epoch, a.latest.hash)
			if e, ok := a.byHash[strings.ToLower(h)]; ok {
				s.Summary += fmt.Sprintf("; it matches the decision of epoch %d instead", e)
			}
			a.mismatch = true
		}
	}
	a.r.Symptoms = append(a.r.Symptoms, s)
}

func (a *auditor) checkIntents() {
	mis := tbops.Symptom{ID: SymIntentHashMismatch, Summary: "every intent's snapshot_hash matches its decision", Status: tbops.StatusOK, Value: tbops.Num(0)}
	miss := tbops.Symptom{ID: SymIntentDecisionMissing, Summary: "every intent has a decision and a snapshot_hash", Status: tbops.StatusOK, Value: tbops.Num(0)}
	var findings []string
	var mismatches, missing []map[string]any
	at := a.now().UTC()
	for _, in := range a.intents {
		q := fmt.Sprintf("%s intent %s (gate %s, epoch %d) .snapshot_hash", a.intentsQ, in.ID, in.Gate, in.Epoch)
		ref, ok := a.decisionFor(in)
		switch {
		case in.SnapshotHash == "":
			missing = append(missing, map[string]any{"intent": in.ID, "problem": "no snapshot_hash"})
			miss.Evidence = append(miss.Evidence, a.ev(tbops.SourceRPC, q, nil))
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
	if a.intentsQ != "" && len(a.intents) == 0 && a.statusErr != nil {
		mis.Status, miss.Status = tbops.StatusUnknown, tbops.StatusUnknown
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
	}
	a.r.Symptoms = append(a.r.Symptoms, s)
}

func sourceOf(dir string) string {
	if dir != "" {
		return tbops.SourceFile
	}
	return tbops.SourceRPC
}

// loadSample reads the economics sample of the newest economics decision.
func (a *auditor) loadSample() {
	if a.latest == nil || a.latest.err != nil {
		return
	}
	var d Decision
	var err error
	if a.latest.source == tbops.SourceFile {
		d, err = ReadDecisionFile(a.latest.where)
	} else {
		d, err = a.c.Snapshot(a.ctx, a.latest.epoch)
	}
	if err == nil {
		var s EconomicsSample
		if s, err = d.Economics(); err == nil {
			a.sample = &s
			a.sampleSrc = a.ev(a.latest.source, a.latest.where+" .metrics_summary", s)
			return
		}
	}
	a.r.Warnf("economics sample of %s: %v", a.latest.where, err)
}

// drift is one gauge that does not mirror its sample field.
type drift struct {
	Gauge       string  `json:"gauge"`
	GaugeSource string  `json:"gauge_source"`
	GaugeValue  float64 `json:"gauge_value"`
	Field       string  `json:"field"`
	FieldSource string  `json:"field_source"`
	FieldValue  float64 `json:"field_value"`
}

// num prints a float without an exponent: 1250000, 0.25.
func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func sameValue(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// checkGauges compares each economics gauge with the decision sample field it
// mirrors (PROTOCOL.md section 6 "Gauge ↔ sample"), and the status's telemetry
// gauges and economics_sample with the same sample.
func (a *auditor) checkGauges() {
	s := tbops.Symptom{ID: SymGaugeDrift, Summary: "economics gauges mirror the decision sample the governor evaluated"}
	if a.sample == nil {
		s.Status = tbops.StatusUnknown
		s.Evidence = []tbops.Evidence{a.ev(sourceOf(a.opts.Dir), "newest economics decision .metrics_summary", nil)}
		a.r.Warnf("no economics decision sample to compare the gauges with")
		a.r.Symptoms = append(a.r.Symptoms, s)
		return
	}
	sample := *a.sample
	where := a.latest.where
	var drifts []drift
	var findings []string
	compared, missing := 0, 0
	type pair struct {
		sel   promq.Selector
		field string
		want  float64
	}
	pairs := []pair{
		{promq.Select(MetricEpochTxCount), "epoch_tx_count", sample.EpochTxCount},
		{promq.Select(MetricEpochTxVolume), "epoch_tx_volume", sample.EpochTxVolume},
		{promq.Select(MetricEpochTreasuryInflow), "epoch_treasury_inflow", sample.EpochTreasuryInflow},
		{promq.Select(MetricBlockReward), "block_reward", sample.BlockReward},
	}
	for _, m := range sample.Markets() {
		mm := sample.MarketMetrics[m]
		pairs = append(pairs,
			pair{promq.Select(MetricPrevUtilization, "market", m), "market_metrics." + m + ".utilization_ppm", mm.UtilizationPPM},
			pair{promq.Select(MetricPrevProviderMargin, "market", m), "market_metrics." + m + ".provider_margin_ppm", mm.ProviderMarginPPM})
	}
	if a.src == nil {
		a.r.Warnf("no metrics source: the economics gauges were not compared with the decision sample")
	} else {
		for _, p := range pairs {
			res, err := a.src.Instant(a.ctx, p.sel)
			if err != nil {
				a.r.Warnf("%s: %v", p.sel, err)
				missing++
				continue
			}
			for _, w := range res.Warnings {
				a.r.Warnf("%s", w)
			}
			v, ok := res.Value()
			if !ok {
				missing++
				a.r.Warnf("no data for %s (compared with %s)", p.sel, p.field)
				continue
			}
			compared++
			s.Evidence = append(s.Evidence, res.Evidence)
			if !sameValue(v, p.want) {
				drifts = append(drifts, drift{Gauge: p.sel.String(), GaugeSource: a.src.Name(), GaugeValue: v, Field: p.field, FieldSource: where, FieldValue: p.want})
				findings = append(findings, fmt.Sprintf("DRIFT %s = %s, %s %s = %s", p.sel, num(v), where, p.field, num(p.want)))
			}
		}
	}
	// The status's own view: telemetry_gauges_ppm and economics_sample.
	if a.statusErr == nil {
		for _, m := range sample.Markets() {
			mm := sample.MarketMetrics[m]
			for _, x := range []struct {
				name string
				got  map[string]int64
				want float64
				fld  string
			}{{"utilization", a.status.TelemetryGaugesPPM.Utilization, mm.UtilizationPPM, "utilization_ppm"},
				{"provider_margin", a.status.TelemetryGaugesPPM.ProviderMargin, mm.ProviderMarginPPM, "provider_margin_ppm"}} {
				v, ok := x.got[m]
				if !ok {
					continue
				}
				compared++
				if !sameValue(float64(v), x.want) {
					q := fmt.Sprintf("governor.status .telemetry_gauges_ppm.%s.%s", x.name, m)
					drifts = append(drifts, drift{Gauge: q, GaugeSource: "governor.status", GaugeValue: float64(v),
						Field: "market_metrics." + m + "." + x.fld, FieldSource: where, FieldValue: x.want})
					s.Evidence = append(s.Evidence, a.ev(tbops.SourceRPC, q, v))
					findings = append(findings, fmt.Sprintf("DRIFT %s = %d, %s market_metrics.%s.%s = %s", q, v, where, m, x.fld, num(x.want)))
				}
			}
		}
		if es := a.status.EconomicsSample; es != nil {
			for _, x := range []struct {
				fld       string
				got, want float64
			}{{"epoch_tx_count", es.EpochTxCount, sample.EpochTxCount}, {"epoch_tx_volume", es.EpochTxVolume, sample.EpochTxVolume},
				{"epoch_treasury_inflow", es.EpochTreasuryInflow, sample.EpochTreasuryInflow}, {"block_reward", es.BlockReward, sample.BlockReward}} {
				compared++
				if !sameValue(x.got, x.want) {
					q := "governor.status .economics_sample." + x.fld
					drifts = append(drifts, drift{Gauge: q, GaugeSource: "governor.status", GaugeValue: x.got, Field: x.fld, FieldSource: where, FieldValue: x.want})
					s.Evidence = append(s.Evidence, a.ev(tbops.SourceRPC, q, x.got))
					findings = append(findings, fmt.Sprintf("DRIFT %s = %s, %s %s = %s", q, num(x.got), where, x.fld, num(x.want)))
				}
			}
		}
	}
	s.Evidence = append(s.Evidence, a.sampleSrc)
	switch {
	case len(drifts) > 0:
		s.Firing, s.Status, s.Value, s.Detail = true, tbops.StatusWarning, tbops.Num(len(drifts)), tbops.RawOf(drifts)
		s.Summary = fmt.Sprintf("%d economics gauges do not mirror the sample in %s", len(drifts), where)
		a.mismatch = true
	case a.src == nil || missing > 0:
		s.Status, s.Detail = tbops.StatusUnknown, tbops.RawOf(map[string]int{"compared": compared, "missing": missing})
	default:
		s.Status, s.Value, s.Detail = tbops.StatusOK, tbops.Num(0), tbops.RawOf(map[string]int{"compared": compared})
	}
	a.r.Symptoms = append(a.r.Symptoms, s)
	findings = append([]string{fmt.Sprintf("sample of %s: tx count %s, volume %s BLOCK, treasury inflow %s BLOCK, block reward %s BLOCK, %d markets; %d values compared",
		where, num(sample.EpochTxCount), num(sample.EpochTxVolume), num(sample.EpochTreasuryInflow), num(sample.BlockReward), len(sample.MarketMetrics), compared)}, findings...)
	a.r.Steps = append(a.r.Steps, tbops.Step{ID: "telemetry-gauges", Title: "Telemetry gauges against the decision sample", Findings: findings, Evidence: []tbops.Evidence{a.sampleSrc}})
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

func (a *auditor) adStep() {
	s := tbops.Symptom{ID: SymAdGateStreakMismatch, Summary: "ad_gate_streak_windows per tier matches the ad_contextual/ad_presence gate streaks"}
	if a.src == nil {
		s.Status = tbops.StatusUnknown
		s.Evidence = []tbops.Evidence{a.ev(tbops.SourcePrometheus, MetricAdGateStreak, nil)}
		a.r.Symptoms = append(a.r.Symptoms, s)
		return
	}
	sig, err := ReadAdSignals(a.ctx, a.src)
	if err != nil {
		a.r.Warnf("ad signals: %v", err)
	}
	var findings []string
	if len(sig.Missing) > 0 {
		findings = append(findings, "missing: "+strings.Join(sig.Missing, ", "))
	}
	findings = append(findings, adFindings(sig)...)
	checks := CheckTiers(sig, a.status)
	known := 0
	var bad []TierCheck
	for _, c := range checks {
		findings = append(findings, c.String())
		if !c.Known {
			continue
		}
		known++
		if !c.Match {
			bad = append(bad, c)
		}
	}
	s.Evidence = append(s.Evidence, a.ev(tbops.SourceRPC, "governor.status .gates[ad_contextual, ad_presence]", gateStreaks(a.status)))
	for _, e := range sig.Evidence {
		if strings.Contains(e.Query, "ad_gate_") {
			s.Evidence = append(s.Evidence, e)
		}
	}
	switch {
	case len(bad) > 0:
		s.Firing, s.Status, s.Value, s.Detail = true, tbops.StatusWarning, tbops.Num(len(bad)), tbops.RawOf(bad)
		a.mismatch = true
	case a.statusErr != nil || known == 0 || err != nil:
		s.Status, s.Detail = tbops.StatusUnknown, tbops.RawOf(checks)
		for _, c := range checks {
			if !c.Known && c.Tier != "" {
				a.r.Warnf("ad tier %s: %s", c.Tier, c.Missing)
			}
		}
	default:
		s.Status, s.Value, s.Detail = tbops.StatusOK, tbops.Num(0), tbops.RawOf(checks)
	}
	a.r.Symptoms = append(a.r.Symptoms, s)
	a.r.Steps = append(a.r.Steps, tbops.Step{ID: "ad-market", Title: "Ad market quality and cost signals; tiered ad gates", Findings: findings, Evidence: sig.Evidence})
}

func gateStreaks(st Status) map[string]any {
	out := map[string]any{}
	for _, g := range st.Gates {
		if g.Name == GateAdContextual || g.Name == GateAdPresence {
			out[g.Name] = map[string]any{"state": g.State, "enter_streak": g.EnterStreak, "streak_required": g.StreakRequired}
		}
	}
	return out
}

func adFindings(s AdSignals) []string {
	var out []string
	kv := func(m map[string]float64, unit string) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + " " + num(m[k]) + unit
		}
		return strings.Join(parts, ", ")
	}
	if len(s.QualityMultiplierPPM) > 0 {
		out = append(out, "quality multipliers (ppm): "+kv(s.QualityMultiplierPPM, ""))
	}
	if s.ReadinessStreak != nil {
		out = append(out, "readiness streak: "+num(*s.ReadinessStreak)+" windows")
	}
	if len(s.FreshnessScorePPM) > 0 {
		out = append(out, "freshness score by presence bucket (ppm): "+kv(s.FreshnessScorePPM, ""))
	}
	if s.PrivacyScorePPM != nil {
		out = append(out, "privacy score: "+num(*s.PrivacyScorePPM)+" ppm")
	}
	if s.ComputeUnitPrice != nil {
		out = append(out, "compute unit price: "+num(*s.ComputeUnitPrice)+" USD micros")
	}
	if len(s.CostBasis) > 0 {
		out = append(out, "cost basis (USD micros): "+kv(s.CostBasis, ""))
	}
	return out
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
		Evidence: []tbops.Evidence{a.ev(tbops.SourceLog, "env "+EnvEnabled+", "+EnvShadowOnly, m)}})
}

func (a *auditor) rollbackPath() {
	if a.statusErr != nil {
		return
	}
	in := RollbackInput{Status: a.status, Gate: GateEconomics}
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
	why := "no mismatch: the governor replayed the sample the telemetry shows"
	if a.mismatch {
		var ids []string
		for _, s := range a.r.Firing() {
			ids = append(ids, s.ID)
		}
		why = "the audit found " + strings.Join(ids, ", ") + ": stop the gate from applying while you troubleshoot"
	}
	a.r.Paths = append(a.r.Paths, tbops.Path{ID: "rollback", Title: "Rollback play (economics autopilot gate)", Matched: a.mismatch, Why: why, Actions: plan.Actions()})
}

func (a *auditor) alerts() {
	for _, rule := range Rules() {
		al := tbops.Alert{Name: rule.Alert, Severity: rule.Severity, Expr: rule.Expr, ForSeconds: rule.For.Seconds()}
		if a.src == nil {
			al.Status = tbops.StatusUnknown
		} else if res, err := a.src.Instant(a.ctx, promq.Select(MetricBlockReward)); err != nil {
			al.Status = tbops.StatusUnknown
		} else {
			v, ok := res.Value()
			al.Firing = !ok
			al.Status = tbops.StatusOK
			if al.Firing {
				al.Status = rule.Severity
			} else {
				al.Value = tbops.Num(v)
			}
		}
		a.r.Alerts = append(a.r.Alerts, al)
	}
}
