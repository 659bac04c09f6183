package serve

import "errors"

// Errors serve returns; match them with errors.Is.
var (
	// ErrInvalidConfig is a configuration New or an option refused: a node URL
	// that is not http(s), a duplicate node, a non-positive interval.
	ErrInvalidConfig = errors.New("serve: invalid configuration")
	// ErrRunning is returned by Run and Serve when the server already runs.
	ErrRunning = errors.New("serve: already running")
	// ErrClosed is returned by a closed Server or Store.
	ErrClosed = errors.New("serve: closed")
	// ErrNotFound is a transition id the state file does not hold.
	ErrNotFound = errors.New("serve: not found")
	// ErrReadOnly is a write to a state file opened read-only.
	ErrReadOnly = errors.New("serve: state file opened read-only")
	// ErrSchemaVersion is a state file this version cannot read: written by a
	// newer tbops, or not a state file at all.
	ErrSchemaVersion = errors.New("serve: unsupported state file schema")
)
