package bench

// Decoding a 10 000-sample matrix: tbops/promq against client_golang's API client
// (github.com/prometheus/client_golang/api/prometheus/v1).
//
// Fairness: both clients run a full QueryRange call through their public API on
// the same response bytes (10 series × 1 000 samples, Prometheus' own JSON
// shape, 445 kB). Two transports:
//   - "mem": an http.RoundTripper that answers from memory, so the figures are
//     the client stacks and their decoders, with no network noise;
//   - "http": a real httptest server on loopback, the end-to-end call.
// Both return prometheus/common/model.Matrix values, checked equal once.
//
// Run: cd bench && go test -run '^$' -bench 'PromqMatrix' -benchmem -benchtime 200x .

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/promq"
)

// matrixJSON is a query_range answer with series×perSeries samples.
func matrixJSON(series, perSeries int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
	for s := 0; s < series; s++ {
		if s > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":{"__name__":"receipt_emitted_total","instance":"10.0.0.%d:3030","job":"node","market":"m%d"},"values":[`, s, s)
		for i := 0; i < perSeries; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `[%d.%03d,"%g"]`, 1700000000+i*15, i%1000, float64(i)*1.25+float64(s))
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}}`)
	return b.Bytes()
}

// memTransport answers every request with the same JSON body from memory.
type memTransport struct{ body []byte }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(m.body)),
		ContentLength: int64(len(m.body)), Request: r}, nil
}

const benchQuery = `rate(receipt_emitted_total[1m])`

var (
	benchStart = time.Unix(1700000000, 0)
	benchEnd   = benchStart.Add(1000 * 15 * time.Second)
)

func promqClient(b testing.TB, base string, rt http.RoundTripper) *promq.Client {
	c, err := promq.NewClient(base, promq.WithHTTPClient(&http.Client{Transport: rt}))
	require.NoError(b, err)
	return c
}

func clientGolang(b testing.TB, base string, rt http.RoundTripper) v1.API {
	c, err := api.NewClient(api.Config{Address: base, RoundTripper: rt})
	require.NoError(b, err)
	return v1.NewAPI(c)
}

func TestPromqMatrixDecodersAgree(t *testing.T) {
	body := matrixJSON(10, 1000)
	rt := memTransport{body: body}
	ours, err := promqClient(t, "http://prom.invalid", rt).QueryRange(context.Background(), benchQuery, benchStart, benchEnd, 15*time.Second)
	require.NoError(t, err)
	theirs, _, _, err := clientGolang(t, "http://prom.invalid", rt).QueryRange(context.Background(), benchQuery,
		v1.Range{Start: benchStart, End: benchEnd, Step: 15 * time.Second})
	require.NoError(t, err)
	m := ours.Matrix()
	require.Len(t, m, 10)
	require.Len(t, m[3].Values, 1000)
	require.Equal(t, theirs.(model.Matrix), m)
}

func benchPromq(b *testing.B, base string, rt http.RoundTripper) {
	c := promqClient(b, base, rt)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := c.QueryRange(ctx, benchQuery, benchStart, benchEnd, 15*time.Second)
		if err != nil || len(r.Matrix()) != 10 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/sample")
}

func benchClientGolang(b *testing.B, base string, rt http.RoundTripper) {
	a := clientGolang(b, base, rt)
	ctx := context.Background()
	r := v1.Range{Start: benchStart, End: benchEnd, Step: 15 * time.Second}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, _, _, err := a.QueryRange(ctx, benchQuery, r)
		if err != nil || len(v.(model.Matrix)) != 10 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/sample")
}

func BenchmarkPromqMatrix10k(b *testing.B) {
	body := matrixJSON(10, 1000)
	b.Run("mem/promq", func(b *testing.B) { benchPromq(b, "http://prom.invalid", memTransport{body}) })
	b.Run("mem/client_golang", func(b *testing.B) { benchClientGolang(b, "http://prom.invalid", memTransport{body}) })

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/api/v1/query_range") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	b.Run("http/promq", func(b *testing.B) { benchPromq(b, srv.URL, http.DefaultTransport) })
	b.Run("http/client_golang", func(b *testing.B) { benchClientGolang(b, srv.URL, http.DefaultTransport) })
}
