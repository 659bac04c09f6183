package treasury

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/theblock/tbops"
)

// State is a disbursement's lifecycle state (PROTOCOL.md section 3).
type State string

// The disbursement states.
const (
	StateDraft      State = "draft"
	StateVoting     State = "voting"
	StateQueued     State = "queued"
	StateTimelocked State = "timelocked"
	StateExecuted   State = "executed"
	StateFinalized  State = "finalized"
	StateRolledBack State = "rolled_back"
)

// States lists every state in lifecycle order.
func States() []State {
	return []State{StateDraft, StateVoting, StateQueued, StateTimelocked, StateExecuted, StateFinalized, StateRolledBack}
}

// Valid says whether s is one of the protocol's states.
func (s State) Valid() bool {
	switch s {
	case StateDraft, StateVoting, StateQueued, StateTimelocked, StateExecuted, StateFinalized, StateRolledBack:
		return true
	}
	return false
}

// Done says whether the disbursement paid out (executed or finalized): a
// dependency in this state is satisfied.
func (s State) Done() bool { return s == StateExecuted || s == StateFinalized }

// Pending says whether the disbursement has not reached a final state yet
// (draft, voting, queued, timelocked).
func (s State) Pending() bool {
	return s == StateDraft || s == StateVoting || s == StateQueued || s == StateTimelocked
}

// Rollbackable says whether the node accepts a rollback of a disbursement in
// this state (it refuses executed, finalized and rolled_back with -32602).
func (s State) Rollbackable() bool { return s.Pending() }

// Status is a disbursement's status object.
type Status struct {
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
	TxHash string `json:"tx_hash,omitempty"`
	// ChangedAt is when the disbursement entered State, Unix seconds; nil
	// when the record does not say (some of the reference node's variants).
	ChangedAt *int64 `json:"changed_at"`
}

// changed is ChangedAt, 0 when the record does not say.
func (s Status) changed() int64 { return orZero(s.ChangedAt) }

// Proposal is the governance proposal behind a disbursement.
type Proposal struct {
	Title string   `json:"title"`
	Deps  []uint64 `json:"deps"`
}

// Disbursement is one treasury disbursement in the protocol's (flat) shape.
// Times are Unix seconds as on the wire; Amount is micro-BLOCK. Decoding also
// accepts the reference node's shapes (see DecodeDisbursement); encoding always
// writes the protocol shape.
type Disbursement struct {
	ID             uint64       `json:"id"`
	Destination    string       `json:"destination"`
	Amount         tbops.Amount `json:"amount"`
	Memo           string       `json:"memo"`
	ScheduledEpoch int64        `json:"scheduled_epoch"`
	CreatedAt      int64        `json:"created_at"`
	UpdatedAt      int64        `json:"updated_at"`
	Status         Status       `json:"status"`
	Proposal       Proposal     `json:"proposal"`
}

// Created returns CreatedAt as a time.
func (d Disbursement) Created() time.Time { return time.Unix(d.CreatedAt, 0).UTC() }

// Updated returns the latest of UpdatedAt and Status.ChangedAt as a time.
func (d Disbursement) Updated() time.Time {
	return time.Unix(max(d.UpdatedAt, d.Status.changed()), 0).UTC()
}

