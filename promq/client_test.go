package promq_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/promq"
)

// apiServer is a Prometheus-compatible API behind the path prefix "/prom/tenant"
// (as Mimir or a reverse proxy puts it) that records the requests it gets.
type apiServer struct {
	*httptest.Server
	reqs   atomic.Int64
	last   atomic.Pointer[http.Request]
	answer func(w http.ResponseWriter, r *http.Request)
}

const prefix = "/prom/tenant"

func newAPIServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *apiServer {
	t.Helper()
	s := &apiServer{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.reqs.Add(1)
		_ = r.ParseForm()
		s.last.Store(r)
		if !strings.HasPrefix(r.URL.Path, prefix+"/api/v1/") {
			w.Header().Set("Content-Type", "text/plain")
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		s.answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) base() string { return s.URL + prefix }

func jsonAnswer(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const vectorBody = `{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"__name__":"x","market":"a"},"value":[1700000000.123,"1.5"]},
 {"metric":{"__name__":"x","market":"b"},"value":[1700000000.123,"NaN"]}]},
 "warnings":["partial response"],"infos":["input to histogram_quantile fixed"]}`

func TestClientQueryBasePathHeadersParams(t *testing.T) {
	srv := newAPIServer(t, jsonAnswer(200, vectorBody))
	c, err := promq.NewClient(srv.base()+"/?dedup=true", promq.WithHeader("X-Scope-OrgID", "team-a"),
		promq.WithParam("partial_response", "false"), promq.WithTimeout(3*time.Second))
	require.NoError(t, err)
	assert.Equal(t, srv.base(), c.URL())
	at := time.UnixMilli(1700000000500)
	res, err := c.Query(context.Background(), `x{market=~"a|b"}`, at)
	require.NoError(t, err)

	r := srv.last.Load()
	assert.Equal(t, prefix+"/api/v1/query", r.URL.Path)
	assert.Equal(t, "team-a", r.Header.Get("X-Scope-OrgID"))
	assert.Equal(t, `x{market=~"a|b"}`, r.Form.Get("query"))
	assert.Equal(t, "1700000000.5", r.Form.Get("time"))
	assert.Equal(t, "3s", r.Form.Get("timeout"))
	assert.Equal(t, "true", r.Form.Get("dedup"))
	assert.Equal(t, "false", r.Form.Get("partial_response"))

	assert.Equal(t, model.ValVector, res.Type)
	v := res.Vector()
	require.Len(t, v, 2)
	assert.Equal(t, model.Time(1700000000123), v[0].Timestamp)
	assert.Equal(t, model.SampleValue(1.5), v[0].Value)
	assert.Equal(t, model.LabelValue("a"), v[0].Metric["market"])
	assert.True(t, math.IsNaN(float64(v[1].Value)))
	assert.Equal(t, []string{"partial response"}, res.Warnings)
	assert.Equal(t, []string{"input to histogram_quantile fixed"}, res.Infos)
}

func TestClientBasicAuthFromURL(t *testing.T) {
	srv := newAPIServer(t, jsonAnswer(200, vectorBody))
	u, _ := url.Parse(srv.base())
	u.User = url.UserPassword("ops", "s3cret")
	c, err := promq.NewClient(u.String())
	require.NoError(t, err)
	assert.NotContains(t, c.URL(), "s3cret", "credentials never printed")
	_, err = c.Query(context.Background(), "x", time.Time{})
	require.NoError(t, err)
	user, pw, ok := srv.last.Load().BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, "ops", user)
	assert.Equal(t, "s3cret", pw)
}

func TestClientLongQueryIsPosted(t *testing.T) {
	srv := newAPIServer(t, jsonAnswer(200, vectorBody))
	c, err := promq.NewClient(srv.base())
	require.NoError(t, err)
	long := "x{market=\"" + strings.Repeat("a", 5000) + "\"}"
	_, err = c.Query(context.Background(), long, time.Time{})
	require.NoError(t, err)
	r := srv.last.Load()
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, long, r.PostForm.Get("query"))
}

func TestClientPrometheusSourceOverHTTP(t *testing.T) {
	var got atomic.Value
	srv := newAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Form.Get("query"))
		jsonAnswer(200, vectorBody)(w, r)
	})
	p, err := promq.NewPrometheus(srv.base())
	require.NoError(t, err)
	ctx := context.Background()
	sel := promq.Select("x", "market", "a")
	cases := map[string]func() (promq.Result, error){
		`rate(x{market="a"}[5m])`:     func() (promq.Result, error) { return p.Rate(ctx, sel, 5*time.Minute) },
		`increase(x{market="a"}[1h])`: func() (promq.Result, error) { return p.Increase(ctx, sel, time.Hour) },
		`histogram_quantile(0.95, sum by (le) (rate(x_bucket{market="a"}[5m])))`: func() (promq.Result, error) {
			return p.Quantile(ctx, 0.95, sel, 5*time.Minute)
		},
		`histogram_quantile(0.99, sum by (le) (x_bucket{market="a"}))`: func() (promq.Result, error) { return p.Quantile(ctx, 0.99, sel, 0) },
		`x{market="a"}`: func() (promq.Result, error) { return p.Instant(ctx, sel) },
	}
	for want, f := range cases {
		r, err := f()
		require.NoError(t, err, want)
		assert.Equal(t, want, got.Load(), "PromQL sent")
		assert.Equal(t, want, r.Evidence.Query)
		assert.Equal(t, "prometheus", r.Evidence.Source)
		// The NaN sample is dropped with a warning; warnings and infos surface.
		require.Len(t, r.Vector, 1)
		assert.Equal(t, "1.5", r.Evidence.Value.String())
		assert.Contains(t, r.Warnings, "partial response")
		assert.Contains(t, r.Warnings, "info: input to histogram_quantile fixed")
		assert.Contains(t, strings.Join(r.Warnings, "\n"), "1 NaN result(s) dropped")
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		answer  func(w http.ResponseWriter, r *http.Request)
		kind    error
		status  int
		message string
	}{
		{"html from a proxy", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>")
		}, promq.ErrMalformed, 200, "HTML page"},
		{"html 502", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
		}, promq.ErrUnavailable, 502, "502 Bad Gateway"},
		{"truncated json", jsonAnswer(200, vectorBody[:80]), promq.ErrMalformed, 200, "not valid JSON (truncated?)"},
		{"5xx api error", jsonAnswer(503, `{"status":"error","errorType":"unavailable","error":"too many queries"}`), promq.ErrUnavailable, 503, "too many queries"},
		{"4xx bad_data", jsonAnswer(400, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}`), promq.ErrBadQuery, 400, "parse error"},
		{"422 execution", jsonAnswer(422, `{"status":"error","errorType":"execution","error":"many-to-many matching"}`), promq.ErrExecution, 422, "many-to-many"},
		{"timeout", jsonAnswer(503, `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`), promq.ErrTimeout, 503, "timed out"},
		{"401", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no org id", 401) }, promq.ErrUnauthorized, 401, "no org id"},
		{"429", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", 429)
		}, promq.ErrRateLimited, 429, "slow down"},
		{"unsupported result type", jsonAnswer(200, `{"status":"success","data":{"resultType":"streams","result":[]}}`), promq.ErrUnsupported, 200, `result type "streams"`},
		{"missing status", jsonAnswer(200, `{"data":{}}`), promq.ErrMalformed, 200, "status"},
		{"not an object", jsonAnswer(200, `[1,2]`), promq.ErrMalformed, 200, "want a JSON object"},
		{"bad sample", jsonAnswer(200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}`), promq.ErrMalformed, 200, "not [timestamp"},
		{"bad value", jsonAnswer(200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}`), promq.ErrMalformed, 200, `bad sample value "abc"`},
		{"empty", jsonAnswer(200, ``), promq.ErrMalformed, 200, "empty body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newAPIServer(t, c.answer)
			cl, err := promq.NewClient(srv.base(), promq.WithBackoff(time.Millisecond, 5*time.Millisecond))
			require.NoError(t, err)
			_, err = cl.Query(ctx, "up == 0", time.Time{})
			require.Error(t, err)
			assert.ErrorIs(t, err, c.kind)
			var ae *promq.APIError
			require.True(t, errors.As(err, &ae))
			assert.Equal(t, c.status, ae.Status)
			assert.Equal(t, srv.base()+"/api/v1/query", ae.URL)
			msg := err.Error()
			assert.Contains(t, msg, `query "up == 0" at `+srv.base()+"/api/v1/query: ")
			assert.Contains(t, msg, c.message)
			assert.NotContains(t, msg, "\n")
			wantTries := int64(1)
			if errors.Is(c.kind, promq.ErrUnavailable) || errors.Is(c.kind, promq.ErrRateLimited) {
				wantTries = 1 + promq.DefaultRetries
			}
			assert.Equal(t, wantTries, srv.reqs.Load(), "retries only for unavailable and rate-limited")
		})
	}
}

func TestClientWrongBasePath(t *testing.T) {
	srv := newAPIServer(t, jsonAnswer(200, vectorBody))
	c, err := promq.NewClient(srv.URL) // forgot the prefix
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "up", time.Time{})
	assert.ErrorIs(t, err, promq.ErrNotFound)
	assert.Contains(t, err.Error(), srv.URL+"/api/v1/query: not found (HTTP 404): 404 page not found")
}

func TestClientRetriesThenSucceeds(t *testing.T) {
	var n atomic.Int64
	srv := newAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			http.Error(w, "upstream connect error", 503)
			return
		}
		jsonAnswer(200, vectorBody)(w, r)
	})
	c, err := promq.NewClient(srv.base(), promq.WithBackoff(time.Millisecond, 2*time.Millisecond))
	require.NoError(t, err)
	res, err := c.Query(context.Background(), "x", time.Time{})
	require.NoError(t, err)
	assert.Len(t, res.Vector(), 2)
	assert.Equal(t, int64(3), n.Load())
}

func TestClientUnreachableAndDeadline(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL + prefix
	srv.Close()
	c, err := promq.NewClient(dead, promq.WithBackoff(time.Millisecond, 2*time.Millisecond))
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "up", time.Time{})
	require.Error(t, err)
	assert.ErrorIs(t, err, promq.ErrUnavailable)
	assert.Contains(t, err.Error(), `query "up" at `+dead+"/api/v1/query: metrics server unavailable: ")
	assert.Contains(t, err.Error(), "connection refused")

	slow := newAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c, err = promq.NewClient(slow.base(), promq.WithTimeout(50*time.Millisecond))
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "up", time.Time{})
	assert.ErrorIs(t, err, promq.ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Query(ctx, "up", time.Time{})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestClientResponseCap(t *testing.T) {
	srv := newAPIServer(t, jsonAnswer(200, vectorBody))
	c, err := promq.NewClient(srv.base(), promq.WithMaxResponseBytes(100))
	require.NoError(t, err)
	_, err = c.Query(context.Background(), "x", time.Time{})
	assert.ErrorIs(t, err, promq.ErrTooLarge)
	assert.Contains(t, err.Error(), "larger than 100 bytes")
}

func TestClientBadURL(t *testing.T) {
	for _, u := range []string{"localhost:9090", "ftp://x", "http://"} {
		_, err := promq.NewClient(u)
		assert.Error(t, err, u)
	}
	// The errors quote the URL with its password redacted.
	for u, want := range map[string]string{
		"http://ops:s3cret@h:no-port/": `prometheus URL "http://ops:xxxxx@h:no-port/": invalid port ":no-port" after host`,
		"ftp://ops:s3cret@h/":          `prometheus URL "ftp://ops:xxxxx@h/": want http:// or https://`,
	} {
		_, err := promq.NewClient(u)
		require.Error(t, err, u)
		assert.Equal(t, want, err.Error())
	}
	assert.Equal(t, "http://localhost:9090", promq.URLFromEnv(func(string) string { return "" }))
	assert.Equal(t, "http://p:1", promq.URLFromEnv(func(k string) string {
		if k == "PROMETHEUS_URL" {
			return "http://p:1"
		}
		return ""
	}))
}

