package nodetest

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/theblock/tbops/rpc"
)

// ChainState is the node and consensus state behind node.status,
// node.consensus_status and ledger.inspect, and the reference node's
// mempool.stats and consensus.difficulty.
type ChainState struct {
	// Reference makes the node speak as the reference node does (PROTOCOL.md
	// section 9): node.status and node.consensus_status answer -32601,
	// mempool.stats and consensus.difficulty answer, and /metrics has the
	// block_height gauge and block_mined_total instead of block_height_total.
	// Without it those two methods answer -32601.
	Reference bool `json:"reference,omitempty"`
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
	Mempool          Mempool            `json:"mempool"`
	Difficulty       uint64             `json:"difficulty"`
}

// Mempool is the reference node's mempool.stats (the same for every lane).
type Mempool struct {
	Size     int64 `json:"size"`
	AgeP50   int64 `json:"age_p50"`
	AgeP95   int64 `json:"age_p95"`
	FeeFloor int64 `json:"fee_floor"`
	FeeP50   int64 `json:"fee_p50"`
	FeeP90   int64 `json:"fee_p90"`
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
		Mempool:    Mempool{Size: 42, AgeP50: 2, AgeP95: 9, FeeFloor: 1, FeeP50: 5, FeeP90: 20},
		Difficulty: 1_048_576,
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
		"node-reference": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "node-reference", "a healthy chain behind the reference node's methods: no node.* method, mempool.stats and consensus.difficulty, the block_height gauge (PROTOCOL.md section 9)"
			s.Chain.Reference = true
			return s
		},
	}
}

func nodeMetrics(sc *Scenario, el float64) []Metric {
	c := sc.Chain
	if c.Reference {
		// Every block is mined here, as on a one-node reference network.
		return []Metric{
			{Name: "block_height", Type: "gauge", Series: []Series{{Value: float64(c.Height), PerSecond: c.BlocksPerSecond, Integer: true}}},
			{Name: "block_mined_total", Type: "counter", Series: []Series{{Value: float64(c.Height), PerSecond: c.BlocksPerSecond, Integer: true}}},
		}
	}
	return []Metric{Counter("block_height_total", nil, float64(c.Height), c.BlocksPerSecond)}
}

// chainView answers method from the chain state at the node's height now, if
// the method is the reference node's (reference) and the node is one, or the
// contract's and the node is not; otherwise -32601, as a node answers a method
// it does not have.
func (n *Node) chainView(method string, reference bool, f func(c *ChainState, height int64) any) (any, error) {
	var out any
	n.view(func(s *Scenario, now time.Time) {
		if s.Chain.Reference == reference {
			out = f(&s.Chain, s.Chain.HeightAt(n.elapsed(now)))
		}
	})
	if out == nil {
		return nil, &rpc.Error{Code: rpc.CodeMethodNotFound, Message: "method not found: " + method}
	}
	return out, nil
}

func (n *Node) registerNode() {
	n.handle("node.status", func(ctx context.Context, params json.RawMessage) (any, error) {
		return n.chainView("node.status", false, func(c *ChainState, h int64) any {
			return map[string]any{"current_block_height": h, "epoch": h / 120, "syncing": c.Syncing,
				"peers": c.Peers, "version": c.Version}
		})
	})
	n.handle("node.consensus_status", func(ctx context.Context, params json.RawMessage) (any, error) {
		return n.chainView("node.consensus_status", false, func(c *ChainState, h int64) any {
			return map[string]any{"status": c.Consensus, "last_finalized_height": max(h-c.FinalityLag, 0),
				"round": c.Round, "validators_online": c.ValidatorsOnline, "validators_total": c.ValidatorsTotal}
		})
	})
	n.handle("mempool.stats", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Lane string `json:"lane"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		return n.chainView("mempool.stats", true, func(c *ChainState, h int64) any { return c.Mempool })
	})
	n.handle("consensus.difficulty", func(ctx context.Context, params json.RawMessage) (any, error) {
		return n.chainView("consensus.difficulty", true, func(c *ChainState, h int64) any {
			return map[string]any{"difficulty": c.Difficulty}
		})
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