// UnmarshalJSON accepts both the protocol shape and the reference node's; see
// DecodeDisbursement.
func (d *Disbursement) UnmarshalJSON(raw []byte) error {
	v, err := DecodeDisbursement(raw)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ErrRecord is wrapped by every error about a malformed record.
var ErrRecord = errors.New("malformed treasury record")

// RecordError says which field of a record was wrong and why.
type RecordError struct {
	// ID is the record's id when it could be read, else 0.
	ID    uint64
	Field string
	Err   error
}

// Error names the record, the field and what was wrong with it.
func (e *RecordError) Error() string {
	id := ""
	if e.ID != 0 {
		id = fmt.Sprintf(" %d", e.ID)
	}
	return fmt.Sprintf("%v%s: field %q: %v", ErrRecord, id, e.Field, e.Err)
}

// Unwrap lets errors.Is match ErrRecord.
func (e *RecordError) Unwrap() []error { return []error{ErrRecord, e.Err} }

// maxBLOCK bounds amounts so that micro-BLOCK fits in an int64.
const maxBLOCK = math.MaxInt64 / tbops.MicroPerBLOCK

// DecodeDisbursement decodes one disbursement record. It accepts the protocol
// shape and the reference node's (PROTOCOL.md section 9):
//
//   - nested: {"deps":[…],"disbursement":{…}} (deps outside, record inside);
//   - status as a tagged object {"Queued":{"queued_at":…}} (variants Draft,
//     Voting, Queued, Timelocked, Executed, Finalized, RolledBack), as a bare
//     variant or state string, or as the protocol's {"state":…} object;
//   - amount as "amount" or "amount_ct".
//
// A record in the reference node's shape (nested, or with a tagged status)
// carries amounts in whole BLOCK (fractions allowed); a protocol record carries
// integer micro-BLOCK. Errors are *RecordError naming the field.
func DecodeDisbursement(raw []byte) (Disbursement, error) {
	var d Disbursement
	var top map[string]json.RawMessage
	if err := decodeObject(raw, &top); err != nil {
		return d, &RecordError{Field: "(record)", Err: err}
	}
	rec, reference := top, false
	var outerDeps json.RawMessage
	if inner, ok := top["disbursement"]; ok && top["id"] == nil {
		reference = true
		rec = nil
		if err := decodeObject(inner, &rec); err != nil {
			return d, &RecordError{Field: "disbursement", Err: err}
		}
		outerDeps = top["deps"]
	}
	fail := func(field string, err error) (Disbursement, error) {
		return Disbursement{}, &RecordError{ID: d.ID, Field: field, Err: err}
	}
	idRaw, ok := rec["id"]
	if !ok || isNull(idRaw) {
		return fail("id", errors.New("missing"))
	}
	if err := decodeUint(idRaw, &d.ID); err != nil {
		return fail("id", err)
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"destination", &d.Destination}, {"memo", &d.Memo}} {
		if v, ok := rec[f.name]; ok && !isNull(v) {
			if err := json.Unmarshal(v, f.dst); err != nil {
				return fail(f.name, errors.New("want a string"))
			}
		}
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"scheduled_epoch", &d.ScheduledEpoch}, {"created_at", &d.CreatedAt}, {"updated_at", &d.UpdatedAt}} {
		if v, ok := rec[f.name]; ok && !isNull(v) {
			if err := decodeInt(v, f.dst); err != nil {
				return fail(f.name, err)
			}
		}
	}
	if v, ok := rec["status"]; ok && !isNull(v) {
		st, tagged, err := decodeStatus(v)
		if err != nil {
			return fail("status", err)
		}
		d.Status = st
		reference = reference || tagged
	} else {
		return fail("status", errors.New("missing"))
	}
	amountField := "amount"
	amt, ok := rec["amount"]
	if !ok || isNull(amt) {
		amountField = "amount_ct"
		amt, ok = rec["amount_ct"]
	}
	if ok && !isNull(amt) {
		a, err := decodeAmount(amt, reference)
		if err != nil {
			return fail(amountField, err)
		}
		d.Amount = a
	}
	if v, ok := rec["proposal"]; ok && !isNull(v) {
		var p struct {
			Title string          `json:"title"`
			Deps  json.RawMessage `json:"deps"`
		}
		if err := json.Unmarshal(v, &p); err != nil {
			return fail("proposal", errors.New("want an object {title, deps}"))
		}
		d.Proposal.Title = p.Title
		if len(p.Deps) > 0 && !isNull(p.Deps) {
			deps, err := decodeDeps(p.Deps)
			if err != nil {
				return fail("proposal.deps", err)
			}
			d.Proposal.Deps = deps
		}
	}
	if len(outerDeps) > 0 && !isNull(outerDeps) {
		deps, err := decodeDeps(outerDeps)
		if err != nil {
			return fail("deps", err)
		}
		d.Proposal.Deps = deps
	}
	if d.UpdatedAt == 0 {
		d.UpdatedAt = max(d.Status.changed(), d.CreatedAt)
	}
	return d, nil
}

