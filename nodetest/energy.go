package nodetest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"lukechampine.com/blake3"

	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/rpc"
)

// EnergyState is the energy area's state: the market, credits, disputes and
// oracle keys behind the energy.* methods, the guard in front of them, and the
// rates the energy metrics grow at.
type EnergyState struct {
	// Reference makes the node speak the reference node's shapes (PROTOCOL.md
	// section 9): energy.market_state, credits with provider, disputes with id,
	// providers with only reputation_score, hex keys, energy_settlement_total and
	// energy_reading_reject_total; energy.provider and energy.oracle_keys are
	// not served (-32601).
	Reference bool `json:"reference,omitempty"`

	Providers []EnergyProvider `json:"providers"`
	Credits   []EnergyCredit   `json:"credits"`
	Disputes  []EnergyDispute  `json:"disputes"`
	// OracleStatus is energy.oracle_keys' status: ok or degraded.
	OracleStatus string `json:"oracle_status"`
	// MaxSkewSeconds is the reading timestamp tolerance (300 when 0).
	MaxSkewSeconds int64 `json:"max_skew_seconds,omitempty"`

	// OracleLatency are sample latencies (s) that shape oracle_latency_seconds;
	// OracleRate is observations per second.
	OracleLatency []float64 `json:"oracle_latency"`
	OracleRate    float64   `json:"oracle_rate"`
	// OracleP95 exports the runbook's oracle_latency_seconds_p95 gauge with
	// this value beside the histogram (PROTOCOL.md lists only the histogram,
	// so by default the gauge is absent).
	OracleP95 *float64 `json:"oracle_p95,omitempty"`
	// Failures is the signature failure counter per reason at start, and
	// FailuresPerSecond its growth (whole failures, as a real counter steps).
	Failures          map[string]float64 `json:"failures,omitempty"`
	FailuresPerSecond map[string]float64 `json:"failures_per_second,omitempty"`
	// Settlements is energy_settlements_total at start; SettlementsPerSecond its
	// growth. While it is above zero the market flows: the node serves provider,
	// credit and dispute times moved along with its clock (ages stay as the
	// scenario wrote them); at zero nothing settles and every age grows.
	Settlements          float64 `json:"settlements"`
	SettlementsPerSecond float64 `json:"settlements_per_second"`
	// PendingPerSecond and DisputesPerSecond grow the pending-credit and
	// active-dispute gauges beyond what the lists hold (a backlog building).
	PendingPerSecond  float64 `json:"pending_per_second,omitempty"`
	DisputesPerSecond float64 `json:"disputes_per_second,omitempty"`
	// Slashing is energy_slashing_total per "provider/reason", growing SlashingPerSecond each.
	Slashing          map[string]float64 `json:"slashing,omitempty"`
	SlashingPerSecond float64            `json:"slashing_per_second,omitempty"`

	// Guard configures the energy.Guard in front of the energy methods; nil means
	// no guard (auth off, no limit).
	Guard *EnergyGuard `json:"guard,omitempty"`
	// RPCRejected mirrors the guard's energy_rpc_rejected_total by reason.
	RPCRejected map[string]float64 `json:"rpc_rejected,omitempty"`
	// Nonces is the last accepted nonce per provider.
	Nonces map[string]uint64 `json:"nonces,omitempty"`
}

// EnergyGuard is the guard configuration of the simulated node
// (TB_ENERGY_RPC_TOKEN and TB_ENERGY_RPC_RPS).
type EnergyGuard struct {
	Token string `json:"token,omitempty"`
	RPS   int    `json:"rps,omitempty"`
}

// EnergyProvider is one provider.
type EnergyProvider struct {
	ProviderID  string           `json:"provider_id"`
	Status      string           `json:"status"`
	Reputation  EnergyReputation `json:"reputation"`
	CapacityKWh int64            `json:"capacity_kwh"`
	PricePerKWh int64            `json:"price_per_kwh"`
	Scheme      string           `json:"scheme"`
	PublicKey   string           `json:"public_key"` // base64
	// OracleKey is the key energy.oracle_keys holds for the provider, when it
	// differs from PublicKey (a key rotated on one side only); base64.
	OracleKey      string            `json:"oracle_key,omitempty"`
	LastSettlement int64             `json:"last_settlement"`
	LastReadingAt  int64             `json:"last_reading_at"`
	Extra          map[string]string `json:"extra,omitempty"`
}

