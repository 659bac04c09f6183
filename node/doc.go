// Package node is the node-health runbook: the typed client for a node's own
// methods (PROTOCOL.md sections 2 and 9) and the diagnosis `tbops doctor` runs
// before every other runbook, since all of them depend on it: does the node
// answer, is it in sync, does it have peers, is consensus healthy, and does
// its height move?
//
// # The client
//
// NewClient (or NewClientFromRPC, to share a transport) calls node.status,
// node.consensus_status and ledger.inspect, and the reference node's
// mempool.stats and consensus.difficulty. Every field a node may leave out is
// a pointer: nil is "the node did not say", never a zero. Errors are the
// transport's *rpc.CallError (errors.As), matching this package's sentinels
// (errors.Is: ErrMethodNotFound for -32601, ErrUnavailable for no answer, …);
// a result of the wrong shape is ErrBadResult.
//
// # The diagnosis
//
// NewRunbook binds a client and a metrics source into a tbops.Runbook with id
// "node-health". Its symptoms:
//
//   - rpc-unreachable (critical): no call got a JSON-RPC answer — no HTTP
//     answer, or one that is not JSON-RPC (an HTML page from a proxy). Any
//     JSON-RPC answer, an error object such as -32601 included, shows a
//     reachable node.
//   - syncing, no-peers (warning): node.status' syncing and peers.
//   - consensus-unhealthy: node.consensus_status' status, critical when
//     stalled, a warning when degraded.
//   - height-not-progressing (critical): the height has not moved in
//     ProgressWindow, decided by the rule of the height metric the node exports
//     (see Rules), or as moving when block_mined_total rose inside the window.
//
// A method the node does not serve (-32601; the reference node serves no
// node.* method) leaves its symptoms unknown, with the method named in the
// symptom's detail and in a warning, and the diagnosis then asks the reference
// node's methods and reads the height from the metrics instead:
// block_height_total (the contract's counter), else the block_height gauge.
// A field the node leaves out leaves its symptom unknown too.
//
// Progress is a windowed condition, decided only from samples that cover
// ProgressWindow (a height that moved inside the window is known to move): on
// a source that has seen one second of a stalled node it is unknown, with a
// warning saying how much was observed and what would decide it, never a page.
// The Alerts block is promq.EvalRule of each of Rules() on the same source,
// the rules `tbops rules` prints.
//
// Host probes: none. The package reads no environment and runs nothing on
// the host; it exports no metrics of its own.
package node
