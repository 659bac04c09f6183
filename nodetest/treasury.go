package nodetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/theblock/tbops/rpc"
)

// TreasuryState is the treasury behind the gov.treasury.* methods and the
// treasury metrics. Amounts are micro-BLOCK, times Unix seconds.
type TreasuryState struct {
	Balance       int64                  `json:"balance"`
	Executor      TreasuryExecutor       `json:"executor"`
	Disbursements []TreasuryDisbursement `json:"disbursements"`
	History       []TreasurySnapshot     `json:"history"`
	// Reference serves the reference node's shapes (PROTOCOL.md section 9):
	// nested {"deps","disbursement"} records, tagged status objects, whole BLOCK.
	Reference bool `json:"reference,omitempty"`

	// Backlog overrides treasury_disbursement_backlog (default: the number of
	// queued disbursements).
	Backlog *float64 `json:"backlog,omitempty"`
	// LagSeconds and TickSeconds are the observations the lag and tick-duration
	// histograms are shaped like.
	LagSeconds  []float64 `json:"lag_seconds,omitempty"`
	TickSeconds []float64 `json:"tick_seconds,omitempty"`
	// LagP95 exports the runbook's treasury_disbursement_lag_seconds_p95 gauge
	// with this value beside the histogram (PROTOCOL.md lists only the
	// histogram, so by default the gauge is absent).
	LagP95 *float64 `json:"lag_p95,omitempty"`
	// ErrorsPerSecond is treasury_execution_errors_total's rate by reason; a
	// reason with rate 0 is still exported (so the rate is 0, not missing).
	// Both counters count events: they step by whole numbers, as a real one.
	ErrorsPerSecond map[string]float64 `json:"errors_per_second,omitempty"`
	// TransitionsPerSecond is governance_disbursements_total's rate by status.
	TransitionsPerSecond map[string]float64 `json:"transitions_per_second,omitempty"`
}

// TreasuryExecutor is the executor snapshot of gov.treasury.balance.
type TreasuryExecutor struct {
	LastError      *string `json:"last_error"`
	LastErrorAt    int64   `json:"last_error_at"`
	LastSuccessAt  int64   `json:"last_success_at"`
	LastTickAt     int64   `json:"last_tick_at"`
	PendingMatured int64   `json:"pending_matured"`
	StagedIntents  int64   `json:"staged_intents"`
	LeaseHolder    *string `json:"lease_holder"`
	LeaseExpiresAt int64   `json:"lease_expires_at"`
	// Live makes the executor tick with the node clock: last_tick_at (and, with
	// no error, last_success_at) a few seconds ago, the lease renewed ahead.
	Live bool `json:"live,omitempty"`
}

// TreasuryDisbursement is one disbursement (served in the protocol's shape).
type TreasuryDisbursement struct {
	ID             uint64   `json:"id"`
	Destination    string   `json:"destination"`
	Amount         int64    `json:"amount"`
	Memo           string   `json:"memo"`
	ScheduledEpoch int64    `json:"scheduled_epoch"`
	CreatedAt      int64    `json:"created_at"`
	UpdatedAt      int64    `json:"updated_at"`
	State          string   `json:"state"`
	Reason         string   `json:"reason,omitempty"`
	TxHash         string   `json:"tx_hash,omitempty"`
	ChangedAt      int64    `json:"changed_at"`
	Title          string   `json:"title"`
	Deps           []uint64 `json:"deps,omitempty"`
}

// TreasurySnapshot is one balance-history entry.
type TreasurySnapshot struct {
	ID             uint64  `json:"id"`
	Balance        int64   `json:"balance"`
	Delta          int64   `json:"delta"`
	RecordedAt     int64   `json:"recorded_at"`
	Epoch          int64   `json:"epoch"`
	Event          string  `json:"event"`
	DisbursementID *uint64 `json:"disbursement_id"`
}

func (s *TreasuryState) shift(d int64) {
	e := &s.Executor
	for _, p := range []*int64{&e.LastErrorAt, &e.LastSuccessAt, &e.LastTickAt, &e.LeaseExpiresAt} {
		if *p != 0 {
			*p += d
		}
	}
	for i := range s.Disbursements {
		x := &s.Disbursements[i]
		x.CreatedAt += d
		x.UpdatedAt += d
		if x.ChangedAt != 0 {
			x.ChangedAt += d
		}
	}
	for i := range s.History {
		s.History[i].RecordedAt += d
	}
}

