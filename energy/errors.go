package energy

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/theblock/tbops/rpc"
)

// Failure reasons of signature verification, as in error.data.reason of -33001
// and the reason label of energy_signature_verification_failures_total.
const (
	ReasonInvalidFormat      = "invalid_format"
	ReasonVerificationFailed = "verification_failed"
	ReasonKeyNotFound        = "key_not_found"
	ReasonSchemeUnsupported  = "scheme_unsupported"
)

// Reasons lists the four failure reasons in the runbook's order.
func Reasons() []string {
	return []string{ReasonInvalidFormat, ReasonVerificationFailed, ReasonKeyNotFound, ReasonSchemeUnsupported}
}

// JSON-RPC error codes of the energy methods (PROTOCOL.md section 1), the
// transport's constants under this package's names.
const (
	// CodeSignatureFailed is -33001: a reading's signature check failed;
	// error.data.reason is one of the Reason constants.
	CodeSignatureFailed = rpc.CodeSignatureFailed
	// CodeNonceReplay is -33007: the reading's nonce is not above the last.
	CodeNonceReplay = rpc.CodeNonceReplay
	// CodeTimestampSkew is -33008: the reading's timestamp is off by more than 300 s.
	CodeTimestampSkew = rpc.CodeTimestampSkew
	// CodeUnauthorized is -33009: missing or wrong bearer token.
	CodeUnauthorized = rpc.CodeUnauthorized
	// CodeRateLimited is -33010: over the energy RPC limit (error.data.retry_after_ms).
	CodeRateLimited = rpc.CodeEnergyRateLimited
)

// Errors a caller matches with errors.Is. The transport's are package rpc's
// sentinels, aliased so that a caller needs no other import; every call error
// is an *rpc.CallError (CallError) naming the method and URL, and a JSON-RPC
// error object inside it is an *rpc.Error (RPCError), both reached with
// errors.As. Local verification errors and a node's -33001/-33007/-33008
// answers to SubmitReading both match the reading sentinels.
var (
	// ErrUnauthorized is -33009: missing or wrong bearer token.
	ErrUnauthorized = rpc.ErrUnauthorized
	// ErrRateLimited is -33010 (and -32001, HTTP 429): RetryAfter gives the delay.
	ErrRateLimited = rpc.ErrRateLimited
	// ErrNotFound is -32004: an unknown provider or dispute.
	ErrNotFound = rpc.ErrNotFound
	// ErrMethodNotFound is -32601: the node does not serve the method (the
	// reference node serves no energy.provider or energy.oracle_keys).
	ErrMethodNotFound = rpc.ErrMethodNotFound
	// ErrInvalidParams is -32602.
	ErrInvalidParams = rpc.ErrInvalidParams
	// ErrUnavailable is no answer: the connection failed or the deadline passed.
	ErrUnavailable = rpc.ErrUnavailable
	// ErrMalformed is an answer that is not JSON-RPC (an HTML page, truncated JSON).
	ErrMalformed = rpc.ErrMalformed

	// ErrInvalidFormat and the three after it are the reasons of -33001.
	ErrInvalidFormat      = errors.New(ReasonInvalidFormat)
	ErrVerificationFailed = errors.New(ReasonVerificationFailed)
	ErrKeyNotFound        = errors.New(ReasonKeyNotFound)
	ErrSchemeUnsupported  = errors.New(ReasonSchemeUnsupported)
	// ErrTimestampSkew is -33008.
	ErrTimestampSkew = errors.New("timestamp skew")
	// ErrNonceReplay is -33007.
	ErrNonceReplay = errors.New("nonce replay")

	// ErrInvalidArgument is an argument refused before anything was sent or
	// read: a status filter the protocol does not know, invalid Options.
	ErrInvalidArgument = errors.New("energy: invalid argument")
)

// RPCError is the JSON-RPC error object a node sent (errors.As target).
type RPCError = rpc.Error

// CallError is what every failed call returns, naming the method and URL
// (errors.As target).
type CallError = rpc.CallError

// RetryAfter returns the delay a rate-limited answer asked for.
func RetryAfter(err error) (time.Duration, bool) { return rpc.RetryAfter(err) }

// VerifyError is a signature verification failure (-33001) with its reason.
type VerifyError struct {
	// Reason is one of the Reason constants.
	Reason     string
	ProviderID string // "" when the reading did not name one
	Detail     string // what exactly failed
}

