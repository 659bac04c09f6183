package main

import (
	"context"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/node"
)

// nodeRunbook is doctor's preflight, "node-health" (package node): is the node
// reachable, in sync, connected, is consensus healthy and does the height move?
func (a *app) nodeRunbook() *runbook {
	return &runbook{id: node.RunbookID, usesMetrics: true, diagnose: func(ctx context.Context, t *target) (tbops.Report, error) {
		return a.nodeRunbookFor(t).Diagnose(ctx)
	}}
}

// nodeRunbookFor is node-health bound to one target, with the command line's
// hints on a node that does not answer.
func (a *app) nodeRunbookFor(t *target) tbops.Runbook {
	rc, err := a.rpcClient(t.rpcURL, "")
	if err != nil {
		return tbops.Func(node.RunbookID, func(context.Context) (tbops.Report, error) { return tbops.Report{}, err })
	}
	return node.NewRunbook(node.NewClientFromRPC(rc), t.src, node.Options{Now: t.now, Hint: rpcHint})
}