const tMicro = 1_000_000

var (
	treasuryLagBounds  = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200}
	treasuryTickBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	treasuryStates     = map[string]bool{"draft": true, "voting": true, "queued": true, "timelocked": true,
		"executed": true, "finalized": true, "rolled_back": true}
)

func tStr(s string) *string { return &s }
func tU64(v uint64) *uint64 { return &v }

// healthyTreasury: 10,000,000 BLOCK initially, 1,500,000 accrued and 2,000,000
// paid out in 24 disbursements (the runbook's own audit example): 9,500,000 BLOCK
// now; five queued, two timelocked, all recent; the executor ticking with no error.
func healthyTreasury(now time.Time) TreasuryState {
	n := now.Unix()
	const epochNow = 10_000 // healthy chain height 1,200,000 / 120
	s := TreasuryState{
		Balance: 9_500_000 * tMicro,
		Executor: TreasuryExecutor{LastSuccessAt: n - 3, LastTickAt: n - 3, PendingMatured: 2, StagedIntents: 1,
			LeaseHolder: tStr("node_a"), LeaseExpiresAt: n + 57, Live: true},
		LagSeconds:           []float64{20, 30, 45, 60, 60, 90, 120},
		TickSeconds:          []float64{0.01, 0.02, 0.02, 0.04},
		ErrorsPerSecond:      map[string]float64{"insufficient_funds": 0, "ledger_unavailable": 0, "consensus_timeout": 0},
		TransitionsPerSecond: map[string]float64{"queued": 0.02, "executed": 0.02, "finalized": 0.02},
	}
	day := int64(86_400)
	balance := int64(10_000_000 * tMicro)
	var hid uint64
	snap := func(delta int64, at, epoch int64, event string, did *uint64) {
		hid++
		balance += delta
		s.History = append(s.History, TreasurySnapshot{ID: hid, Balance: balance, Delta: delta, RecordedAt: at, Epoch: epoch, Event: event, DisbursementID: did})
	}
	// 24 paid disbursements (20 finalized × 80,000, 4 executed × 100,000)
	// interleaved with 15 accruals of 100,000 over 30 days.
	for i := 0; i < 24; i++ {
		id := uint64(4490 + i)
		amount, state := int64(80_000*tMicro), "finalized"
		if i >= 20 {
			amount, state = 100_000*tMicro, "executed"
		}
		created := n - 30*day + int64(i)*day
		executed := created + 3*3600
		epoch := int64(9_000 + i*40)
		s.Disbursements = append(s.Disbursements, TreasuryDisbursement{ID: id, Destination: fmt.Sprintf("ct1grantee%02d", i), Amount: amount,
			Memo: "grant", ScheduledEpoch: epoch, CreatedAt: created, UpdatedAt: executed + 600, State: state,
			TxHash: fmt.Sprintf("0x%064x", id), ChangedAt: executed + 600, Title: fmt.Sprintf("Grant %d", id)})
		if i%8 < 5 && i < 24 && len(s.History) < 100 {
			snap(100_000*tMicro, created-3600, epoch-1, "accrual", nil)
		}
		snap(-amount, executed, epoch, "executed", tU64(id))
	}
	for _, h := range s.History {
		_ = h
	}
	// Pending work: five queued (two with dependencies), two timelocked, one in
	// voting, one draft.
	for i := 0; i < 5; i++ {
		id := uint64(4514 + i)
		created := n - int64(10+10*i)*60
		d := TreasuryDisbursement{ID: id, Destination: fmt.Sprintf("ct1queued%02d", i), Amount: 50_000 * tMicro, Memo: "ops",
			ScheduledEpoch: epochNow + 2, CreatedAt: created, UpdatedAt: n - 60, State: "queued", ChangedAt: n - 60, Title: fmt.Sprintf("Ops %d", id)}
		switch i {
		case 1:
			d.Deps = []uint64{4490}
		case 2:
			d.Deps = []uint64{4514}
		}
		s.Disbursements = append(s.Disbursements, d)
	}
	for i, st := range []string{"timelocked", "timelocked", "voting", "draft"} {
		id := uint64(4519 + i)
		if i >= 2 {
			id = uint64(4530 + i - 2)
		}
		s.Disbursements = append(s.Disbursements, TreasuryDisbursement{ID: id, Destination: "ct1later", Amount: 30_000 * tMicro,
			Memo: "later", ScheduledEpoch: epochNow + 10, CreatedAt: n - 7200, UpdatedAt: n - 1800, State: st, ChangedAt: n - 1800,
			Title: fmt.Sprintf("Later %d", id)})
	}
	return s
}

