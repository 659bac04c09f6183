package main

import (
	"context"
	"fmt"

	"github.com/theblock/tbops"
)

// nodeStatus and consensusStatus are the node methods of PROTOCOL.md section 2.
type nodeStatus struct {
	CurrentBlockHeight int64  `json:"current_block_height"`
	Epoch              int64  `json:"epoch"`
	Syncing            bool   `json:"syncing"`
	Peers              int    `json:"peers"`
	Version            string `json:"version"`
}

type consensusStatus struct {
	Status              string `json:"status"`
	LastFinalizedHeight int64  `json:"last_finalized_height"`
	Round               int64  `json:"round"`
	ValidatorsOnline    int    `json:"validators_online"`
	ValidatorsTotal     int    `json:"validators_total"`
}

// nodeRunbook is doctor's preflight, "node-health": is the node reachable, in
// sync, connected, and is consensus healthy? It is not a runbook section of its
// own; the receipts runbook reads the same calls in its step 4. A stalled
// consensus is critical, a degraded one, a syncing node and a node with no peers
// are warnings.
func (a *app) nodeRunbook() *runbook {
	return &runbook{id: "node-health", diagnose: func(ctx context.Context, t *target) (tbops.Report, error) {
		r := tbops.NewReport("node-health", t.rpcURL, t.now())
		c, err := a.rpcClient(t.rpcURL, "")
		if err != nil {
			return r, err
		}
		var st nodeStatus
		stErr := c.Read(ctx, "node.status", nil, &st)
		reach := tbops.Symptom{ID: "rpc-unreachable", Summary: "node answers node.status", Status: tbops.StatusOK,
			Evidence: []tbops.Evidence{{Source: tbops.SourceRPC, Query: "node.status", Value: tbops.RawOf(st), At: t.now().UTC()}}}
		if stErr != nil {
			stErr = withRPCHint(stErr)
			reach.Firing, reach.Status, reach.Detail = true, tbops.StatusCritical, tbops.RawOf(stErr.Error())
			reach.Summary = "node does not answer node.status"
			reach.Evidence[0].Value = tbops.RawOf(stErr.Error())
		}
		r.Symptoms = append(r.Symptoms, reach)
		if stErr == nil {
			ev := reach.Evidence
			r.Symptoms = append(r.Symptoms,
				tbops.Symptom{ID: "syncing", Summary: "node is syncing", Firing: st.Syncing, Status: warnIf(st.Syncing), Detail: tbops.RawOf(st.Syncing), Evidence: ev},
				tbops.Symptom{ID: "no-peers", Summary: "node has no peers", Firing: st.Peers == 0, Status: warnIf(st.Peers == 0), Value: tbops.Num(st.Peers), Threshold: tbops.Num(0), Evidence: ev})
			r.Steps = append(r.Steps, tbops.Step{ID: "node-status", Title: "Node status", Evidence: ev, Findings: []string{
				fmt.Sprintf("height %d, epoch %d, %d peers, syncing %t, version %s", st.CurrentBlockHeight, st.Epoch, st.Peers, st.Syncing, st.Version)}})
		}

		var cs consensusStatus
		csErr := c.Read(ctx, "node.consensus_status", nil, &cs)
		cons := tbops.Symptom{ID: "consensus-unhealthy", Summary: "consensus is not healthy",
			Evidence: []tbops.Evidence{{Source: tbops.SourceRPC, Query: "node.consensus_status", Value: tbops.RawOf(cs), At: t.now().UTC()}}}
		switch {
		case csErr != nil:
			cons.Status = tbops.StatusUnknown
			cons.Evidence[0].Value = tbops.RawOf(csErr.Error())
			r.Warnf("node.consensus_status: %v", csErr)
		case cs.Status == "healthy":
			cons.Status, cons.Detail = tbops.StatusOK, tbops.RawOf(cs.Status)
		case cs.Status == "degraded":
			cons.Firing, cons.Status, cons.Detail = true, tbops.StatusWarning, tbops.RawOf(cs.Status)
		default:
			cons.Firing, cons.Status, cons.Detail = true, tbops.StatusCritical, tbops.RawOf(cs.Status)
		}
		r.Symptoms = append(r.Symptoms, cons)
		if csErr == nil {
			r.Steps = append(r.Steps, tbops.Step{ID: "consensus", Title: "Consensus status", Evidence: cons.Evidence, Findings: []string{
				fmt.Sprintf("%s: round %d, finalized height %d, %d/%d validators online", cs.Status, cs.Round, cs.LastFinalizedHeight, cs.ValidatorsOnline, cs.ValidatorsTotal)}})
		}
		if cons.Firing || reach.Firing {
			p := tbops.Path{ID: "consensus", Title: "Node or consensus unhealthy", Matched: true,
				Why:     "the node does not answer or consensus is not healthy: every other runbook depends on it",
				Actions: []tbops.Action{{Kind: "check", Command: "contract-cli node consensus --status", Note: "see which validators are offline", DryRun: true}}}
			r.Paths = append(r.Paths, p)
		}
		r.Finalize()
		return r, nil
	}}
}

func warnIf(b bool) tbops.Status {
	if b {
		return tbops.StatusWarning
	}
	return tbops.StatusOK
}
