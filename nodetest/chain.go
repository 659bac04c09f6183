package nodetest

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/theblock/tbops/rpc"
)

// ChainState is the node and consensus state behind node.status,
// node.consensus_status and ledger.inspect.
type ChainState struct {
	// Height is the block height at the node's start; it grows by BlocksPerSecond
	// (0 means the chain is stalled).
	Height          int64   `json:"height"`
	BlocksPerSecond float64 `json:"blocks_per_second"`
	Syncing         bool    `json:"syncing"`
	Peers           int     `json:"peers"`
	Version         string  `json:"version"`
	// Consensus is "healthy", "degraded" or "stalled".
	Consensus        string             `json:"consensus"`
	FinalityLag      int64              `json:"finality_lag"` // blocks between the tip and the last finalized
	Round            int64              `json:"round"`
	ValidatorsOnline int                `json:"validators_online"`
	ValidatorsTotal  int                `json:"validators_total"`
	Accounts         map[string]Account `json:"accounts,omitempty"`
}

// Account is a ledger account for ledger.inspect.
type Account struct {
	Balance   int64 `json:"balance"`
	Nonce     int64 `json:"nonce"`
	UpdatedAt int64 `json:"updated_at"`
}

func (c *ChainState) shift(d int64) {
	for k, a := range c.Accounts {
		a.UpdatedAt += d
		c.Accounts[k] = a
	}
}

// HeightAt is the block height after el seconds of node clock.
func (c ChainState) HeightAt(el float64) int64 {
	return c.Height + int64(math.Floor(el*c.BlocksPerSecond))
}

func healthyChain(now time.Time) ChainState {
	return ChainState{
		Height: 1_200_000, BlocksPerSecond: 1, Peers: 24, Version: "tbops-sim/1.0",
		Consensus: "healthy", FinalityLag: 2, Round: 7, ValidatorsOnline: 21, ValidatorsTotal: 21,
		Accounts: map[string]Account{
			"treasury_account_id": {Balance: 9_500_000 * 1_000_000, Nonce: 4521, UpdatedAt: now.Unix() - 30},
		},
	}
}

func chainScenarios() map[string]func(time.Time) Scenario {
	return map[string]func(time.Time) Scenario{
		"chain-stalled": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "chain-stalled", "blocks stopped: consensus stalled with 9 of 21 validators online"
			s.Chain.BlocksPerSecond, s.Chain.Consensus, s.Chain.ValidatorsOnline, s.Chain.FinalityLag = 0, "stalled", 9, 40
			return s
		},
	}
}

func nodeMetrics(sc *Scenario, el float64) []Metric {
	c := sc.Chain
	return []Metric{Counter("block_height_total", nil, float64(c.Height), c.BlocksPerSecond)}
}

func (n *Node) registerNode() {
	n.handle("node.status", func(ctx context.Context, params json.RawMessage) (any, error) {
		var out map[string]any
		n.view(func(s *Scenario, now time.Time) {
			h := s.Chain.HeightAt(n.elapsed(now))
			out = map[string]any{"current_block_height": h, "epoch": h / 120, "syncing": s.Chain.Syncing,
				"peers": s.Chain.Peers, "version": s.Chain.Version}
		})
		return out, nil
	})
	n.handle("node.consensus_status", func(ctx context.Context, params json.RawMessage) (any, error) {
		var out map[string]any
		n.view(func(s *Scenario, now time.Time) {
			h := s.Chain.HeightAt(n.elapsed(now))
			out = map[string]any{"status": s.Chain.Consensus, "last_finalized_height": max(h-s.Chain.FinalityLag, 0),
				"round": s.Chain.Round, "validators_online": s.Chain.ValidatorsOnline, "validators_total": s.Chain.ValidatorsTotal}
		})
		return out, nil
	})
	n.handle("ledger.inspect", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Account string `json:"account"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.Account == "" {
			return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: `param "account" is required`}
		}
		var out map[string]any
		n.view(func(s *Scenario, now time.Time) {
			if a, ok := s.Chain.Accounts[p.Account]; ok {
				out = map[string]any{"account": p.Account, "balance": a.Balance, "nonce": a.Nonce, "updated_at": a.UpdatedAt}
			}
		})
		if out == nil {
			return nil, &rpc.Error{Code: rpc.CodeNotFound, Message: "unknown account " + p.Account}
		}
		return out, nil
	})
}
