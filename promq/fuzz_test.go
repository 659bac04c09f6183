package promq_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/theblock/tbops/promq"
)

func FuzzDecodeQueryResponse(f *testing.F) {
	for _, s := range []string{
		vectorBody,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1.5,"1"],[2,"+Inf"]]}]}}`,
		`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3.25"]}}`,
		`{"status":"success","data":{"resultType":"string","result":[1,"hi"]}}`,
		`{"status":"error","errorType":"bad_data","error":"parse error"}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"1","sum":"1","buckets":[[0,"0","1","1"]]}]}]}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1e3,"1"]]}]}}`,
		`<html>oops</html>`, `{"status":"succ`, ``, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := promq.DecodeQueryResponse(body)
		if err != nil {
			var ae *promq.APIError
			if !errors.Is(err, promq.ErrMalformed) && !errors.Is(err, promq.ErrUnsupported) && !errors.As(err, &ae) {
				t.Fatalf("untyped error %v", err)
			}
			if res != nil {
				t.Fatal("result with an error")
			}
			return
		}
		switch v := res.Value.(type) {
		case model.Vector:
			for _, s := range v {
				if s == nil || s.Metric == nil {
					t.Fatal("nil sample or metric")
				}
			}
		case model.Matrix:
			for _, s := range v {
				if s == nil || s.Metric == nil {
					t.Fatal("nil stream or metric")
				}
			}
		case *model.Scalar, *model.String:
		default:
			t.Fatalf("unexpected value %T", res.Value)
		}
	})
}

// FuzzScrapeExposition feeds arbitrary /metrics bodies through the whole scrape
// path (HTTP, parser, ring, every query) and checks it never panics and that a
// failed scrape leaves an error naming the URL.
func FuzzScrapeExposition(f *testing.F) {
	for _, s := range []string{
		"# TYPE c_total counter\nc_total{a=\"b\"} 1\n",
		"# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
		"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_count 1\n",
		"g 1 1700000000000\n", "h_bucket{le=\"x\"} 1\n", "{\"utf8.name\"} 3\n", "<html>", "a{b=\"c\n",
	} {
		f.Add([]byte(s))
	}
	var body atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(*body.Load())
	}))
	defer srv.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		body.Store(&b)
		now := time.Unix(1700000000, 0)
		s := promq.NewScrape([]string{srv.URL}, promq.WithScrapeClock(func() time.Time { return now }))
		defer s.Close()
		ctx := context.Background()
		if _, err := promq.ParseExposition(b, "text/plain", now); err != nil {
			if serr := s.Scrape(ctx); serr == nil {
				t.Fatalf("parser failed (%v) but scrape succeeded", err)
			}
			return
		}
		_ = s.Scrape(ctx)
		now = now.Add(time.Second)
		_ = s.Scrape(ctx)
		for _, name := range []string{"c_total", "h", "s", "g", "a"} {
			sel := promq.Select(name)
			_, _ = s.Instant(ctx, sel)
			_, _ = s.Rate(ctx, sel, time.Minute)
			_, _ = s.Increase(ctx, sel, time.Minute)
			_, _ = s.Quantile(ctx, 0.9, sel, 0)
			_, _ = s.Quantile(ctx, 0.9, sel, time.Minute)
			_, _ = s.Samples(ctx, sel, time.Minute)
		}
	})
}
