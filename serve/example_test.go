package serve_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/serve"
)

// uptime is a runbook with a window: the node's scrape has been up for two
// minutes. Until serve's own history covers the window, it is unknown.
func uptime(n serve.Node, src promq.Source, now func() time.Time) tbops.Runbook {
	return tbops.Func("uptime", func(ctx context.Context) (tbops.Report, error) {
		r := tbops.NewReport("uptime", n.URL, now())
		r.Scope = src.Name()
		h, err := promq.HeldFor(ctx, src, promq.Select("up"), promq.EQ, 1, 2*time.Minute)
		if err != nil {
			return r, err
		}
		s := tbops.Symptom{ID: "flapping", Summary: "the node was not up for the last 2 minutes", Status: tbops.StatusUnknown}
		switch {
		case h.Known && h.Held:
			s.Status = tbops.StatusOK
		case h.Known:
			s.Firing, s.Status = true, tbops.StatusWarning
		}
		r.Symptoms = []tbops.Symptom{s}
		r.Warnings = h.Warnings
		r.Finalize()
		return r, nil
	})
}

// Serve against a simulated node on a fake clock: the scrape history grows
// with every Scrape, and the windowed verdict is decided once it covers the
// window. A program would call Serve(ctx, listener) instead, which runs the
// same loop on real time and answers HTTP (Handler).
func Example() {
	ctx := context.Background()
	clk := nodetest.NewFakeClock(time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC))
	node, err := nodetest.New(nodetest.WithClock(clk.Now))
	if err != nil {
		panic(err)
	}
	defer node.Close()

	runbooks := func(n serve.Node, src promq.Source) []tbops.Runbook {
		return []tbops.Runbook{uptime(n, src, clk.Now)}
	}
	srv, err := serve.New(ctx, []serve.Node{{URL: node.URL()}}, runbooks, serve.WithClock(clk.Now))
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	_ = srv.Scrape(ctx)
	for minute := 0; minute <= 2; minute++ {
		_ = srv.RunOnce(ctx)
		r := srv.Reports("", "").Reports[0]
		fmt.Printf("after %dm: %s %s\n", minute, r.Runbook, r.Status)
		for i := 0; i < 4; i++ { // four scrapes a minute
			clk.Advance(serve.DefaultScrapeInterval)
			_ = srv.Scrape(ctx)
		}
	}
	// Output:
	// after 0m: uptime unknown
	// after 1m: uptime unknown
	// after 2m: uptime ok
}

// DecodeWebhook reads Alertmanager's webhook body and names what is wrong
// with one it refuses.
func ExampleDecodeWebhook() {
	body := `{"version":"4","status":"firing","receiver":"tbops","groupKey":"{}","truncatedAlerts":0,
		"alerts":[{"status":"firing","labels":{"alertname":"TreasuryExecutorFailing","instance":"node-a:3030"},
		"annotations":{},"startsAt":"2026-11-29T03:00:00Z","fingerprint":"c0ffee0000000001"}]}`
	p, err := serve.DecodeWebhook(strings.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	a := p.Alerts[0]
	fmt.Println(a.Name(), a.Labels["instance"], a.Status, a.Fingerprint)

	_, err = serve.DecodeWebhook(strings.NewReader(strings.Replace(body, `"fingerprint":"c0ffee0000000001"`, `"fingerprint":""`, 1)))
	fmt.Println(err)
	// Output:
	// TreasuryExecutorFailing node-a:3030 firing c0ffee0000000001
	// alerts[0].fingerprint: missing
}