// EnergyReputation is a provider's reputation breakdown.
type EnergyReputation struct {
	Composite float64 `json:"composite_score"`
	Delivery  float64 `json:"delivery"`
	Meter     float64 `json:"meter"`
	Latency   float64 `json:"latency"`
	Capacity  float64 `json:"capacity"`
}

// EnergyCredit is one credit.
type EnergyCredit struct {
	CreditID         string `json:"credit_id"`
	ProviderID       string `json:"provider_id"`
	Meter            string `json:"meter"`
	AmountKWh        int64  `json:"amount_kwh"`
	Status           string `json:"status"`
	ReadingTimestamp int64  `json:"reading_timestamp"`
	CreatedAt        int64  `json:"created_at"`
}

// EnergyDispute is one dispute.
type EnergyDispute struct {
	DisputeID  string `json:"dispute_id"`
	ProviderID string `json:"provider_id"`
	Meter      string `json:"meter"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	OpenedAt   int64  `json:"opened_at"`
	ResolvedAt int64  `json:"resolved_at,omitempty"` // 0 while open
	Evidence   string `json:"evidence,omitempty"`
}

func (s *EnergyState) shift(d int64) {
	for i := range s.Providers {
		p := &s.Providers[i]
		if p.LastSettlement != 0 {
			p.LastSettlement += d
		}
		if p.LastReadingAt != 0 {
			p.LastReadingAt += d
		}
	}
	for i := range s.Credits {
		s.Credits[i].ReadingTimestamp += d
		s.Credits[i].CreatedAt += d
	}
	for i := range s.Disputes {
		s.Disputes[i].OpenedAt += d
		if s.Disputes[i].ResolvedAt != 0 {
			s.Disputes[i].ResolvedAt += d
		}
	}
}

// EnergyProviderKey is the deterministic private key of a simulated provider, so
// tests and demos can sign readings the simulated node accepts.
func EnergyProviderKey(providerID string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("nodetest-energy-provider:" + providerID))
	return ed25519.NewKeyFromSeed(seed[:])
}

var energyProviderIDs = []string{"provider_usa_001", "provider_eu_002", "provider_apac_003", "provider_usa_004", "provider_eu_005"}

func healthyEnergy(now time.Time) EnergyState {
	t := now.Unix()
	s := EnergyState{OracleStatus: "ok", OracleRate: 2,
		OracleLatency:        []float64{0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5},
		Failures:             map[string]float64{"verification_failed": 2, "invalid_format": 1},
		Settlements:          12_000,
		SettlementsPerSecond: 0.5,
		Slashing:             map[string]float64{"provider_eu_005/late_delivery": 1},
		Nonces:               map[string]uint64{},
	}
	scores := []float64{0.94, 0.91, 0.88, 0.86, 0.82}
	for i, id := range energyProviderIDs {
		scheme := energy.SchemeEd25519
		if i%2 == 1 {
			scheme = energy.SchemeEd25519Blake3
		}
		sc := scores[i]
		s.Providers = append(s.Providers, EnergyProvider{ProviderID: id, Status: "active",
			Reputation:  EnergyReputation{Composite: sc, Delivery: sc + 0.02, Meter: sc, Latency: sc - 0.02, Capacity: sc},
			CapacityKWh: int64(5000 + 1000*i), PricePerKWh: int64(120_000 + 5_000*i), Scheme: scheme,
			PublicKey:      base64.StdEncoding.EncodeToString(EnergyProviderKey(id).Public().(ed25519.PublicKey)),
			LastSettlement: t - int64(60+30*i), LastReadingAt: t - int64(20+5*i)})
		s.Nonces[id] = uint64(1000 + i)
		// two settled credits and one fresh pending credit per provider
		for j := 0; j < 3; j++ {
			c := EnergyCredit{CreditID: fmt.Sprintf("cr-%d-%d", i+1, j+1), ProviderID: id, Meter: fmt.Sprintf("meter_%03d", i+1),
				AmountKWh: int64(100 + 10*i + j), Status: "settled", ReadingTimestamp: t - int64(3600-600*j), CreatedAt: t - int64(3590-600*j)}
			if j == 2 {
				c.Status, c.ReadingTimestamp, c.CreatedAt = "pending", t-40, t-35
			}
			s.Credits = append(s.Credits, c)
		}
	}
	s.Disputes = []EnergyDispute{
		{DisputeID: "d-101", ProviderID: "provider_eu_005", Meter: "meter_005", Status: "resolved", Reason: "meter_mismatch",
			OpenedAt: t - 2*86400, ResolvedAt: t - 2*86400 + 1800, Evidence: "meter log matched after recalibration"},
		{DisputeID: "d-102", ProviderID: "provider_usa_004", Meter: "meter_004", Status: "resolved", Reason: "late_delivery",
			OpenedAt: t - 86400, ResolvedAt: t - 86400 + 2400, Evidence: "delivery confirmed by grid operator"},
		{DisputeID: "d-103", ProviderID: "provider_apac_003", Meter: "meter_003", Status: "open", Reason: "meter_mismatch",
			OpenedAt: t - 1200, Evidence: "reading 3% above neighbouring meters"},
	}
	return s
}

func energyScenarios() map[string]func(time.Time) Scenario {
	return map[string]func(time.Time) Scenario{
		"energy-healthy": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "energy-healthy", "energy market healthy: oracle fast, readings settle; guard on at 50 rps per client (auth off: set Energy.Guard.Token to turn it on)"
			s.Energy.Guard = &EnergyGuard{RPS: 50}
			return s
		},
		"energy-oracle-latency": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "energy-oracle-latency", "oracle p95 ≈ 27 s on the node's oracle_latency_seconds_p95 gauge (warning, path A): settlements slow, pending credits pile up"
			s.Energy.OracleLatency = []float64{6, 9, 12, 14, 16, 18, 20, 22, 25, 28}
			p95 := 27.0
			s.Energy.OracleP95 = &p95
			s.Energy.SettlementsPerSecond = 0.05
			s.Energy.PendingPerSecond = 0.05
			ageCredits(&s.Energy, now, 1500)
			return s
		},
		"energy-signature-failures": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "energy-signature-failures", "provider_usa_001 rotated its key without the oracle: its 4 000 meters' readings fail, 4 800 a minute, mostly verification_failed (critical, path B); oracle keys degraded"
			s.Energy.FailuresPerSecond = map[string]float64{"verification_failed": 75, "invalid_format": 5}
			s.Energy.Failures = map[string]float64{"verification_failed": 34_000, "invalid_format": 600}
			s.Energy.OracleStatus = "degraded"
			s.Energy.Providers[0].OracleKey = base64.StdEncoding.EncodeToString(EnergyProviderKey("rotated:provider_usa_001").Public().(ed25519.PublicKey))
			return s
		},
		"energy-timestamp-skew": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "energy-timestamp-skew", "three providers' clocks drifted: their readings are refused, nothing settles (critical, path C)"
			s.Energy.SettlementsPerSecond = 0
			s.Energy.PendingPerSecond = 0.01
			t := now.Unix()
			for i := 0; i < 3; i++ {
				s.Energy.Providers[i].LastReadingAt = t - 2700
				s.Energy.Providers[i].LastSettlement = t - 2700
			}
			for i := 3; i < len(s.Energy.Providers); i++ {
				s.Energy.Providers[i].LastSettlement = t - 1500
			}
			ageCredits(&s.Energy, now, 1800)
			return s
		},
		"energy-reputation-degraded": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "energy-reputation-degraded", "three providers below 0.5 reputation, one suspended; 25 open disputes and rising (warning, path D)"
			low := []float64{0.31, 0.42, 0.47}
			for i, sc := range low {
				p := &s.Energy.Providers[i+2]
				p.Reputation = EnergyReputation{Composite: sc, Delivery: sc - 0.05, Meter: sc, Latency: sc + 0.05, Capacity: sc}
			}
			s.Energy.Providers[4].Status = "suspended"
			t := now.Unix()
			for i := 0; i < 24; i++ {
				pid := energyProviderIDs[2+i%3]
				s.Energy.Disputes = append(s.Energy.Disputes, EnergyDispute{DisputeID: fmt.Sprintf("d-%d", 200+i), ProviderID: pid,
					Meter: "meter_00" + pid[len(pid)-1:], Status: "open", Reason: []string{"meter_mismatch", "late_delivery", "capacity_shortfall"}[i%3],
					OpenedAt: t - int64(60*(i+1)), Evidence: "automated oracle cross-check"})
			}
			s.Energy.DisputesPerSecond = 0.004 // about 41 open after doctor's 70m of history: above 20 (warning), below 50 (critical)
			s.Energy.Slashing = map[string]float64{"provider_apac_003/meter_mismatch": 4, "provider_usa_004/late_delivery": 3, "provider_eu_005/capacity_shortfall": 6}
			s.Energy.SlashingPerSecond = 0.002
			return s
		},
		"energy-reference-node": func(now time.Time) Scenario {
			s := Healthy(now)
			s.Name, s.Description = "energy-reference-node", "healthy energy market spoken in the reference node's shapes (PROTOCOL.md section 9)"
			s.Energy.Reference = true
			for i := range s.Energy.Providers {
				s.Energy.Providers[i].Scheme = energy.SchemeEd25519Blake3
			}
			return s
		},
	}
}

// ageCredits makes the pending credits age seconds old (a backlog that is not draining).
func ageCredits(s *EnergyState, now time.Time, age int64) {
	for i := range s.Credits {
		if s.Credits[i].Status == "pending" {
			s.Credits[i].CreatedAt = now.Unix() - age
			s.Credits[i].ReadingTimestamp = now.Unix() - age - 5
		}
	}
}

var oracleBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60}

func energyMetrics(sc *Scenario, now time.Time, el float64) []Metric {
	e := sc.Energy
	var out []Metric
	if len(e.OracleLatency) > 0 {
		out = append(out, Histogram("oracle_latency_seconds", nil, oracleBuckets, e.OracleRate, e.OracleLatency))
	}
	if e.OracleP95 != nil {
		out = append(out, Gauge("oracle_latency_seconds_p95", nil, *e.OracleP95))
	}
	failName, settleName := "energy_signature_verification_failures_total", "energy_settlements_total"
	if e.Reference {
		failName, settleName = "energy_reading_reject_total", "energy_settlement_total"
	}
	fail := Metric{Name: failName, Type: "counter"}
	for _, r := range energy.Reasons() {
		fail.Series = append(fail.Series, Series{Labels: map[string]string{"reason": r}, Value: e.Failures[r], PerSecond: e.FailuresPerSecond[r], Integer: true})
	}
	settle := Counter(settleName, nil, e.Settlements, e.SettlementsPerSecond)
	settle.Series[0].Integer = true // settlements are events: the counter steps by whole ones
	out = append(out, fail, settle)
	pending, open := 0, 0
	for _, c := range e.Credits {
		if c.Status == "pending" {
			pending++
		}
	}
	for _, d := range e.Disputes {
		if d.Status == "open" {
			open++
		}
	}
	out = append(out, Gauge("energy_pending_credits_total", nil, float64(pending)+e.PendingPerSecond*el),
		Gauge("energy_active_disputes_total", nil, float64(open)+e.DisputesPerSecond*el))
	if e.Guard != nil {
		rej := Metric{Name: "energy_rpc_rejected_total", Type: "counter"}
		for _, r := range []string{energy.RejectRateLimited, energy.RejectUnauthorized} {
			rej.Series = append(rej.Series, Series{Labels: map[string]string{"reason": r}, Value: e.RPCRejected[r]})
		}
		out = append(out, rej)
	}
	if len(e.Slashing) > 0 {
		sl := Metric{Name: "energy_slashing_total", Type: "counter"}
		keys := make([]string, 0, len(e.Slashing))
		for k := range e.Slashing {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p, r, _ := strings.Cut(k, "/")
			sl.Series = append(sl.Series, Series{Labels: map[string]string{"provider": p, "reason": r}, Value: e.Slashing[k], PerSecond: e.SlashingPerSecond})
		}
		out = append(out, sl)
	}
	return out
}

// energyGuard holds the node's guard and the configuration last applied to it.
type energyGuard struct {
	mu      sync.Mutex
	g       *energy.Guard
	applied EnergyGuard
}

func (n *Node) registerEnergy() {
	// The same guard tbops energy guard runs, with the node's own body limit.
	g, err := energy.NewGuard(energy.GuardOptions{MaxBody: rpc.DefaultMaxRequestBytes, Now: n.now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic("nodetest: energy guard: " + err.Error()) // unreachable: every option is a default
	}
	eg := &energyGuard{g: g}
	n.energyGuardMiddleware(eg)

	n.handle(energy.MethodMarket, func(ctx context.Context, params json.RawMessage) (any, error) {
		var out any
		var ref bool
		n.view(func(s *Scenario, now time.Time) {
			ref = s.Energy.Reference
			ps := make([]map[string]any, 0, len(s.Energy.Providers))
			for _, p := range s.Energy.Providers {
				ps = append(ps, providerWire(p, s.Energy.Reference, false))
			}
			out = map[string]any{"providers": ps}
		})
		if ref {
			return nil, methodNotFound(energy.MethodMarket)
		}
		return out, nil
	})
	n.handle(energy.MethodMarketState, func(ctx context.Context, params json.RawMessage) (any, error) {
		var out any
		var ref bool
		n.view(func(s *Scenario, now time.Time) {
			ref = s.Energy.Reference
			ps := make([]map[string]any, 0, len(s.Energy.Providers))
			for _, p := range s.Energy.Providers {
				ps = append(ps, providerWire(p, true, false))
			}
			out = map[string]any{"providers": ps, "total_capacity_kwh": 0}
		})
		if !ref {
			return nil, methodNotFound(energy.MethodMarketState)
		}
		return out, nil
	})
	n.handle(energy.MethodProvider, func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			ProviderID string `json:"provider_id"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.ProviderID == "" {
			return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: `param "provider_id" is required`}
		}
		var out map[string]any
		var ref bool
		n.view(func(s *Scenario, now time.Time) {
			ref = s.Energy.Reference
			sh := n.flowShift(&s.Energy, now)
			for _, pr := range s.Energy.Providers {
				if pr.ProviderID == p.ProviderID {
					if pr.Status == "active" {
						pr.LastSettlement, pr.LastReadingAt = shiftNZ(pr.LastSettlement, sh), shiftNZ(pr.LastReadingAt, sh)
					}
					out = providerWire(pr, s.Energy.Reference, true)
				}
			}
		})
		switch {
		case ref:
			return nil, methodNotFound(energy.MethodProvider)
		case out == nil:
			return nil, &rpc.Error{Code: rpc.CodeNotFound, Message: "unknown provider " + p.ProviderID}
		}
		return out, nil
	})
	n.handle(energy.MethodCredits, func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Status     string `json:"status"`
			ProviderID string `json:"provider_id"`
			Limit      int    `json:"limit"`
			Cursor     *int64 `json:"cursor"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.Status != "" && p.Status != "pending" && p.Status != "settled" {
			return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: `param "status": want pending or settled`}
		}
		limit, err := listLimit(p.Limit)
		if err != nil {
			return nil, err
		}
		var out map[string]any
		n.view(func(s *Scenario, now time.Time) {
			var match []EnergyCredit
			for _, c := range s.Energy.Credits {
				if (p.Status == "" || c.Status == p.Status) && (p.ProviderID == "" || c.ProviderID == p.ProviderID) {
					match = append(match, c)
				}
			}
			start := int64(0)
			if p.Cursor != nil {
				start = min(max(*p.Cursor, 0), int64(len(match)))
			}
			end := min(start+int64(limit), int64(len(match)))
			list := make([]map[string]any, 0, end-start)
			sh := n.flowShift(&s.Energy, now)
			for _, c := range match[start:end] {
				m := map[string]any{"credit_id": c.CreditID, "meter": c.Meter, "amount_kwh": c.AmountKWh, "status": c.Status,
					"reading_timestamp": c.ReadingTimestamp + sh, "created_at": c.CreatedAt + sh}
				if s.Energy.Reference {
					m["provider"] = c.ProviderID
				} else {
					m["provider_id"] = c.ProviderID
				}
				list = append(list, m)
			}
			var next any
			if end < int64(len(match)) {
				next = end
			}
			out = map[string]any{"credits": list, "next_cursor": next}
		})
		return out, nil
	})
	n.handle(energy.MethodDisputes, func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			Status string `json:"status"`
			Limit  int    `json:"limit"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		if p.Status != "" && p.Status != "open" && p.Status != "resolved" {
			return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: `param "status": want open or resolved`}
		}
		limit, err := listLimit(p.Limit)
		if err != nil {
			return nil, err
		}
		var list []map[string]any
		n.view(func(s *Scenario, now time.Time) {
			list = []map[string]any{}
			// newest first, as a person reads a backlog
			ds := append([]EnergyDispute(nil), s.Energy.Disputes...)
			sort.SliceStable(ds, func(i, j int) bool { return ds[i].OpenedAt > ds[j].OpenedAt })
			sh := n.flowShift(&s.Energy, now)
			for _, d := range ds {
				if (p.Status == "" || d.Status == p.Status) && len(list) < limit {
					list = append(list, disputeWire(d.shifted(sh), s.Energy.Reference, false))
				}
			}
		})
		return map[string]any{"disputes": list}, nil
	})
	n.handle(energy.MethodDispute, func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			DisputeID string `json:"dispute_id"`
		}
		if err := rpc.BindParams(params, &p); err != nil {
			return nil, err
		}
		var out map[string]any
		n.view(func(s *Scenario, now time.Time) {
			for _, d := range s.Energy.Disputes {
				if d.DisputeID == p.DisputeID {
					out = disputeWire(d.shifted(n.flowShift(&s.Energy, now)), s.Energy.Reference, true)
				}
			}
		})
		if out == nil {
			return nil, &rpc.Error{Code: rpc.CodeNotFound, Message: "unknown dispute " + p.DisputeID}
		}
		return out, nil
	})
	n.handle(energy.MethodOracleKeys, func(ctx context.Context, params json.RawMessage) (any, error) {
		var out map[string]any
		var ref bool
		n.view(func(s *Scenario, now time.Time) {
			ref = s.Energy.Reference
			keys := []map[string]any{}
			for _, p := range s.Energy.Providers {
				key := p.PublicKey
				if p.OracleKey != "" {
					key = p.OracleKey
				}
				keys = append(keys, map[string]any{"provider_id": p.ProviderID, "scheme": p.Scheme, "public_key": keyWire(key, s.Energy.Reference),
					"rotated_at": now.Unix() - 30*86400, "expires_at": now.Unix() + 60*86400})
			}
			out = map[string]any{"status": s.Energy.OracleStatus, "keys": keys}
		})
		if ref {
			return nil, methodNotFound(energy.MethodOracleKeys)
		}
		return out, nil
	})
	n.handle(energy.MethodSubmitReading, func(ctx context.Context, params json.RawMessage) (any, error) {
		return n.submitReading(params)
	})
}