// withQueued appends count queued disbursements from id, created ago seconds before now.
func tWithQueued(s *TreasuryState, now time.Time, id uint64, count int, amount int64, ago int64) {
	n := now.Unix()
	for i := 0; i < count; i++ {
		s.Disbursements = append(s.Disbursements, TreasuryDisbursement{ID: id + uint64(i), Destination: "ct1backlog", Amount: amount,
			Memo: "backlog", ScheduledEpoch: 9_990, CreatedAt: n - ago - int64(i)*30, UpdatedAt: n - ago, State: "queued",
			ChangedAt: n - ago, Title: fmt.Sprintf("Backlog %d", id+uint64(i))})
	}
}

// tAgePending moves every pending disbursement d seconds into the past: on a
// stuck treasury nothing has changed for that long.
func tAgePending(s *TreasuryState, d int64) {
	for i := range s.Disbursements {
		x := &s.Disbursements[i]
		switch x.State {
		case "draft", "voting", "queued", "timelocked":
			x.CreatedAt, x.UpdatedAt, x.ChangedAt = x.CreatedAt-d, x.UpdatedAt-d, x.ChangedAt-d
		}
	}
}

func tExecutorFailing(s *TreasuryState, now time.Time, msg, reason string, rate float64) {
	n := now.Unix()
	tAgePending(s, 2*3600)
	s.Executor.LastError = tStr(msg)
	s.Executor.LastErrorAt = n - 1800
	s.Executor.LastSuccessAt = n - 2*3600
	s.Executor.PendingMatured = 85
	s.ErrorsPerSecond = map[string]float64{"insufficient_funds": 0, "ledger_unavailable": 0, "consensus_timeout": 0}
	s.ErrorsPerSecond[reason] = rate
	s.TransitionsPerSecond = map[string]float64{"queued": 0.01, "executed": 0, "finalized": 0}
	s.LagSeconds = []float64{900, 1800, 3600, 5400}
	tWithQueued(s, now, 5000, 80, 1_000*tMicro, 2*3600)
}

