package p2p_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/theblock/tbops/p2p"
	"github.com/theblock/tbops/runtime"
)

// Three requests per one-second window: the fourth is refused, with the time
// until it would pass (when the first has left the window).
func ExampleLimiter() {
	cfg := p2p.DefaultConfig()
	cfg.MaxPerSec = 3
	lim, err := p2p.NewLimiter(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	peer := p2p.PeerIDFromString("12D3KooWPeerA")
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 4 {
		d := lim.Allow(peer, 512, now.Add(time.Duration(i)*time.Millisecond))
		if d.Allowed() {
			fmt.Println("allowed")
		} else {
			fmt.Printf("refused by %s limit, retry in %v\n", d.Limit, d.RetryAfter)
		}
	}
	fmt.Println(lim.Allow(peer, 1<<20, now).Limit) // bigger than the byte limit on its own
	// Output:
	// allowed
	// allowed
	// allowed
	// refused by requests limit, retry in 997.000001ms
	// size
}

// A config reload raises the limit without forgetting what the peer used.
func ExampleLimiter_SetConfig() {
	cfg := p2p.DefaultConfig()
	cfg.MaxPerSec = 1
	lim, _ := p2p.NewLimiter(cfg)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	fmt.Println(lim.Allow(7, 100, now).Allowed(), lim.Allow(7, 100, now).Allowed())
	cfg.MaxPerSec = 2
	if err := lim.SetConfig(cfg); err != nil {
		fmt.Println(err)
	}
	fmt.Println(lim.Allow(7, 100, now).Allowed(), lim.Allow(7, 100, now).Allowed())
	cfg.MaxPerSec = -1
	fmt.Println(lim.SetConfig(cfg))
	// Output:
	// true false
	// true false
	// p2p config: p2p_max_per_sec = -1: out of range (allowed 1..50000 requests)
}

// The chain-sync ticker: 0 turns it off (no goroutine), a reload turns it on.
func ExampleSyncTicker() {
	tk := p2p.NewSyncTicker(0) // p2p_chain_sync_interval_ms = 0: isolation test
	fmt.Println("running:", tk.Running())
	tk.SetInterval(5 * time.Millisecond)
	<-tk.C()
	fmt.Println("tick; running:", tk.Running())
	tk.Stop()
	fmt.Println("running:", tk.Running())
	// Output:
	// running: false
	// tick; running: true
	// running: false
}

// The p2p keys live in the node config file with the runtime knobs;
// runtime.LoadNodeConfig reads both (defaults < file < environment) and its
// P2P part converts to a Config.
func ExampleConfig() {
	dir, _ := os.MkdirTemp("", "p2p")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "node.toml")
	_ = os.WriteFile(path, []byte(`
p2p_rate_window_secs = 2
p2p_max_per_sec = 50

[runtime]
reactor_idle_poll_ms = 50
`), 0o600)
	env := map[string]string{"TB_P2P_CHAIN_SYNC_INTERVAL_MS": "0"}
	nc, _, _, err := runtime.LoadNodeConfig(path, func(k string) string { return env[k] })
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := p2p.Config(nc.P2P)
	lim, err := p2p.NewLimiter(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("window:", cfg.Window(), "max per peer:", cfg.MaxPerSec, "chain sync:", cfg.ChainSyncInterval())
	fmt.Println(lim.Allow(p2p.PeerIDFromString("peer"), 100, time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)).Allowed())

	cfg.MaxPerSec = 0
	fmt.Println(cfg.Validate())
	// Output:
	// window: 2s max per peer: 50 chain sync: 0s
	// true
	// p2p config: p2p_max_per_sec = 0: out of range (allowed 1..50000 requests)
}
