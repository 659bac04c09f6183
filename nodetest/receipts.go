package nodetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/theblock/tbops/rpc"
)

// receiptMarkets are the four receipt markets of the wire contract, in runbook order.
var receiptMarkets = []string{"storage", "compute", "energy", "ad"}

// receiptReasons are the validation-error reasons of receipt_validation_errors_total.
var receiptReasons = []string{"schema_mismatch", "duplicate_detection", "signature_invalid"}

// ReceiptsState is the receipts area's state behind receipts.stats,
// receipts.validate, receipts.reset_validation_state and the receipt_* metrics.
type ReceiptsState struct {
	// Markets by name ("storage", "compute", "energy", "ad"). A market missing
	// here has no metric series and receipts.stats reports it as never emitting.
	Markets map[string]MarketReceipts `json:"markets"`
	// Invalid are the receipts receipts.validate reports in the blocks asked for.
	Invalid []InvalidReceipt `json:"invalid,omitempty"`
	// Resets counts receipts.reset_validation_state calls; LastResetAt is the
	// Unix time of the last one (0: never).
	Resets      int   `json:"resets,omitempty"`
	LastResetAt int64 `json:"last_reset_at,omitempty"`
	// ExplorerLag is how many blocks the simulated explorer (ExplorerURL) is
	// behind the node's newest receipt.
	ExplorerLag int64 `json:"explorer_lag,omitempty"`
}

// MarketReceipts is one market's emitter. Counters grow linearly with the node
// clock while the chain produces blocks; a stalled chain emits nothing.
type MarketReceipts struct {
	// Emitted is receipt_emitted_total at the node's start; PerSecond its growth
	// (0: the market's emitter is stalled).
	Emitted   float64 `json:"emitted"`
	PerSecond float64 `json:"per_second"`
	// Integer makes receipt_emitted_total step by whole receipts, as a real
	// counter does: a low-volume market at PerSecond 1/3 steps once every 3 s
	// and is flat in between. receipts.stats' last_emitted_height is the block
	// of the newest whole receipt either way.
	Integer bool `json:"integer,omitempty"`
	// StalledFor is, for a stalled market (PerSecond 0), how many blocks before
	// the node's start it last emitted; last_emitted_height stays there.
	StalledFor int64 `json:"stalled_for,omitempty"`
	Pending    int64 `json:"pending"`
	// ValidationErrors are receipt_validation_errors_total by reason at the
	// start, growing by ValidationErrorsPerSecond.
	ValidationErrors          map[string]float64 `json:"validation_errors,omitempty"`
	ValidationErrorsPerSecond map[string]float64 `json:"validation_errors_per_second,omitempty"`
	// MinPaymentRejected is receipt_min_payment_rejected_total's share of this
	// market at the start, growing by MinPaymentPerSecond.
	MinPaymentRejected  float64 `json:"min_payment_rejected"`
	MinPaymentPerSecond float64 `json:"min_payment_per_second,omitempty"`
}

// InvalidReceipt is one entry of receipts.validate's invalid list.
type InvalidReceipt struct {
	// BlockOffset is the block height relative to the chain height at the
	// node's start (-3: three blocks before the start).
	BlockOffset int64  `json:"block_offset"`
	ReceiptID   string `json:"receipt_id"`
	Market      string `json:"market"`
	Reason      string `json:"reason"`
}

func (s *ReceiptsState) shift(d int64) {
	if s.LastResetAt != 0 {
		s.LastResetAt += d
	}
}

func healthyReceipts(now time.Time) ReceiptsState {
	return ReceiptsState{Markets: map[string]MarketReceipts{
		"storage": {Emitted: 4_210_000, PerSecond: 12, Pending: 3,
			ValidationErrors: map[string]float64{"schema_mismatch": 2}, MinPaymentRejected: 1},
		"compute": {Emitted: 2_830_000, PerSecond: 8, Pending: 2,
			ValidationErrors: map[string]float64{"duplicate_detection": 1}},
		"energy": {Emitted: 1_760_000, PerSecond: 5, Pending: 1, MinPaymentRejected: 1},
		"ad":     {Emitted: 6_940_000, PerSecond: 20, Pending: 4, ValidationErrors: map[string]float64{"schema_mismatch": 1}},
	}}
}

// cloneMarkets copies the market map so scenarios built on Healthy can change it.
func (s ReceiptsState) cloneMarkets() map[string]MarketReceipts {
	out := make(map[string]MarketReceipts, len(s.Markets))
	for k, v := range s.Markets {
		out[k] = v
	}
	return out
}