func treasuryScenarios() map[string]func(time.Time) Scenario {
	scenario := func(name, desc string, change func(s *TreasuryState, now time.Time)) func(time.Time) Scenario {
		return func(now time.Time) Scenario {
			sc := Healthy(now)
			sc.Name, sc.Description = name, desc
			change(&sc.Treasury, now)
			return sc
		}
	}
	out := map[string]func(time.Time) Scenario{
		"treasury-dependency-rolled-back": scenario("treasury-dependency-rolled-back",
			"Path A: disbursement 4540 was rolled back; 4541 and 4542 depend on it, 4543 waits behind 4541 (queued for 4 days)",
			func(s *TreasuryState, now time.Time) {
				n := now.Unix()
				s.Disbursements = append(s.Disbursements,
					TreasuryDisbursement{ID: 4540, Destination: "ct1vendor", Amount: 120_000 * tMicro, Memo: "vendor", ScheduledEpoch: 9_960,
						CreatedAt: n - 5*86400, UpdatedAt: n - 4*86400, State: "rolled_back", Reason: "proposal vetoed", ChangedAt: n - 4*86400, Title: "Vendor"},
					TreasuryDisbursement{ID: 4541, Destination: "ct1vendor", Amount: 60_000 * tMicro, Memo: "phase 2", ScheduledEpoch: 9_970,
						CreatedAt: n - 4*86400 - 3600, UpdatedAt: n - 4*86400, State: "queued", ChangedAt: n - 4*86400, Title: "Vendor phase 2", Deps: []uint64{4540}},
					TreasuryDisbursement{ID: 4542, Destination: "ct1vendor", Amount: 40_000 * tMicro, Memo: "phase 3", ScheduledEpoch: 9_970,
						CreatedAt: n - 2*3600, UpdatedAt: n - 2*3600, State: "queued", ChangedAt: n - 2*3600, Title: "Vendor phase 3", Deps: []uint64{4540, 4490}},
					TreasuryDisbursement{ID: 4543, Destination: "ct1vendor", Amount: 20_000 * tMicro, Memo: "phase 4", ScheduledEpoch: 9_975,
						CreatedAt: n - 2*3600, UpdatedAt: n - 2*3600, State: "queued", ChangedAt: n - 2*3600, Title: "Vendor phase 4", Deps: []uint64{4541}})
			}),
		"treasury-insufficient-funds": scenario("treasury-insufficient-funds",
			"Path B: 100,000 BLOCK left after a 9,400,000 BLOCK payout; 2,500,000 BLOCK queued; executor fails with insufficient_funds",
			func(s *TreasuryState, now time.Time) {
				n := now.Unix()
				big := uint64(4550)
				s.Disbursements = append(s.Disbursements, TreasuryDisbursement{ID: big, Destination: "ct1bigspender", Amount: 9_400_000 * tMicro,
					Memo: "reserve transfer", ScheduledEpoch: 9_995, CreatedAt: n - 86400, UpdatedAt: n - 7200, State: "finalized",
					TxHash: "0xbig", ChangedAt: n - 7200, Title: "Reserve transfer"})
				last := s.History[len(s.History)-1]
				s.History = append(s.History, TreasurySnapshot{ID: last.ID + 1, Balance: last.Balance - 9_400_000*tMicro,
					Delta: -9_400_000 * tMicro, RecordedAt: n - 7300, Epoch: 9_995, Event: "executed", DisbursementID: tU64(big)})
				s.Balance = 100_000 * tMicro
				tAgePending(s, 2*3600)
				tWithQueued(s, now, 4551, 5, 500_000*tMicro, 2*3600)
				s.Executor.LastError = tStr("insufficient_funds")
				s.Executor.LastErrorAt = n - 1800
				s.Executor.LastSuccessAt = n - 7200
				s.ErrorsPerSecond["insufficient_funds"] = 0.2
				s.TransitionsPerSecond = map[string]float64{"queued": 0.01, "executed": 0, "finalized": 0}
				s.LagSeconds = []float64{700, 900, 1800, 3600}
			}),
		"treasury-data-corruption": scenario("treasury-data-corruption",
			"Path D: records with inconsistent states (executed without tx_hash, duplicate id, times backwards) and disbursement 4521 executed but not credited in the balance history",
			func(s *TreasuryState, now time.Time) {
				n := now.Unix()
				s.Disbursements = append(s.Disbursements,
					TreasuryDisbursement{ID: 4521, Destination: "ct1grantee99", Amount: 200_000 * tMicro, Memo: "grant", ScheduledEpoch: 9_980,
						CreatedAt: n - 3*86400, UpdatedAt: n - 2*86400, State: "finalized", TxHash: "0x4521", ChangedAt: n - 2*86400, Title: "Grant 4521"},
					TreasuryDisbursement{ID: 4560, Destination: "ct1odd", Amount: 10_000 * tMicro, Memo: "odd", ScheduledEpoch: 9_985,
						CreatedAt: n - 86400, UpdatedAt: n - 80000, State: "executed", ChangedAt: n - 80000, Title: "No tx hash"},
					TreasuryDisbursement{ID: 4561, Destination: "ct1odd", Amount: 10_000 * tMicro, Memo: "odd", ScheduledEpoch: 9_985,
						CreatedAt: n - 86400, UpdatedAt: n - 90000, State: "queued", ChangedAt: n - 90000, Title: "Time runs backwards"},
					TreasuryDisbursement{ID: 4561, Destination: "ct1odd", Amount: 10_000 * tMicro, Memo: "odd", ScheduledEpoch: 9_985,
						CreatedAt: n - 86400, UpdatedAt: n - 3600, State: "timelocked", ChangedAt: n - 3600, Title: "Duplicate"})
				s.Balance -= 200_000 * tMicro
			}),
		"treasury-reference-node": scenario("treasury-reference-node",
			"a healthy treasury served in the reference node's shapes (nested records, tagged status, whole BLOCK)",
			func(s *TreasuryState, now time.Time) { s.Reference = true }),
	}
	for _, e := range []struct{ name, msg, reason, desc string }{
		{"treasury-executor-error", "ledger_unavailable", "ledger_unavailable", "Path C: the executor lost the ledger (ledger_unavailable); 85 queued, errors 2/s"},
		{"treasury-executor-error-consensus-timeout", "consensus_timeout", "consensus_timeout", "Path C: consensus_timeout"},
		{"treasury-executor-error-dependency-cycle", "dependency_cycle_detected", "dependency_cycle_detected", "Path C and A: dependency_cycle_detected with the cycle 7001 → 7002 → 7003 → 7001"},
		{"treasury-executor-error-unknown", "storage engine: I/O error (EIO)", "unknown", "Path C: an error the runbook does not name"},
		{"treasury-executor-error-lease", "lease_held_by node_b", "lease_held", "Path C: another node holds the executor lease, and it expired"},
	} {
		out[e.name] = scenario(e.name, e.desc, func(s *TreasuryState, now time.Time) {
			tExecutorFailing(s, now, e.msg, e.reason, 2)
			s.Executor.Live = false
			n := now.Unix()
			s.Executor.LastTickAt = n - 5
			switch e.name {
			case "treasury-executor-error-dependency-cycle":
				for i, dep := range []uint64{7002, 7003, 7001} {
					id := uint64(7001 + i)
					s.Disbursements = append(s.Disbursements, TreasuryDisbursement{ID: id, Destination: "ct1cycle", Amount: 5_000 * tMicro,
						Memo: "cycle", ScheduledEpoch: 9_990, CreatedAt: n - 3*3600, UpdatedAt: n - 3*3600, State: "queued", ChangedAt: n - 3*3600,
						Title: fmt.Sprintf("Cycle %d", id), Deps: []uint64{dep}})
				}
			case "treasury-executor-error-lease":
				s.Executor.LeaseHolder = tStr("node_b")
				s.Executor.LeaseExpiresAt = n - 600
			}
		})
	}
	return out
}