// Error reads "reason (provider P): detail".
func (e *VerifyError) Error() string {
	s := e.Reason
	if e.ProviderID != "" {
		s += " (provider " + e.ProviderID + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is matches the reason's sentinel error.
func (e *VerifyError) Is(target error) bool {
	switch target {
	case ErrInvalidFormat:
		return e.Reason == ReasonInvalidFormat
	case ErrVerificationFailed:
		return e.Reason == ReasonVerificationFailed
	case ErrKeyNotFound:
		return e.Reason == ReasonKeyNotFound
	case ErrSchemeUnsupported:
		return e.Reason == ReasonSchemeUnsupported
	}
	return false
}

func formatErr(provider, format string, args ...any) error {
	return &VerifyError{Reason: ReasonInvalidFormat, ProviderID: provider, Detail: fmt.Sprintf(format, args...)}
}

func withProvider(err error, provider string) error {
	var ve *VerifyError
	if errors.As(err, &ve) && ve.ProviderID == "" {
		c := *ve
		c.ProviderID = provider
		return &c
	}
	return err
}

// SkewError is a reading whose timestamp is too far from the clock (-33008).
type SkewError struct {
	ProviderID string
	Timestamp  uint64 // the reading's, Unix seconds
	// Skew is timestamp − now: positive in the future, negative in the past.
	Skew time.Duration
	Max  time.Duration // the tolerance
}

// Error says how far off the timestamp is and what to check.
func (e *SkewError) Error() string {
	dir := "in the future"
	d := e.Skew
	if d < 0 {
		dir, d = "in the past", -d
	}
	return fmt.Sprintf("timestamp_skew (provider %s): timestamp %d is %s %s, over the %s tolerance; check the provider's clock (NTP)",
		e.ProviderID, e.Timestamp, d.Round(time.Second), dir, e.Max)
}

// Is matches ErrTimestampSkew.
func (e *SkewError) Is(target error) bool { return target == ErrTimestampSkew }

// NonceError is a nonce that is not above the provider's last accepted one (-33007).
type NonceError struct {
	ProviderID string
	Nonce      uint64 // the reading's
	Last       uint64 // the provider's last accepted nonce
}

// Error says which nonce was refused and why.
func (e *NonceError) Error() string {
	return fmt.Sprintf("nonce_replay (provider %s): nonce %d is not above the last accepted %d; nonces must strictly increase",
		e.ProviderID, e.Nonce, e.Last)
}

// Is matches ErrNonceReplay.
func (e *NonceError) Is(target error) bool { return target == ErrNonceReplay }

// ErrorObject is the JSON-RPC error object a node answers an admission error
// with: -33001 with data.reason, -33007, -33008; nil for nil. Any other error
// is -32603.
func ErrorObject(err error) *rpc.Error {
	var ve *VerifyError
	var se *SkewError
	var ne *NonceError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		return &rpc.Error{Code: CodeSignatureFailed, Message: "signature verification failed: " + ve.Error(), Data: dataOf(map[string]any{"reason": ve.Reason})}
	case errors.As(err, &se):
		return &rpc.Error{Code: CodeTimestampSkew, Message: se.Error(), Data: dataOf(map[string]any{"reason": "timestamp_skew", "skew_seconds": int64(se.Skew / time.Second)})}
	case errors.As(err, &ne):
		return &rpc.Error{Code: CodeNonceReplay, Message: ne.Error(), Data: dataOf(map[string]any{"reason": "nonce_replay", "last_nonce": ne.Last})}
	}
	return &rpc.Error{Code: rpc.CodeInternal, Message: err.Error()}
}

// dataOf encodes an error's data object (maps of strings and numbers always encode).
func dataOf(v map[string]any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// fromRPC turns a node's -33001/-33007/-33008 answer into the local typed
// errors (keeping the call error in the chain).
func fromRPC(err error, r Reading) error {
	var je *rpc.Error
	if !errors.As(err, &je) {
		return err
	}
	switch je.Code {
	case CodeSignatureFailed:
		reason := je.Reason()
		if reason == "" {
			reason = ReasonVerificationFailed
		}
		return errors.Join(&VerifyError{Reason: reason, ProviderID: r.ProviderID, Detail: je.Message}, err)
	case CodeTimestampSkew:
		var d struct {
			Skew int64 `json:"skew_seconds"`
		}
		_ = json.Unmarshal(je.Data, &d)
		return errors.Join(&SkewError{ProviderID: r.ProviderID, Timestamp: r.Timestamp, Skew: time.Duration(d.Skew) * time.Second, Max: DefaultMaxSkew}, err)
	case CodeNonceReplay:
		var d struct {
			Last uint64 `json:"last_nonce"`
		}
		_ = json.Unmarshal(je.Data, &d)
		return errors.Join(&NonceError{ProviderID: r.ProviderID, Nonce: r.Nonce, Last: d.Last}, err)
	}
	return err
}