func receiptsScenarios() map[string]func(time.Time) Scenario {
	return map[string]func(time.Time) Scenario{
		"receipts-healthy": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "receipts-healthy", "receipts flowing in all four markets, no validation errors"
			return s
		},
		"receipts-low-volume": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "receipts-low-volume", "healthy, with a low-volume compute market: one receipt every 3 blocks"
			m := s.Receipts.cloneMarkets()
			c := m["compute"]
			c.Emitted, c.PerSecond, c.Integer = 90_000, 1.0/3, true
			m["compute"] = c
			s.Receipts.Markets = m
			return s
		},
		"receipts-explorer-lag": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "receipts-explorer-lag", "the explorer's receipt tables are 45 blocks behind the node; the node is fine"
			s.Receipts.ExplorerLag = 45
			return s
		},
		"receipts-market-stalled": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "receipts-market-stalled", "the compute market stopped emitting receipts 45 blocks ago; the chain is fine"
			m := s.Receipts.cloneMarkets()
			c := m["compute"]
			c.PerSecond, c.StalledFor, c.Pending = 0, 45, 380
			m["compute"] = c
			s.Receipts.Markets = m
			return s
		},
		"receipts-validation-errors": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "receipts-validation-errors", "receipts failing validation: schema mismatches in storage and bad signatures in ad (about 4% of receipts)"
			m := s.Receipts.cloneMarkets()
			st := m["storage"]
			st.ValidationErrorsPerSecond = map[string]float64{"schema_mismatch": 1.5}
			m["storage"] = st
			ad := m["ad"]
			ad.ValidationErrorsPerSecond = map[string]float64{"signature_invalid": 0.5}
			m["ad"] = ad
			s.Receipts.Markets = m
			s.Receipts.Invalid = []InvalidReceipt{
				{BlockOffset: -40, ReceiptID: "rcpt-storage-88121", Market: "storage", Reason: "schema_mismatch"},
				{BlockOffset: -22, ReceiptID: "rcpt-ad-310577", Market: "ad", Reason: "signature_invalid"},
				{BlockOffset: -7, ReceiptID: "rcpt-storage-88302", Market: "storage", Reason: "schema_mismatch"},
			}
			return s
		},
		"receipts-chain-stalled": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "receipts-chain-stalled", "no new blocks (consensus stalled, 9 of 21 validators online), so no market emits receipts"
			s.Chain.BlocksPerSecond, s.Chain.Consensus, s.Chain.ValidatorsOnline, s.Chain.FinalityLag = 0, "stalled", 9, 40
			return s
		},
		"receipts-min-payment-spike": func(now time.Time) Scenario {
			s := Healthy(now)
			// 50 a second: one second of scrapes already shows more than the
			// 5 in 5 minutes that near-zero allows (the counter's rise is a
			// lower bound on the window's).
			s.Name, s.Description = "receipts-min-payment-spike", "a burst of receipts below the 0.001 BLOCK floor (50 a second), mostly in the ad market"
			m := s.Receipts.cloneMarkets()
			ad := m["ad"]
			ad.MinPaymentPerSecond = 40
			m["ad"] = ad
			c := m["compute"]
			c.MinPaymentPerSecond = 10
			m["compute"] = c
			s.Receipts.Markets = m
			return s
		},
	}
}

// emitting is a market's effective emission rate: receipts come in blocks, so a
// stalled chain emits nothing whatever the market's own rate.
func emitting(sc *Scenario, m MarketReceipts) float64 {
	if sc.Chain.BlocksPerSecond <= 0 {
		return 0
	}
	return m.PerSecond
}

// lastEmittedAt is when, in seconds of node clock, a market emitting at rate
// per second reached its current whole count of receipts.
func lastEmittedAt(m MarketReceipts, rate, el float64) float64 {
	n := math.Floor(m.Emitted+rate*el) - m.Emitted
	return min(n/rate, el) // never after now, whatever the rounding
}

func receiptsMetrics(sc *Scenario, now time.Time, el float64) []Metric {
	if len(sc.Receipts.Markets) == 0 {
		return nil
	}
	emitted := Metric{Name: "receipt_emitted_total", Type: "counter", Help: "Receipts emitted, by market."}
	errs := map[string]*Series{}
	var rej Series
	for _, name := range sortedMarkets(sc.Receipts.Markets) {
		m := sc.Receipts.Markets[name]
		emitted.Series = append(emitted.Series, Series{Labels: map[string]string{"market": name}, Value: m.Emitted, PerSecond: emitting(sc, m), Integer: m.Integer})
		for _, r := range receiptReasons {
			s, ok := errs[r]
			if !ok {
				s = &Series{Labels: map[string]string{"reason": r}}
				errs[r] = s
			}
			s.Value += m.ValidationErrors[r]
			if sc.Chain.BlocksPerSecond > 0 {
				s.PerSecond += m.ValidationErrorsPerSecond[r]
			}
		}
		rej.Value += m.MinPaymentRejected
		if sc.Chain.BlocksPerSecond > 0 {
			rej.PerSecond += m.MinPaymentPerSecond
		}
	}
	verr := Metric{Name: "receipt_validation_errors_total", Type: "counter", Help: "Receipts that failed validation, by reason."}
	for _, r := range receiptReasons {
		verr.Series = append(verr.Series, *errs[r])
	}
	return []Metric{emitted, verr,
		{Name: "receipt_min_payment_rejected_total", Type: "counter", Help: "Receipts rejected below the 0.001 BLOCK payment floor.", Series: []Series{rej}}}
}