func decodeObject(raw []byte, dst *map[string]json.RawMessage) error {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return errors.New("want a JSON object")
	}
	if err := json.Unmarshal(t, dst); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// decodeNumber reads a JSON number, or a decimal string.
func decodeNumber(raw json.RawMessage) (json.Number, error) {
	// A bare number literal, the usual case, is its own text: no decoder (and its
	// buffer) per field, which was a sixth of what doctor allocated over a fleet.
	if t := bytes.TrimRight(raw, " \t\r\n"); len(t) > 0 && (t[0] == '-' || '0' <= t[0] && t[0] <= '9') && json.Valid(t) {
		return json.Number(t), nil
	}
	return decodeNumberToken(raw)
}

// decodeNumberToken is decodeNumber by a decoder reading the first token.
func decodeNumberToken(raw json.RawMessage) (json.Number, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", errors.New("want a number")
	}
	n, ok := v.(json.Number)
	if !ok {
		// Some encoders write integers as strings; accept a decimal string.
		s, isStr := v.(string)
		if !isStr {
			return "", errors.New("want a number")
		}
		n = json.Number(strings.TrimSpace(s))
		if _, err := n.Float64(); err != nil {
			return "", fmt.Errorf("want a number, got %q", s)
		}
	}
	return n, nil
}

func decodeInt(raw json.RawMessage, dst *int64) error {
	n, err := decodeNumber(raw)
	if err != nil {
		return err
	}
	v, err := n.Int64()
	if err != nil {
		return fmt.Errorf("want an integer, got %s", n)
	}
	*dst = v
	return nil
}

func decodeUint(raw json.RawMessage, dst *uint64) error {
	var v int64
	if err := decodeInt(raw, &v); err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("want a non-negative integer, got %d", v)
	}
	*dst = uint64(v)
	return nil
}

// decodeAmount reads micro-BLOCK integers, or whole BLOCK (a float) when block is set.
func decodeAmount(raw json.RawMessage, block bool) (tbops.Amount, error) {
	n, err := decodeNumber(raw)
	if err != nil {
		return 0, err
	}
	if !block {
		v, err := n.Int64()
		if err != nil {
			return 0, fmt.Errorf("want integer micro-BLOCK, got %s", n)
		}
		return tbops.Amount(v), nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > maxBLOCK {
		return 0, fmt.Errorf("want an amount in BLOCK, got %s", n)
	}
	return tbops.AmountFromBLOCK(f), nil
}

func decodeDeps(raw json.RawMessage) ([]uint64, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errors.New("want an array of ids")
	}
	out := make([]uint64, 0, len(items))
	for i, it := range items {
		var id uint64
		if err := decodeUint(it, &id); err != nil {
			return nil, fmt.Errorf("element %d: %v", i, err)
		}
		out = append(out, id)
	}
	return out, nil
}

// variants maps the reference node's status variant names (and the protocol's
// state strings) to states.
func stateFromName(name string) (State, bool) {
	k := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), "_", ""))
	switch k {
	case "draft":
		return StateDraft, true
	case "voting":
		return StateVoting, true
	case "queued":
		return StateQueued, true
	case "timelocked":
		return StateTimelocked, true
	case "executed":
		return StateExecuted, true
	case "finalized":
		return StateFinalized, true
	case "rolledback":
		return StateRolledBack, true
	}
	return "", false
}

// timeKeys are the reference node's per-variant timestamps, most specific first.
var timeKeys = []string{"rolled_back_at", "finalized_at", "executed_at", "queued_at", "created_at", "changed_at"}

