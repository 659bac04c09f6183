// Command peer-limiter shows p2p.Limiter deciding messages from several peers
// (runbook "P2P Rate Limiting and Chain Sync"): which limit refused a message
// and when it would pass, a live config reload that keeps each peer's usage,
// and the chain-sync ticker turned off with interval 0.
//
//	go run ./examples/peer-limiter
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/theblock/tbops/p2p"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peer-limiter:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// Incident-response settings: 3 requests and 4 KiB per peer per 1 s window.
	cfg := p2p.DefaultConfig()
	cfg.MaxPerSec, cfg.MaxBytesPerSec = 3, 4096
	lim, err := p2p.NewLimiter(cfg)
	if err != nil {
		return err
	}
	// Allow takes the time from the caller, so decisions are exact and testable.
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	// Derive a PeerID once per connection, not per message.
	chatty := p2p.PeerIDFromString("12D3KooW-chatty")
	bulky := p2p.PeerIDFromString("12D3KooW-bulky")
	huge := p2p.PeerIDFromString("12D3KooW-huge")
	decide := func(name string, peer p2p.PeerID, size, ms int) {
		d := lim.Allow(peer, size, at(ms))
		if d.Allowed() {
			fmt.Fprintf(w, "t=%4dms %-6s %5dB allowed\n", ms, name, size)
			return
		}
		// LimitSize has RetryAfter 0: the message can never pass, do not retry.
		fmt.Fprintf(w, "t=%4dms %-6s %5dB refused by %s limit, retry after %v\n", ms, name, size, d.Limit, d.RetryAfter)
	}
	for i := range 4 {
		decide("chatty", chatty, 100, i*10)
	}
	decide("bulky", bulky, 3000, 0)
	decide("bulky", bulky, 3000, 100)
	decide("huge", huge, 10_000, 0)
	st := lim.Stats()
	fmt.Fprintf(w, "stats: peers=%d allowed=%d refused requests=%d bytes=%d size=%d\n",
		st.Peers, st.Allowed, st.RefusedRequests, st.RefusedBytes, st.RefusedSize)

	// A config reload raises the request limit to 5 without restarting: chatty
	// keeps the 3 it already used, so only 2 more pass in this window.
	cfg.MaxPerSec = 5
	if err := lim.SetConfig(cfg); err != nil {
		return err
	}
	fmt.Fprintf(w, "reloaded: p2p_max_per_sec=%d\n", lim.Config().MaxPerSec)
	for i := range 3 {
		decide("chatty", chatty, 100, 50+i*10)
	}
	// An invalid reload changes nothing and says why.
	bad := cfg
	bad.MaxPerSec = 0
	fmt.Fprintf(w, "bad reload: %v (still %d)\n", lim.SetConfig(bad), lim.Config().MaxPerSec)

	// Chain sync: p2p_chain_sync_interval_ms = 0 (isolation tests) means no
	// goroutine and no ticks at all. A hand-driven tick source stands in for
	// the wall clock so the example is instant.
	ticks := make(chan time.Time, 1)
	manual := func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
	cfg.ChainSyncIntervalMS = 0
	tk := p2p.NewSyncTicker(cfg.ChainSyncInterval(), p2p.WithTickSource(manual))
	defer tk.Stop()
	fmt.Fprintf(w, "sync ticker: interval=%v running=%t\n", tk.Interval(), tk.Running())

	// A reload turns it on at 500 ms; one tick from our source reaches C.
	cfg.ChainSyncIntervalMS = 500
	tk.ApplyConfig(cfg)
	ticks <- at(500)
	select {
	case t := <-tk.C():
		fmt.Fprintf(w, "sync ticker: interval=%v running=%t tick at %s\n", tk.Interval(), tk.Running(), t.Format("15:04:05.000"))
	case <-ctx.Done():
		return ctx.Err()
	}
	tk.SetInterval(0) // back to isolation: the goroutine ends
	fmt.Fprintf(w, "sync ticker: interval=%v running=%t\n", tk.Interval(), tk.Running())
	return nil
}
