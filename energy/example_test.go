package energy_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

// Sign a reading as the runbook's Python snippet does, verify it, and see a
// tampered copy fail with the runbook's reason.
func ExampleSign() {
	key := ed25519.NewKeyFromSeed(make([]byte, 32)) // use the provider's real key
	r := energy.Reading{ProviderID: "provider_usa_001", Meter: "meter_001", TotalKWh: 1500000, Timestamp: 1700000000, Nonce: 12345}
	signed, err := energy.Sign(r, key)
	if err != nil {
		panic(err)
	}
	reg := energy.NewKeyRegistry()
	_ = reg.Add("provider_usa_001", energy.SchemeEd25519, hex.EncodeToString(key.Public().(ed25519.PublicKey)))
	fmt.Println("message bytes:", len(signed.Message()))
	fmt.Println("valid:", energy.VerifyWith(reg, signed) == nil)

	signed.TotalKWh = 1600000
	err = energy.VerifyWith(reg, signed)
	fmt.Println("tampered:", errors.Is(err, energy.ErrVerificationFailed))
	var ve *energy.VerifyError
	if errors.As(err, &ve) {
		fmt.Println("reason:", ve.Reason)
	}
	// Output:
	// message bytes: 49
	// valid: true
	// tampered: true
	// reason: verification_failed
}

// The Energy Stalled runbook of two simulated nodes in one tbops.Diagnose loop,
// each scraped for 16 minutes (every window covered): the healthy node is ok;
// on the other, three providers' clocks drifted, nothing settles, and Path C
// names them (no log glob given: from their settlement times).
func ExampleNewRunbook() {
	ctx := context.Background()
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var rbs []tbops.Runbook
	for _, scenario := range []string{"energy-healthy", "energy-timestamp-skew"} {
		clk := nodetest.NewFakeClock(start) // each node's own simulated time
		node, err := nodetest.New(nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario))
		if err != nil {
			panic(err)
		}
		defer node.Close()
		src, err := nodetest.NewSource(ctx, node, clk, 0)
		if err != nil {
			panic(err)
		}
		defer src.Close()
		if err := src.Advance(ctx, 16*time.Minute); err != nil {
			panic(err)
		}
		c, err := energy.NewClient(node.URL(), rpc.WithClock(clk.Now))
		if err != nil {
			panic(err)
		}
		rbs = append(rbs, energy.NewRunbook(c, src, energy.Options{}))
	}
	for _, r := range tbops.Diagnose(ctx, nil, rbs...) {
		var firing []string
		for _, s := range r.Firing() {
			firing = append(firing, s.ID)
		}
		fmt.Println(r.Runbook, r.Status, firing)
		for _, p := range r.Matched() {
			fmt.Printf("  path %s (%s): %s\n", p.ID, p.Title, p.Why)
		}
	}
	// Output:
	// energy-stalled ok []
	// energy-stalled critical [pending-credits-not-decreasing readings-not-settling]
	//   path C (Timestamp skew): node logs not read (indicator: timestamp_skew in /var/log/node/*.log); from the providers' last settlements: provider_usa_001, provider_eu_002, provider_apac_003 lag the newest settlement by over 10m0s
}

// The guard as middleware in front of a simulated node: without the token,
// ErrUnauthorized (-33009); with it, the node's answer; past the limit,
// ErrRateLimited (-33010) with the delay to wait.
func ExampleGuard_Middleware() {
	node, err := nodetest.New()
	if err != nil {
		panic(err)
	}
	defer node.Close()
	upstream, err := url.Parse(node.URL())
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // a still clock: every call in one window
	guard, err := energy.NewGuard(energy.GuardOptions{Token: "s3cret", RPS: 2, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	proxy := httptest.NewServer(guard.Middleware(httputil.NewSingleHostReverseProxy(upstream)))
	defer proxy.Close()

	ctx := context.Background()
	anon, _ := energy.NewClient(proxy.URL, rpc.WithRetries(1))
	authed, _ := energy.NewClient(proxy.URL, rpc.WithRetries(1), rpc.WithToken("s3cret"))
	for _, c := range []*energy.Client{anon, authed, authed} {
		m, err := c.Market(ctx)
		switch {
		case errors.Is(err, energy.ErrUnauthorized):
			fmt.Println("unauthorized")
		case errors.Is(err, energy.ErrRateLimited):
			wait, _ := energy.RetryAfter(err)
			fmt.Println("rate limited, retry after", wait)
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Println(len(m.Providers), "providers")
		}
	}
	fmt.Println("rejected:", guard.Rejected(energy.RejectUnauthorized), "unauthorized,", guard.Rejected(energy.RejectRateLimited), "rate limited")
	// Output:
	// unauthorized
	// 5 providers
	// rate limited, retry after 2s
	// rejected: 1 unauthorized, 1 rate limited
}