// shifted is the dispute with its times moved d seconds (a flowing market's).
func (d EnergyDispute) shifted(sh int64) EnergyDispute {
	d.OpenedAt = shiftNZ(d.OpenedAt, sh)
	d.ResolvedAt = shiftNZ(d.ResolvedAt, sh)
	return d
}

// methodNotFound is the -32601 a node answers for a method it does not serve.
func methodNotFound(method string) *rpc.Error {
	return &rpc.Error{Code: rpc.CodeMethodNotFound, Message: "method not found: " + method}
}

// flowShift is how far a flowing market's stored times move when served.
func (n *Node) flowShift(e *EnergyState, now time.Time) int64 {
	if e.SettlementsPerSecond <= 0 {
		return 0
	}
	return int64(n.elapsed(now))
}

// energyGuardMiddleware puts the energy guard in front of the JSON-RPC handler,
// configured from the running scenario (so Update can change token and limit).
func (n *Node) energyGuardMiddleware(eg *energyGuard) {
	n.use(func(next http.Handler) http.Handler {
		guarded := eg.g.Middleware(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var cfg *EnergyGuard
			n.view(func(s *Scenario, now time.Time) {
				if s.Energy.Guard != nil {
					c := *s.Energy.Guard
					cfg = &c
				}
			})
			if cfg == nil {
				next.ServeHTTP(w, r)
				return
			}
			eg.mu.Lock()
			if eg.applied != *cfg {
				eg.g.SetToken(cfg.Token)
				rps := cfg.RPS
				if rps <= 0 {
					rps = energy.DefaultRPS
				}
				_ = eg.g.SetRPS(rps)
				eg.applied = *cfg
			}
			eg.mu.Unlock()
			guarded.ServeHTTP(w, r)
			n.view(func(s *Scenario, now time.Time) {
				s.Energy.RPCRejected = map[string]float64{
					energy.RejectUnauthorized: float64(eg.g.Rejected(energy.RejectUnauthorized)),
					energy.RejectRateLimited:  float64(eg.g.Rejected(energy.RejectRateLimited)),
				}
			})
		})
	})
}