func TestDecodeResultTypes(t *testing.T) {
	mat := `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1.5,"1"],[2,"+Inf"],[ 3.001 , "-Inf" ]]},{"metric":{},"values":[]}]}}`
	res, err := promq.DecodeQueryResponse([]byte(mat))
	require.NoError(t, err)
	m := res.Matrix()
	require.Len(t, m, 2)
	assert.Equal(t, []model.SamplePair{{Timestamp: 1500, Value: 1}, {Timestamp: 2000, Value: model.SampleValue(math.Inf(1))},
		{Timestamp: 3001, Value: model.SampleValue(math.Inf(-1))}}, m[0].Values)
	assert.Empty(t, m[1].Values)

	// An entry without "metric" (or with null) has no labels, as Prometheus'
	// own client decodes it; the label set is never nil (issue #14.9b).
	res, err = promq.DecodeQueryResponse([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{}]}}`))
	require.NoError(t, err)
	require.Len(t, res.Matrix(), 1)
	assert.Equal(t, model.Metric{}, res.Matrix()[0].Metric)
	res, err = promq.DecodeQueryResponse([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":null,"value":[1,"1"]},{"value":[2,"2"]}]}}`))
	require.NoError(t, err)
	require.Len(t, res.Vector(), 2)
	for _, s := range res.Vector() {
		assert.Equal(t, model.Metric{}, s.Metric)
	}

	res, err = promq.DecodeQueryResponse([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3.25"]}}`))
	require.NoError(t, err)
	assert.Equal(t, &model.Scalar{Timestamp: 1700000000000, Value: 3.25}, res.Value)

	res, err = promq.DecodeQueryResponse([]byte(`{"status":"success","data":{"resultType":"string","result":[1,"hi \"there\""]}}`))
	require.NoError(t, err)
	assert.Equal(t, `hi "there"`, res.Value.(*model.String).Value)

	// Native histograms are decoded, never mis-read as floats.
	nh := `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"h"},"histogram":[1700000000,{"count":"10","sum":"3.5","buckets":[[0,"0","1","4"],[0,"1","2","6"]]}]}]}}`
	res, err = promq.DecodeQueryResponse([]byte(nh))
	require.NoError(t, err)
	require.Len(t, res.Vector(), 1)
	h := res.Vector()[0].Histogram
	require.NotNil(t, h)
	assert.True(t, res.HasHistograms())
	assert.Equal(t, model.FloatString(10), h.Count)
	assert.Len(t, h.Buckets, 2)
	assert.Equal(t, model.FloatString(6), h.Buckets[1].Count)

	nhm := `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"histograms":[[1,{"count":"1","sum":"1"}]]}]}}`
	res, err = promq.DecodeQueryResponse([]byte(nhm))
	require.NoError(t, err)
	assert.Len(t, res.Matrix()[0].Histograms, 1)

	// The Prometheus source refuses them with a clear error.
	srv := newAPIServer(t, jsonAnswer(200, nh))
	p, err := promq.NewPrometheus(srv.base())
	require.NoError(t, err)
	_, err = p.Instant(context.Background(), promq.Select("h"))
	assert.ErrorIs(t, err, promq.ErrNativeHistogram)
	assert.Contains(t, err.Error(), `query "h" at `+srv.base()+"/api/v1/query")
}
