package node

import (
	"errors"

	"github.com/theblock/tbops/rpc"
)

// Sentinel errors, matched with errors.Is. Every call error is an
// *rpc.CallError (errors.As) naming the method and URL; a JSON-RPC error
// object inside it is an *rpc.Error.
var (
	// ErrMethodNotFound is -32601: the node does not serve the method (the
	// reference node serves no node.* method). The node is reachable.
	ErrMethodNotFound = rpc.ErrMethodNotFound
	// ErrNotFound is -32004: ledger.inspect of an unknown account.
	ErrNotFound = rpc.ErrNotFound
	// ErrInvalidParams is -32602, or a parameter refused before sending.
	ErrInvalidParams = rpc.ErrInvalidParams
	// ErrUnauthorized is -33009.
	ErrUnauthorized = rpc.ErrUnauthorized
	// ErrRateLimited is -32001 or HTTP 429; rpc.RetryAfter gives the delay.
	ErrRateLimited = rpc.ErrRateLimited
	// ErrUnavailable is no answer: the connection failed or the deadline passed.
	ErrUnavailable = rpc.ErrUnavailable
	// ErrMalformed is an answer that is not JSON-RPC (an HTML page, truncated JSON).
	ErrMalformed = rpc.ErrMalformed
	// ErrBadResult is a JSON-RPC result that is not the contract's shape (a
	// field of the wrong type): the node answered, but not as PROTOCOL.md says.
	ErrBadResult = errors.New("result does not match the contract")
)