func keyWire(b64 string, ref bool) string {
	if !ref {
		return b64
	}
	raw, _ := base64.StdEncoding.DecodeString(b64)
	return hex.EncodeToString(raw)
}

func providerWire(p EnergyProvider, ref, detail bool) map[string]any {
	m := map[string]any{"provider_id": p.ProviderID, "status": p.Status, "reputation_score": p.Reputation.Composite,
		"capacity_kwh": p.CapacityKWh, "price_per_kwh": p.PricePerKWh}
	if !ref {
		m["reputation"] = map[string]any{"composite_score": p.Reputation.Composite, "delivery": p.Reputation.Delivery,
			"meter": p.Reputation.Meter, "latency": p.Reputation.Latency, "capacity": p.Reputation.Capacity}
	}
	if detail {
		m["public_key"], m["scheme"] = keyWire(p.PublicKey, ref), p.Scheme
		m["last_settlement"], m["last_reading_at"] = p.LastSettlement, p.LastReadingAt
	}
	return m
}

func disputeWire(d EnergyDispute, ref, detail bool) map[string]any {
	m := map[string]any{"provider_id": d.ProviderID, "meter": d.Meter, "status": d.Status, "reason": d.Reason, "opened_at": d.OpenedAt, "resolved_at": nil}
	if d.ResolvedAt != 0 {
		m["resolved_at"] = d.ResolvedAt
	}
	if ref {
		m["id"] = d.DisputeID
	} else {
		m["dispute_id"] = d.DisputeID
	}
	if detail {
		m["evidence"] = map[string]any{"summary": d.Evidence}
	}
	return m
}

