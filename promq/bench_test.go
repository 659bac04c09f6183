package promq_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/theblock/tbops/promq"
)

// exposition400 is a 400-line /metrics body: 20 counter families × 10 series,
// 10 histograms × (12 buckets + sum + count) = 200 + 140 sample lines, and the
// HELP/TYPE lines (60).
func exposition400() []byte {
	var b bytes.Buffer
	for f := 0; f < 20; f++ {
		fmt.Fprintf(&b, "# HELP c%d_total A counter.\n# TYPE c%d_total counter\n", f, f)
		for s := 0; s < 10; s++ {
			fmt.Fprintf(&b, "c%d_total{market=\"m%d\",provider=\"p%d\"} %d\n", f, s, s%3, 1000*f+s)
		}
	}
	for h := 0; h < 10; h++ {
		fmt.Fprintf(&b, "# HELP h%d_seconds A histogram.\n# TYPE h%d_seconds histogram\n", h, h)
		for i, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"} {
			fmt.Fprintf(&b, "h%d_seconds_bucket{le=%q} %d\n", h, le, 10*(i+1))
		}
		fmt.Fprintf(&b, "h%d_seconds_sum 12.5\nh%d_seconds_count 120\n", h, h)
	}
	return b.Bytes()
}

func TestExposition400HasFourHundredLines(t *testing.T) {
	if n := bytes.Count(exposition400(), []byte("\n")); n != 400 {
		t.Fatalf("%d lines", n)
	}
}

// BenchmarkParseExposition400 is the parser alone (expfmt text parser and sample
// extraction).
func BenchmarkParseExposition400(b *testing.B) {
	body := exposition400()
	now := time.Unix(1700000000, 0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := promq.ParseExposition(body, "text/plain; version=0.0.4", now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrape400 is one whole scrape over loopback: fetch, parse, store in
// the rings.
func BenchmarkScrape400(b *testing.B) {
	body := exposition400()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	t := time.Unix(1700000000, 0)
	s := promq.NewScrape([]string{srv.URL}, promq.WithScrapeClock(func() time.Time { t = t.Add(time.Second); return t }))
	defer s.Close()
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := s.Scrape(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrapeQuantile is a windowed histogram_quantile over a full ring.
func BenchmarkScrapeQuantile(b *testing.B) {
	body := exposition400()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	t := time.Unix(1700000000, 0)
	s := promq.NewScrape([]string{srv.URL}, promq.WithScrapeClock(func() time.Time { return t }))
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < 300; i++ {
		t = t.Add(time.Second)
		if err := s.Scrape(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Quantile(ctx, 0.99, promq.Select("h3_seconds"), 5*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeMatrix10k decodes a 10 000-sample query_range body from bytes.
func BenchmarkDecodeMatrix10k(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
	for s := 0; s < 10; s++ {
		if s > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"metric":{"__name__":"x","market":"m%d"},"values":[`, s)
		for i := 0; i < 1000; i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `[%d.5,"%d.25"]`, 1700000000+i*15, i)
		}
		buf.WriteString(`]}`)
	}
	buf.WriteString(`]}}`)
	body := buf.Bytes()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := promq.DecodeQueryResponse(body); err != nil {
			b.Fatal(err)
		}
	}
}
