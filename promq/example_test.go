package promq_test

import (
	"context"
	"fmt"
	"time"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// The scrape source against a simulated node on a fake clock: two scrapes a
// minute apart give exact rates.
func ExampleScrape() {
	clk := nodetest.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	node, err := nodetest.New(nodetest.WithClock(clk.Now))
	if err != nil {
		panic(err)
	}
	defer node.Close()

	src := promq.NewScrape([]string{node.MetricsURL()}, promq.WithScrapeClock(clk.Now))
	defer src.Close()
	ctx := context.Background()
	_ = src.Scrape(ctx)
	clk.Advance(time.Minute)
	_ = src.Scrape(ctx)

	r, _ := src.Rate(ctx, promq.Select("block_height_total"), 5*time.Minute)
	v, _ := r.Value()
	fmt.Printf("%s = %g blocks/s\n", "rate(block_height_total[5m])", v)

	r, _ = src.Instant(ctx, promq.Select("no_such_metric"))
	_, ok := r.Value()
	fmt.Println(ok, r.Warnings)
	// Output:
	// rate(block_height_total[5m]) = 1 blocks/s
	// false [no data for no_such_metric]
}
