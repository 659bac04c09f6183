// Command energy-guard puts energy.Guard (bearer token + per-client
// sliding-window rate limit, runbook "Energy RPC Guardrails") in front of a
// node's JSON-RPC endpoint as a bounded reverse proxy (energy.GuardServer, what
// tbops energy guard runs), and shows what a client sees:
// -33009 without the token, -33010 with a retry delay over the limit.
//
//	go run ./examples/energy-guard
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "energy-guard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// The guard's window follows this clock, so the burst below is refused
	// deterministically however slow the machine is.
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	node, err := nodetest.New(nodetest.WithClock(clk.Now))
	if err != nil {
		return err
	}
	defer node.Close()
	// Pretend the node has no guard of its own: ours in front is the only one.
	node.Update(func(s *nodetest.Scenario) { s.Energy.Guard = nil })

	// 3 energy.* requests per client per second; other methods pass untouched.
	guard, err := energy.NewGuard(energy.GuardOptions{
		Token:  "s3cret",
		RPS:    3,
		Window: time.Second,
		Now:    clk.Now,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	// The server bounds every wait (headers, body, idle keep-alives, the node's
	// answer) and the number of open connections; the zero options are the
	// defaults tbops energy guard runs with.
	srv, err := energy.NewGuardServer(guard, node.URL(), energy.GuardServerOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() { stop(); <-served }()
	proxyURL := "http://" + ln.Addr().String() + "/"

	// One attempt per call shows each refusal instead of retrying it; the
	// token is passed explicitly (a client never reads TB_ENERGY_RPC_TOKEN).
	anon, err := energy.NewClient(proxyURL, rpc.WithRetries(1))
	if err != nil {
		return err
	}
	authed, err := energy.NewClient(proxyURL, rpc.WithRetries(1), rpc.WithToken("s3cret"))
	if err != nil {
		return err
	}

	var retry time.Duration // the last delay the guard asked for
	try := func(label string, c *energy.Client) {
		m, err := c.Market(ctx)
		switch {
		case err == nil:
			fmt.Fprintf(w, "%-12s ok: %d providers\n", label, len(m.Providers))
		case errors.Is(err, energy.ErrUnauthorized):
			fmt.Fprintf(w, "%-12s ErrUnauthorized (-33009)\n", label)
		case errors.Is(err, energy.ErrRateLimited):
			// The larger of the Retry-After header (whole seconds) and
			// error.data.retry_after_ms: waiting that long is always enough.
			retry, _ = energy.RetryAfter(err)
			fmt.Fprintf(w, "%-12s ErrRateLimited (-33010), retry after %v\n", label, retry)
		default:
			fmt.Fprintf(w, "%-12s unexpected error: %v\n", label, err)
		}
	}

	try("no token", anon)
	try("with token", authed)
	// The limit is checked before the token, so the anonymous request above
	// used one of the three slots: the burst gets one through, then refusals.
	for i := 1; i <= 3; i++ {
		try(fmt.Sprintf("burst #%d", i), authed)
	}
	// A client that waits as long as it was told is served again.
	clk.Advance(retry)
	try("after wait", authed)

	fmt.Fprintf(w, "rejected: unauthorized=%d rate_limited=%d\n",
		guard.Rejected(energy.RejectUnauthorized), guard.Rejected(energy.RejectRateLimited))
	return nil
}