// decodeStatus reads a status in any accepted shape; tagged reports the
// reference node's tagged or bare-variant form.
func decodeStatus(raw json.RawMessage) (st Status, tagged bool, err error) {
	t := bytes.TrimSpace(raw)
	if len(t) > 0 && t[0] == '"' {
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return st, false, errors.New("invalid string")
		}
		state, ok := stateFromName(s)
		if !ok {
			return st, false, fmt.Errorf("unknown state %q", s)
		}
		return Status{State: state}, s != string(state), nil
	}
	var obj map[string]json.RawMessage
	if err := decodeObject(t, &obj); err != nil {
		return st, false, err
	}
	if sv, ok := obj["state"]; ok {
		var s string
		if err := json.Unmarshal(sv, &s); err != nil {
			return st, false, errors.New(`"state": want a string`)
		}
		state, ok := stateFromName(s)
		if !ok {
			return st, false, fmt.Errorf("unknown state %q", s)
		}
		st.State = state
		if err := statusFields(obj, &st); err != nil {
			return Status{}, false, err
		}
		return st, false, nil
	}
	if len(obj) != 1 {
		return st, false, errors.New(`want {"state":…} or one tagged variant such as {"Queued":{…}}`)
	}
	for name, body := range obj {
		state, ok := stateFromName(name)
		if !ok {
			return st, true, fmt.Errorf("unknown status variant %q", name)
		}
		st.State = state
		if isNull(body) {
			return st, true, nil
		}
		var inner map[string]json.RawMessage
		if err := decodeObject(body, &inner); err != nil {
			return Status{}, true, fmt.Errorf("variant %s: %v", name, err)
		}
		if err := statusFields(inner, &st); err != nil {
			return Status{}, true, fmt.Errorf("variant %s: %v", name, err)
		}
	}
	return st, true, nil
}

func statusFields(obj map[string]json.RawMessage, st *Status) error {
	for _, k := range []string{"reason", "tx_hash"} {
		v, ok := obj[k]
		if !ok || isNull(v) {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("%q: want a string", k)
		}
		if k == "reason" {
			st.Reason = s
		} else {
			st.TxHash = s
		}
	}
	if st.TxHash == "" {
		if v, ok := obj["prior_tx"]; ok && !isNull(v) {
			_ = json.Unmarshal(v, &st.TxHash)
		}
	}
	for _, k := range timeKeys {
		v, ok := obj[k]
		if !ok || isNull(v) {
			continue
		}
		var at int64
		if err := decodeInt(v, &at); err != nil {
			return fmt.Errorf("%q: %v", k, err)
		}
		st.ChangedAt = &at
		break
	}
	return nil
}

// Executor is the executor snapshot inside gov.treasury.balance. Every field
// is nil when the node sent null or nothing (missing is null, never 0); times
// are Unix seconds.
type Executor struct {
	LastError      *string `json:"last_error"`
	LastErrorAt    *int64  `json:"last_error_at"`
	LastSuccessAt  *int64  `json:"last_success_at"`
	LastTickAt     *int64  `json:"last_tick_at"`
	PendingMatured *int64  `json:"pending_matured"`
	StagedIntents  *int64  `json:"staged_intents"`
	LeaseHolder    *string `json:"lease_holder"`
	LeaseExpiresAt *int64  `json:"lease_expires_at"`
}

// Error returns last_error, "" when null.
func (e Executor) Error() string {
	if e.LastError == nil {
		return ""
	}
	return *e.LastError
}

// Holder returns lease_holder, "" when null.
func (e Executor) Holder() string {
	if e.LeaseHolder == nil {
		return ""
	}
	return *e.LeaseHolder
}

// Balance is the answer of gov.treasury.balance. Executor is nil when the node
// sent none.
type Balance struct {
	Balance  tbops.Amount `json:"balance"`
	Executor *Executor    `json:"executor"`
}