// submitReading checks a reading the way a node does — independently of the
// energy package's verifier, so that Sign is tested against another
// implementation — and records a pending credit.
func (n *Node) submitReading(params json.RawMessage) (any, error) {
	var p struct {
		ProviderID   string  `json:"provider_id"`
		Meter        string  `json:"meter"`
		MeterAddress string  `json:"meter_address"`
		TotalKWh     *uint64 `json:"total_kwh"`
		KWhReading   *uint64 `json:"kwh_reading"`
		Timestamp    uint64  `json:"timestamp"`
		Nonce        uint64  `json:"nonce"`
		Signature    string  `json:"signature"`
		Scheme       string  `json:"scheme"`
	}
	sigErr := func(reason, msg string) error {
		return &rpc.Error{Code: rpc.CodeSignatureFailed, Message: "signature verification failed: " + msg,
			Data: json.RawMessage(`{"reason":"` + reason + `"}`)}
	}
	if err := rpc.BindParams(params, &p); err != nil {
		return nil, sigErr("invalid_format", err.Message)
	}
	meter := p.Meter
	if meter == "" {
		meter = p.MeterAddress
	}
	kwh := p.TotalKWh
	if kwh == nil {
		kwh = p.KWhReading
	}
	if p.ProviderID == "" || meter == "" || kwh == nil {
		return nil, sigErr("invalid_format", "provider_id, meter and total_kwh are required")
	}
	sig, err := base64.StdEncoding.DecodeString(p.Signature)
	if err != nil {
		sig, err = hex.DecodeString(p.Signature)
	}
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, sigErr("invalid_format", "signature is not 64 bytes of base64 or hex")
	}
	var out any
	var rerr error
	n.view(func(s *Scenario, now time.Time) {
		e := &s.Energy
		var prov *EnergyProvider
		for i := range e.Providers {
			if e.Providers[i].ProviderID == p.ProviderID {
				prov = &e.Providers[i]
			}
		}
		if prov == nil || prov.PublicKey == "" {
			rerr = sigErr("key_not_found", "no key for provider "+p.ProviderID)
			return
		}
		scheme := p.Scheme
		if scheme == "" {
			scheme = "ed25519"
		}
		if scheme != "ed25519" && scheme != "ed25519-blake3" {
			rerr = sigErr("scheme_unsupported", "scheme "+scheme)
			return
		}
		msg := []byte(p.ProviderID + meter)
		msg = binary.LittleEndian.AppendUint64(msg, *kwh)
		msg = binary.LittleEndian.AppendUint64(msg, p.Timestamp)
		msg = binary.LittleEndian.AppendUint64(msg, p.Nonce)
		if scheme == "ed25519-blake3" {
			d := blake3.Sum256(msg)
			msg = d[:]
		}
		pub, _ := base64.StdEncoding.DecodeString(prov.PublicKey)
		if !ed25519.Verify(pub, msg, sig) {
			rerr = sigErr("verification_failed", "signature does not verify")
			return
		}
		maxSkew := e.MaxSkewSeconds
		if maxSkew <= 0 {
			maxSkew = 300
		}
		if skew := int64(p.Timestamp) - now.Unix(); p.Timestamp > 1<<62 || skew > maxSkew || -skew > maxSkew {
			rerr = &rpc.Error{Code: rpc.CodeTimestampSkew, Message: fmt.Sprintf("timestamp skew: %d s", skew),
				Data: json.RawMessage(fmt.Sprintf(`{"reason":"timestamp_skew","skew_seconds":%d}`, skew))}
			return
		}
		if last, ok := e.Nonces[p.ProviderID]; ok && p.Nonce <= last {
			rerr = &rpc.Error{Code: rpc.CodeNonceReplay, Message: fmt.Sprintf("nonce %d is not above %d", p.Nonce, last),
				Data: json.RawMessage(fmt.Sprintf(`{"reason":"nonce_replay","last_nonce":%d}`, last))}
			return
		}
		if e.Nonces == nil {
			e.Nonces = map[string]uint64{}
		}
		e.Nonces[p.ProviderID] = p.Nonce
		sh := n.flowShift(e, now) // stored in the start frame of a flowing market
		prov.LastReadingAt = now.Unix() - sh
		id := fmt.Sprintf("cr-%d", len(e.Credits)+1)
		e.Credits = append(e.Credits, EnergyCredit{CreditID: id, ProviderID: p.ProviderID, Meter: meter, AmountKWh: int64(*kwh % (1 << 62)),
			Status: "pending", ReadingTimestamp: int64(p.Timestamp) - sh, CreatedAt: now.Unix() - sh})
		out = map[string]any{"credit_id": id}
	})
	if rerr != nil {
		return nil, rerr
	}
	return out, nil
}

func shiftNZ(t, d int64) int64 {
	if t == 0 {
		return 0
	}
	return t + d
}