func treasuryMetrics(sc *Scenario, now time.Time, el float64) []Metric {
	t := &sc.Treasury
	if t.Balance == 0 && len(t.Disbursements) == 0 && t.ErrorsPerSecond == nil {
		return nil // no treasury in this scenario
	}
	counts := map[string]float64{}
	for _, d := range t.Disbursements {
		counts[d.State]++
	}
	backlog := counts["queued"]
	if t.Backlog != nil {
		backlog = *t.Backlog
	}
	out := []Metric{
		Gauge("treasury_disbursement_backlog", nil, backlog),
		Gauge("treasury_balance", nil, float64(t.Balance)/tMicro),
		Histogram("treasury_disbursement_lag_seconds", nil, treasuryLagBounds, 0.05, t.LagSeconds),
		Histogram("treasury_executor_tick_duration_seconds", nil, treasuryTickBounds, 0.2, t.TickSeconds),
	}
	if t.LagP95 != nil {
		out = append(out, Gauge("treasury_disbursement_lag_seconds_p95", nil, *t.LagP95))
	}
	if len(t.ErrorsPerSecond) > 0 {
		m := Metric{Name: "treasury_execution_errors_total", Type: "counter"}
		for _, k := range tSortedKeys(t.ErrorsPerSecond) {
			m.Series = append(m.Series, Series{Labels: map[string]string{"reason": k}, PerSecond: t.ErrorsPerSecond[k], Integer: true})
		}
		out = append(out, m)
	}
	if len(t.TransitionsPerSecond) > 0 {
		m := Metric{Name: "governance_disbursements_total", Type: "counter"}
		for _, k := range tSortedKeys(t.TransitionsPerSecond) {
			m.Series = append(m.Series, Series{Labels: map[string]string{"status": k}, Value: counts[k], PerSecond: t.TransitionsPerSecond[k], Integer: true})
		}
		out = append(out, m)
	}
	return out
}

func tSortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func tInvalid(format string, args ...any) *rpc.Error {
	return &rpc.Error{Code: rpc.CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}

// executorWire is the executor as served at now.
func (t *TreasuryState) executorWire(now time.Time) map[string]any {
	e := t.Executor
	if e.Live {
		n := now.Unix()
		e.LastTickAt, e.LeaseExpiresAt = n-2, n+58
		if e.LastError == nil {
			e.LastSuccessAt = n - 2
		}
	}
	out := map[string]any{"last_error": e.LastError, "last_error_at": tNullIfZero(e.LastErrorAt), "last_success_at": tNullIfZero(e.LastSuccessAt),
		"last_tick_at": e.LastTickAt, "pending_matured": e.PendingMatured, "staged_intents": e.StagedIntents,
		"lease_holder": e.LeaseHolder, "lease_expires_at": tNullIfZero(e.LeaseExpiresAt)}
	if t.Reference { // the reference node omits absent options
		for k, v := range out {
			switch x := v.(type) {
			case nil:
				delete(out, k)
			case *string:
				if x == nil {
					delete(out, k)
				}
			}
		}
	}
	return out
}

func tNullIfZero(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// disbursementWire is one record in the protocol's shape, or the reference node's.
func (t *TreasuryState) disbursementWire(d TreasuryDisbursement) any {
	deps := d.Deps
	if deps == nil {
		deps = []uint64{}
	}
	if !t.Reference {
		status := map[string]any{"state": d.State, "changed_at": d.ChangedAt}
		if d.Reason != "" {
			status["reason"] = d.Reason
		}
		if d.TxHash != "" {
			status["tx_hash"] = d.TxHash
		}
		return map[string]any{"id": d.ID, "destination": d.Destination, "amount": d.Amount, "memo": d.Memo,
			"scheduled_epoch": d.ScheduledEpoch, "created_at": d.CreatedAt, "updated_at": d.UpdatedAt, "status": status,
			"proposal": map[string]any{"title": d.Title, "deps": deps}}
	}
	var status map[string]any
	switch d.State {
	case "draft":
		status = map[string]any{"Draft": map[string]any{"created_at": d.CreatedAt}}
	case "voting":
		status = map[string]any{"Voting": map[string]any{"vote_deadline_epoch": d.ScheduledEpoch}}
	case "queued":
		status = map[string]any{"Queued": map[string]any{"queued_at": d.ChangedAt, "activation_epoch": d.ScheduledEpoch}}
	case "timelocked":
		status = map[string]any{"Timelocked": map[string]any{"ready_epoch": d.ScheduledEpoch}}
	case "executed":
		status = map[string]any{"Executed": map[string]any{"tx_hash": d.TxHash, "executed_at": d.ChangedAt}}
	case "finalized":
		status = map[string]any{"Finalized": map[string]any{"tx_hash": d.TxHash, "executed_at": d.ChangedAt, "finalized_at": d.ChangedAt}}
	default:
		status = map[string]any{"RolledBack": map[string]any{"reason": d.Reason, "rolled_back_at": d.ChangedAt}}
	}
	return map[string]any{"deps": deps, "disbursement": map[string]any{"id": d.ID, "destination": d.Destination,
		"amount_ct": float64(d.Amount) / tMicro, "amount_it": 0, "memo": d.Memo, "scheduled_epoch": d.ScheduledEpoch,
		"created_at": d.CreatedAt, "status": status}}
}

func (n *Node) registerTreasury() {
	n.handle("gov.treasury.balance", func(ctx context.Context, params json.RawMessage) (any, error) {
		var out map[string]any
		n.view(func(s *Scenario, now time.Time) {
			t := &s.Treasury
			if t.Reference {
				out = map[string]any{"balance_ct": float64(t.Balance) / tMicro, "executor": t.executorWire(now)}
			} else {
				out = map[string]any{"balance": t.Balance, "executor": t.executorWire(now)}
			}
		})
		return out, nil
	})
	n.handle("gov.treasury.disbursements", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Status string `json:"status"`
			Limit  int    `json:"limit"`
			Cursor *int64 `json:"cursor"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.Status != "" && !treasuryStates[p.Status] {
			return nil, tInvalid(`param "status": unknown state %q`, p.Status)
		}
		limit, err := listLimit(p.Limit)
		if err != nil {
			return nil, err
		}
		var out map[string]any
		n.view(func(s *Scenario, now time.Time) {
			t := &s.Treasury
			var match []TreasuryDisbursement
			for _, d := range t.Disbursements {
				if p.Status == "" || d.State == p.Status {
					match = append(match, d)
				}
			}
			items, next := pageAfter(match, func(d TreasuryDisbursement) int64 { return int64(d.ID) }, p.Cursor, limit)
			page := []any{}
			for _, d := range items {
				page = append(page, t.disbursementWire(d))
			}
			out = map[string]any{"disbursements": page, "next_cursor": next, "total": len(match)}
		})
		return out, nil
	})
	n.handle("gov.treasury.disbursement", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			ID *uint64 `json:"id"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.ID == nil {
			return nil, tInvalid(`param "id" is required`)
		}
		var out any
		n.view(func(s *Scenario, now time.Time) {
			for _, d := range s.Treasury.Disbursements {
				if d.ID == *p.ID {
					out = s.Treasury.disbursementWire(d)
					return
				}
			}
		})
		if out == nil {
			return nil, &rpc.Error{Code: rpc.CodeNotFound, Message: fmt.Sprintf("unknown disbursement %d", *p.ID)}
		}
		return out, nil
	})
	n.handle("gov.treasury.rollback_disbursement", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			ID     *uint64 `json:"id"`
			Reason string  `json:"reason"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.ID == nil {
			return nil, tInvalid(`param "id" is required`)
		}
		if p.Reason == "" {
			return nil, tInvalid(`param "reason" is required`)
		}
		var rerr *rpc.Error
		found := false
		n.view(func(s *Scenario, now time.Time) {
			t := &s.Treasury
			for i := range t.Disbursements {
				d := &t.Disbursements[i]
				if d.ID != *p.ID {
					continue
				}
				found = true
				switch d.State {
				case "executed", "finalized", "rolled_back":
					rerr = tInvalid("disbursement %d is %s: it cannot be rolled back", d.ID, d.State)
					return
				}
				ts := now.Unix()
				d.State, d.Reason, d.ChangedAt, d.UpdatedAt = "rolled_back", p.Reason, ts, ts
				var last TreasurySnapshot
				if len(t.History) > 0 {
					last = t.History[len(t.History)-1]
				} else {
					last.Balance = t.Balance
				}
				t.History = append(t.History, TreasurySnapshot{ID: last.ID + 1, Balance: last.Balance, RecordedAt: ts,
					Epoch: s.Chain.HeightAt(n.elapsed(now)) / 120, Event: "cancelled", DisbursementID: tU64(d.ID)})
				return
			}
		})
		if !found {
			return nil, &rpc.Error{Code: rpc.CodeNotFound, Message: fmt.Sprintf("unknown disbursement %d", *p.ID)}
		}
		if rerr != nil {
			return nil, rerr
		}
		return map[string]any{"ok": true, "message": fmt.Sprintf("disbursement %d rolled back: %s", *p.ID, p.Reason)}, nil
	})
	n.handle("gov.treasury.balance_history", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Cursor    *int64 `json:"cursor"`
			Limit     int    `json:"limit"`
			FromEpoch *int64 `json:"from_epoch"`
			ToEpoch   *int64 `json:"to_epoch"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		limit, err := listLimit(p.Limit)
		if err != nil {
			return nil, err
		}
		var out map[string]any
		n.view(func(s *Scenario, now time.Time) {
			t := &s.Treasury
			var match []TreasurySnapshot
			for _, h := range t.History {
				if (p.FromEpoch == nil || h.Epoch >= *p.FromEpoch) && (p.ToEpoch == nil || h.Epoch <= *p.ToEpoch) {
					match = append(match, h)
				}
			}
			items, next := pageAfter(match, func(h TreasurySnapshot) int64 { return int64(h.ID) }, p.Cursor, limit)
			page := []any{}
			for _, h := range items {
				if t.Reference {
					page = append(page, map[string]any{"id": h.ID, "balance_ct": float64(h.Balance) / tMicro, "delta_ct": float64(h.Delta) / tMicro,
						"recorded_at": h.RecordedAt, "epoch": h.Epoch, "event": tCapitalize(h.Event), "disbursement_id": h.DisbursementID})
				} else {
					page = append(page, h)
				}
			}
			out = map[string]any{"snapshots": page, "next_cursor": next, "current_balance": t.Balance}
		})
		return out, nil
	})
}

func tCapitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
