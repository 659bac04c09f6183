package promq

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error kinds. Every error from the Prometheus client wraps one of these (match
// with errors.Is) inside an *APIError (errors.As) that names the URL and query.
var (
	// ErrBadQuery is a query the server (or this package) rejects: PromQL parse
	// errors, bad parameters (Prometheus errorType "bad_data", HTTP 400).
	ErrBadQuery = errors.New("bad query")
	// ErrExecution is a query that failed while running (errorType "execution", HTTP 422).
	ErrExecution = errors.New("query execution failed")
	// ErrTimeout is a query the server or the client deadline cut short
	// (errorType "timeout", HTTP 503 with it, or the context deadline).
	ErrTimeout = errors.New("query timed out")
	// ErrCanceled is a query the server reports as canceled (errorType "canceled").
	ErrCanceled = errors.New("query canceled")
	// ErrUnavailable is a server that cannot answer now: unreachable, HTTP 5xx,
	// errorType "unavailable" or "internal". Reads are retried on it.
	ErrUnavailable = errors.New("metrics server unavailable")
	// ErrNotFound is an API path the server does not have (HTTP 404, errorType
	// "not_found"): usually a wrong base URL or path prefix.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized is HTTP 401 or 403: missing or wrong credentials or tenant.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRateLimited is HTTP 429. Reads are retried on it, honouring Retry-After.
	ErrRateLimited = errors.New("rate limited")
	// ErrMalformed is a response that is not the Prometheus API's JSON: an HTML
	// page from a proxy, truncated JSON, a missing field.
	ErrMalformed = errors.New("malformed response")
	// ErrTooLarge is a response larger than the client's cap.
	ErrTooLarge = errors.New("response too large")
	// ErrUnsupported is a result this package does not decode, such as an
	// unknown result type.
	ErrUnsupported = errors.New("unsupported result")
	// ErrNativeHistogram is a result holding native-histogram samples, which
	// the model.Vector/Matrix results cannot carry: query a float expression
	// (histogram_quantile, histogram_count, …) instead.
	ErrNativeHistogram = errors.New("native histogram samples are not supported")
)

// APIError is one failed call to a Prometheus-compatible API.
type APIError struct {
	// URL is the endpoint called (base URL and API path, without the query string).
	URL string
	// Query is the PromQL expression or the call's main argument ("" for none).
	Query string
	// Status is the HTTP status (0 when there was no response).
	Status int
	// Type is the API's errorType ("bad_data", "execution", …) when it sent one.
	Type string
	// Message is the API's error text or what went wrong.
	Message string
	// Warnings are the API's warnings, when it sent any with the error.
	Warnings []string
	// Kind is the sentinel (ErrBadQuery, …) errors.Is matches.
	Kind error
	// RetryAfter is the server's Retry-After hint in seconds (0 for none).
	RetryAfter float64
	// Cause is the underlying error when there was no answer (a dial error,
	// context.Canceled, context.DeadlineExceeded), else nil.
	Cause error
}

// Error reads like "query \"rate(x[5m])\" at http://…/api/v1/query: bad query: parse error …".
func (e *APIError) Error() string {
	var b strings.Builder
	if e.Query != "" {
		fmt.Fprintf(&b, "query %q at ", e.Query)
	}
	b.WriteString(e.URL)
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.Status)
		if e.Type != "" {
			b.WriteString(", " + e.Type)
		}
		b.WriteString(")")
	} else if e.Type != "" {
		b.WriteString(" (" + e.Type + ")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the kind and the cause, so errors.Is(err, ErrBadQuery) and
// errors.Is(err, context.Canceled) work.
func (e *APIError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// kindOf maps the API's errorType and the HTTP status to a sentinel.
func kindOf(errorType string, status int) error {
	switch errorType {
	case "bad_data":
		return ErrBadQuery
	case "execution":
		return ErrExecution
	case "timeout":
		return ErrTimeout
	case "canceled":
		return ErrCanceled
	case "unavailable", "internal":
		return ErrUnavailable
	case "not_found":
		return ErrNotFound
	}
	switch {
	case status == http.StatusBadRequest:
		return ErrBadQuery
	case status == http.StatusUnprocessableEntity:
		return ErrExecution
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrUnauthorized
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status == http.StatusGatewayTimeout:
		return ErrTimeout
	case status >= 500:
		return ErrUnavailable
	}
	return ErrMalformed
}

// retryable says whether a read should be tried again after this error.
func retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRateLimited)
}