func sortedMarkets(m map[string]MarketReceipts) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// receiptsInvalidParams is the -32602 answer naming the parameter.
func receiptsInvalidParams(format string, args ...any) error {
	return &rpc.Error{Code: rpc.CodeInvalidParams, Message: "invalid params: " + fmt.Sprintf(format, args...)}
}

// maxValidateRange caps receipts.validate's block range, as a real node bounds the work of one call.
const maxValidateRange = 100_000

func (n *Node) registerReceipts() {
	n.handle("receipts.stats", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Market *string `json:"market"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.Market == nil || *p.Market == "" {
			return nil, receiptsInvalidParams(`param "market" is required (one of %s)`, strings.Join(receiptMarkets, ", "))
		}
		known := false
		for _, m := range receiptMarkets {
			known = known || m == *p.Market
		}
		if !known {
			return nil, receiptsInvalidParams(`param "market": unknown market %q (want one of %s)`, *p.Market, strings.Join(receiptMarkets, ", "))
		}
		var out map[string]any
		n.view(func(s *Scenario, now time.Time) {
			el := n.elapsed(now)
			h := s.Chain.HeightAt(el)
			m, ok := s.Receipts.Markets[*p.Market]
			rate := emitting(s, m)
			last := h
			switch {
			case !ok:
				last = 0 // this node never emitted in the market
			case rate == 0 && s.Chain.BlocksPerSecond > 0:
				last = s.Chain.Height - m.StalledFor
			case rate > 0:
				last = s.Chain.HeightAt(lastEmittedAt(m, rate, el))
			}
			grow := func(v, perSecond float64) int64 {
				if s.Chain.BlocksPerSecond <= 0 {
					perSecond = 0
				}
				return int64(math.Floor(v + perSecond*el))
			}
			verr := map[string]int64{}
			for _, r := range receiptReasons {
				verr[r] = grow(m.ValidationErrors[r], m.ValidationErrorsPerSecond[r])
			}
			out = map[string]any{"market": *p.Market, "emitted_total": int64(math.Floor(m.Emitted + rate*el)),
				"last_emitted_height": last, "pending": m.Pending, "validation_errors": verr,
				"min_payment_rejected_total": grow(m.MinPaymentRejected, m.MinPaymentPerSecond)}
		})
		return out, nil
	})
	n.handle("receipts.validate", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			FromBlock *int64 `json:"from_block"`
			ToBlock   *int64 `json:"to_block"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.FromBlock == nil {
			return nil, receiptsInvalidParams(`param "from_block" is required`)
		}
		var out map[string]any
		var perr error
		n.view(func(s *Scenario, now time.Time) {
			h := s.Chain.HeightAt(n.elapsed(now))
			from, to := *p.FromBlock, h
			if p.ToBlock != nil {
				to = *p.ToBlock
			}
			switch {
			case from < 0:
				perr = receiptsInvalidParams(`param "from_block": %d is negative`, from)
			case to > h:
				perr = receiptsInvalidParams(`param "to_block": %d is above the current height %d`, to, h)
			case from > to:
				perr = receiptsInvalidParams(`param "from_block": %d is above to_block %d`, from, to)
			case to-from+1 > maxValidateRange:
				perr = receiptsInvalidParams(`param "from_block": range of %d blocks is over the limit of %d`, to-from+1, maxValidateRange)
			}
			if perr != nil {
				return
			}
			var perBlock float64
			for _, m := range s.Receipts.Markets {
				perBlock += m.PerSecond
			}
			invalid := []map[string]any{}
			for _, iv := range s.Receipts.Invalid {
				bh := s.Chain.Height + iv.BlockOffset
				if bh >= from && bh <= to {
					invalid = append(invalid, map[string]any{"block_height": bh, "receipt_id": iv.ReceiptID, "market": iv.Market, "reason": iv.Reason})
				}
			}
			out = map[string]any{"from_block": from, "to_block": to, "checked": int64(perBlock * float64(to-from+1)), "invalid": invalid}
		})
		if perr != nil {
			return nil, perr
		}
		return out, nil
	})
	n.handle("receipts.reset_validation_state", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct{}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		n.view(func(s *Scenario, now time.Time) {
			s.Receipts.Resets++
			s.Receipts.LastResetAt = now.Unix()
		})
		return map[string]any{"ok": true}, nil
	})
}

// explorerPath is where the simulated explorer answers.
const explorerPath = "/explorer/receipts/latest"

// serveExplorer answers the explorer's latest receipt height: the chain's tip
// (every healthy market emits each block) less ExplorerLag.
func (n *Node) serveExplorer(w http.ResponseWriter, r *http.Request) {
	var h int64
	n.view(func(s *Scenario, now time.Time) {
		h = max(s.Chain.HeightAt(n.elapsed(now))-s.Receipts.ExplorerLag, 0)
	})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int64{"latest_receipt_height": h})
}
