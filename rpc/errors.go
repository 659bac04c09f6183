package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// JSON-RPC error codes of the wire contract (PROTOCOL.md section 1).
const (
	CodeParseError        = -32700
	CodeInvalidRequest    = -32600
	CodeMethodNotFound    = -32601
	CodeInvalidParams     = -32602
	CodeInternal          = -32603
	CodeRateLimited       = -32001
	CodeNotFound          = -32004
	CodeSignatureFailed   = -33001
	CodeNonceReplay       = -33007
	CodeTimestampSkew     = -33008
	CodeUnauthorized      = -33009
	CodeEnergyRateLimited = -33010
)

// Sentinel errors, matched with errors.Is through *Error, *CallError and wrapping.
var (
	ErrUnauthorized     = errors.New("unauthorized")
	ErrRateLimited      = errors.New("rate limited")
	ErrNotFound         = errors.New("not found")
	ErrMethodNotFound   = errors.New("method not found")
	ErrInvalidParams    = errors.New("invalid params")
	ErrUnavailable      = errors.New("node unavailable")
	ErrMalformed        = errors.New("malformed JSON-RPC response")
	ErrResponseTooLarge = errors.New("response too large")
	// ErrRedirect is a redirect the client did not follow: any redirect of a
	// Call, and a Read's redirect to another scheme or host, one that would turn
	// the POST into a GET, or one too many.
	ErrRedirect = errors.New("redirect not followed")
)

// Error is a JSON-RPC error object as the node sent it.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Error prints the code and message, and the data when there is some.
func (e *Error) Error() string {
	if len(e.Data) > 0 && string(e.Data) != "null" {
		return fmt.Sprintf("JSON-RPC error %d: %s (data %s)", e.Code, e.Message, e.Data)
	}
	return fmt.Sprintf("JSON-RPC error %d: %s", e.Code, e.Message)
}

// Is maps the contract's codes to the package's sentinel errors.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Code == CodeUnauthorized
	case ErrRateLimited:
		return e.Code == CodeRateLimited || e.Code == CodeEnergyRateLimited
	case ErrNotFound:
		return e.Code == CodeNotFound
	case ErrMethodNotFound:
		return e.Code == CodeMethodNotFound
	case ErrInvalidParams:
		return e.Code == CodeInvalidParams
	}
	return false
}

// RetryAfter returns error.data.retry_after_ms as a duration: 0 when absent,
// not a number or not positive, and the longest Duration when it would not fit
// in one (it never wraps).
func (e *Error) RetryAfter() time.Duration {
	var d struct {
		RetryAfterMS json.Number `json:"retry_after_ms"`
	}
	if len(e.Data) == 0 || json.Unmarshal(e.Data, &d) != nil {
		return 0
	}
	ms, err := strconv.ParseFloat(d.RetryAfterMS.String(), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // ErrRange: ±Inf, which saturates
		return 0
	}
	return saturate(ms, time.Millisecond)
}

// Reason returns error.data.reason (as in -33001 signature failures), or "".
func (e *Error) Reason() string {
	var d struct {
		Reason string `json:"reason"`
	}
	if len(e.Data) == 0 || json.Unmarshal(e.Data, &d) != nil {
		return ""
	}
	return d.Reason
}

// CallError is what every failed call returns: the method and URL it concerned,
// the HTTP status when there was one, and the cause. errors.As reaches the
// *Error inside; errors.Is reaches the sentinels.
type CallError struct {
	Method string
	// URL is the endpoint with its password (if any) hidden.
	URL        string
	HTTPStatus int
	// RetryAfter is the delay the server asked for (Retry-After or
	// error.data.retry_after_ms), 0 when it asked for none.
	RetryAfter time.Duration
	// Attempts is how many requests were sent.
	Attempts int
	Err      error
}

// Error says what failed: "method at URL: cause (HTTP status, attempts, retry
// after)", the details present only when they say something.
func (e *CallError) Error() string {
	var details []string
	if e.HTTPStatus != 0 && e.HTTPStatus != 200 {
		details = append(details, fmt.Sprintf("HTTP %d", e.HTTPStatus))
	}
	if e.Attempts > 1 {
		details = append(details, fmt.Sprintf("%d attempts", e.Attempts))
	}
	if e.RetryAfter > 0 {
		details = append(details, fmt.Sprintf("retry after %s", e.RetryAfter))
	}
	s := fmt.Sprintf("%s at %s: %v", e.Method, e.URL, e.Err)
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *CallError) Unwrap() error { return e.Err }

// RetryAfter returns the delay the server asked for in err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ce *CallError
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		return ce.RetryAfter, true
	}
	var je *Error
	if errors.As(err, &je) {
		if d := je.RetryAfter(); d > 0 {
			return d, true
		}
	}
	return 0, false
}