// UnmarshalJSON reads the protocol's balance (micro-BLOCK) or the reference
// node's balance_ct (whole BLOCK).
func (b *Balance) UnmarshalJSON(raw []byte) error {
	var obj map[string]json.RawMessage
	if err := decodeObject(raw, &obj); err != nil {
		return &RecordError{Field: "(balance)", Err: err}
	}
	*b = Balance{}
	if v, ok := obj["balance"]; ok && !isNull(v) {
		a, err := decodeAmount(v, false)
		if err != nil {
			return &RecordError{Field: "balance", Err: err}
		}
		b.Balance = a
	} else if v, ok := obj["balance_ct"]; ok && !isNull(v) {
		a, err := decodeAmount(v, true)
		if err != nil {
			return &RecordError{Field: "balance_ct", Err: err}
		}
		b.Balance = a
	} else {
		return &RecordError{Field: "balance", Err: errors.New("missing")}
	}
	if v, ok := obj["executor"]; ok && !isNull(v) {
		var e Executor
		if err := json.Unmarshal(v, &e); err != nil {
			return &RecordError{Field: "executor", Err: err}
		}
		b.Executor = &e
	}
	return nil
}

// Event is a balance-history event kind.
type Event string

// The balance-history events.
const (
	EventAccrual   Event = "accrual"
	EventQueued    Event = "queued"
	EventExecuted  Event = "executed"
	EventCancelled Event = "cancelled"
)

// Snapshot is one balance-history entry: the balance after the event and the
// event's signed delta (micro-BLOCK).
type Snapshot struct {
	ID             uint64       `json:"id"`
	Balance        tbops.Amount `json:"balance"`
	Delta          tbops.Amount `json:"delta"`
	RecordedAt     int64        `json:"recorded_at"`
	Epoch          int64        `json:"epoch"`
	Event          Event        `json:"event"`
	DisbursementID *uint64      `json:"disbursement_id"`
}

// UnmarshalJSON reads the protocol shape and the reference node's
// (balance_ct/delta_ct in whole BLOCK, capitalised event names).
func (s *Snapshot) UnmarshalJSON(raw []byte) error {
	var obj map[string]json.RawMessage
	if err := decodeObject(raw, &obj); err != nil {
		return &RecordError{Field: "(snapshot)", Err: err}
	}
	*s = Snapshot{}
	if v, ok := obj["id"]; ok && !isNull(v) {
		if err := decodeUint(v, &s.ID); err != nil {
			return &RecordError{Field: "id", Err: err}
		}
	}
	fail := func(f string, err error) error { return &RecordError{ID: s.ID, Field: f, Err: err} }
	for _, f := range []struct {
		name, alt string
		dst       *tbops.Amount
	}{{"balance", "balance_ct", &s.Balance}, {"delta", "delta_ct", &s.Delta}} {
		if v, ok := obj[f.name]; ok && !isNull(v) {
			a, err := decodeAmount(v, false)
			if err != nil {
				return fail(f.name, err)
			}
			*f.dst = a
		} else if v, ok := obj[f.alt]; ok && !isNull(v) {
			a, err := decodeAmount(v, true)
			if err != nil {
				return fail(f.alt, err)
			}
			*f.dst = a
		} else if f.name == "balance" {
			return fail("balance", errors.New("missing"))
		}
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"recorded_at", &s.RecordedAt}, {"epoch", &s.Epoch}} {
		if v, ok := obj[f.name]; ok && !isNull(v) {
			if err := decodeInt(v, f.dst); err != nil {
				return fail(f.name, err)
			}
		}
	}
	if v, ok := obj["event"]; ok && !isNull(v) {
		var name string
		if err := json.Unmarshal(v, &name); err != nil {
			// The reference node may tag the event: {"Executed":{"disbursement_id":7}}.
			var tagged map[string]json.RawMessage
			if json.Unmarshal(v, &tagged) != nil || len(tagged) != 1 {
				return fail("event", errors.New("want a string or one tagged variant"))
			}
			for k, body := range tagged {
				name = k
				var inner struct {
					DisbursementID *uint64 `json:"disbursement_id"`
				}
				if json.Unmarshal(body, &inner) == nil && inner.DisbursementID != nil {
					s.DisbursementID = inner.DisbursementID
				}
			}
		}
		s.Event = Event(strings.ToLower(name))
	}
	if v, ok := obj["disbursement_id"]; ok && !isNull(v) {
		var id uint64
		if err := decodeUint(v, &id); err != nil {
			return fail("disbursement_id", err)
		}
		s.DisbursementID = &id
	}
	return nil
}
