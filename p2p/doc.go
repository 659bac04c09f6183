// Package p2p implements the runbook's "P2P Rate Limiting and Chain Sync"
// section: the p2p knobs and their loader ([LoadConfig]), a per-peer
// sliding-window limiter on requests and bytes ([Limiter]) and the chain-sync
// ticker ([SyncTicker]).
package p2p
