package receipts

import (
	"errors"
	"fmt"

	"github.com/theblock/tbops/rpc"
)

// Reason is why a receipt was rejected. The first three are the values of the
// reason label of receipt_validation_errors_total; min_payment rejections are
// counted in receipt_min_payment_rejected_total instead.
type Reason string

// Rejection reasons.
const (
	ReasonSchemaMismatch   Reason = "schema_mismatch"
	ReasonDuplicate        Reason = "duplicate_detection"
	ReasonSignatureInvalid Reason = "signature_invalid"
	ReasonMinPayment       Reason = "min_payment"
)

// Reasons returns the four rejection reasons.
func Reasons() []Reason {
	return []Reason{ReasonSchemaMismatch, ReasonDuplicate, ReasonSignatureInvalid, ReasonMinPayment}
}

// Sentinels matched by errors.Is through a *RejectError.
var (
	ErrSchemaMismatch   = errors.New(string(ReasonSchemaMismatch))
	ErrDuplicate        = errors.New(string(ReasonDuplicate))
	ErrSignatureInvalid = errors.New(string(ReasonSignatureInvalid))
	ErrMinPayment       = errors.New(string(ReasonMinPayment))
	// ErrStale matches a receipt rejected because its block is older than the
	// duplicate-detection window (reason duplicate_detection: uniqueness cannot be
	// proven, so accepting it would let a replay through).
	ErrStale = errors.New("older than the duplicate-detection window")
	// ErrUnknownMarket is returned for a market name that is not one of the four.
	ErrUnknownMarket = errors.New("unknown market")
)

// Transport errors of the node client: rpc's sentinels, aliased so that
// errors.Is(err, receipts.ErrUnauthorized) reads naturally. errors.As reaches
// *rpc.CallError (method, URL, attempts) and the node's *rpc.Error through
// every error the client returns.
var (
	ErrUnauthorized   = rpc.ErrUnauthorized
	ErrRateLimited    = rpc.ErrRateLimited
	ErrNotFound       = rpc.ErrNotFound
	ErrMethodNotFound = rpc.ErrMethodNotFound
	ErrInvalidParams  = rpc.ErrInvalidParams
	ErrUnavailable    = rpc.ErrUnavailable
	ErrMalformed      = rpc.ErrMalformed
)

// RPCError is the JSON-RPC error object a node sent (rpc.Error); reach it
// with errors.As.
type RPCError = rpc.Error

// RejectError is why the Validator (or DecodeReceipt) refused a receipt.
type RejectError struct {
	Reason    Reason
	ReceiptID string
	Market    Market
	// Field names the offending field for schema mismatches and min-payment
	// rejections ("" when the whole receipt is at fault).
	Field string
	// Detail says what was wrong in words.
	Detail string
	// Stale is set for a receipt older than the duplicate-detection window.
	Stale bool
}

func (e *RejectError) Error() string {
	s := "receipt"
	if e.ReceiptID != "" {
		s += fmt.Sprintf(" %q", e.ReceiptID)
	}
	s += " rejected: " + string(e.Reason)
	if e.Field != "" {
		s += ": field " + e.Field
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is matches the sentinel of the error's reason (and ErrStale for stale receipts).
func (e *RejectError) Is(target error) bool {
	switch target {
	case ErrSchemaMismatch:
		return e.Reason == ReasonSchemaMismatch
	case ErrDuplicate:
		return e.Reason == ReasonDuplicate
	case ErrSignatureInvalid:
		return e.Reason == ReasonSignatureInvalid
	case ErrMinPayment:
		return e.Reason == ReasonMinPayment
	case ErrStale:
		return e.Stale
	}
	return false
}

// ReasonOf returns the rejection reason in err, or "" when err is not a rejection.
func ReasonOf(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

func schemaErr(r Receipt, field, detail string) *RejectError {
	return &RejectError{Reason: ReasonSchemaMismatch, ReceiptID: r.ReceiptID, Market: r.Market, Field: field, Detail: detail}
}
