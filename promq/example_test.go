package promq_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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

// The Prometheus-API client against a Mimir-style server behind a path prefix
// with a tenant header.
func ExampleClient_Query() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prometheus/api/v1/query" || r.Header.Get("X-Scope-OrgID") != "ops" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[` +
			`{"metric":{"market":"a"},"value":[1700000000,"0.5"]}]},"warnings":["partial response"]}`))
	}))
	defer srv.Close()

	c, _ := promq.NewClient(srv.URL+"/prometheus", promq.WithHeader("X-Scope-OrgID", "ops"))
	res, err := c.Query(context.Background(), "rate(receipt_emitted_total[1m])", time.Time{})
	if err != nil {
		panic(err)
	}
	for _, s := range res.Vector() {
		fmt.Println(s.Metric["market"], s.Value)
	}
	fmt.Println(res.Warnings)

	_, err = c.Query(context.Background(), "up", time.Time{})
	fmt.Println(err == nil)
	// Output:
	// a 0.5
	// [partial response]
	// true
}
