package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fastRetry keeps retry tests quick: tiny backoff, no jitter randomness.
var fastRetry = []Option{WithRetry(RetryPolicy{Attempts: 3, Base: time.Millisecond, Max: 5 * time.Millisecond}), WithJitter(func() float64 { return 0.5 })}

// server answers each request with the handler's (status, body, headers) and
// counts requests. The URL has a non-empty base path to catch URL bugs.
func server(t *testing.T, h func(n int, req Request) (int, string, http.Header)) (*httptest.Server, *atomic.Int32, string) {
	t.Helper()
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(count.Add(1))
		if r.URL.Path != "/base/rpc" {
			http.Error(w, "wrong path "+r.URL.Path, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req Request
		_ = json.Unmarshal(body, &req)
		status, out, hdr := h(n, req)
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(srv.Close)
	return srv, &count, srv.URL + "/base/rpc"
}

// fakeClock stands in for the client's clock and sleep: a sleep returns at once,
// moves the clock on and is recorded, so a test sees every wait the client
// asked for without waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (f *fakeClock) option() Option { return withClock(f.Now, f.Sleep) }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sleeps
}

func ok(result string) string { return `{"jsonrpc":"2.0","id":1,"result":` + result + `}` }

func rpcErr(code int, msg, data string) string {
	if data == "" {
		return `{"jsonrpc":"2.0","id":1,"error":{"code":` + itoa(code) + `,"message":"` + msg + `"}}`
	}
	return `{"jsonrpc":"2.0","id":1,"error":{"code":` + itoa(code) + `,"message":"` + msg + `","data":` + data + `}}`
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestCallSendsEnvelopeParamsObjectAndToken(t *testing.T) {
	var got Request
	var auth, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, ctype = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		_, _ = io.WriteString(w, ok(`{"current_block_height":42}`))
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL+"/", WithToken("s3cret"))
	require.NoError(t, err)

	var out struct {
		Height int `json:"current_block_height"`
	}
	require.NoError(t, c.Read(context.Background(), "node.status", nil, &out))
	assert.Equal(t, 42, out.Height)
	assert.Equal(t, "2.0", got.JSONRPC)
	assert.Equal(t, "node.status", got.Method)
	assert.JSONEq(t, `{}`, string(got.Params), "nil params must be sent as an empty object")
	assert.Equal(t, "Bearer s3cret", auth)
	assert.Equal(t, "application/json", ctype)

	require.NoError(t, c.Call(context.Background(), "ledger.inspect", map[string]string{"account": "a"}, nil))
	assert.JSONEq(t, `{"account":"a"}`, string(got.Params))
}

func TestParamsMustBeAnObject(t *testing.T) {
	c, err := NewClient("http://127.0.0.1:1/")
	require.NoError(t, err)
	err = c.Call(context.Background(), "m", []int{1}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "params must be a JSON object")
}

func TestNewRejectsBadURL(t *testing.T) {
	_, err := NewClient("")
	require.Error(t, err)
	_, err = NewClient("127.0.0.1:3030")
	require.ErrorContains(t, err, "http://")
}

// hang answers nothing until the client goes away, counting requests.
func hang(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		waitForClientToLeave(r)
	}))
	t.Cleanup(srv.Close)
	return srv, &count
}

// waitForClientToLeave blocks until the client closes the connection (the
// server notices only once the body has been read).
func waitForClientToLeave(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// One deadline covers the whole call: a node that never answers gets one
// request, not one per attempt (before, a read took Attempts × the timeout).
func TestOneDeadlinePerCallRetriesIncluded(t *testing.T) {
	srv, count := hang(t)
	c, err := NewClient(srv.URL, WithTimeout(50*time.Millisecond), WithRetry(RetryPolicy{Attempts: 3}))
	require.NoError(t, err)
	err = c.Read(context.Background(), "node.status", nil, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, ErrUnavailable, "callers that test for an unavailable node still match")
	assert.Contains(t, err.Error(), "no answer within 50ms")
	assert.Contains(t, err.Error(), "node.status at "+srv.URL)
	assert.EqualValues(t, 1, count.Load(), "the deadline was spent: no retry")
}

// A failed attempt leaves the rest of the deadline to the next one, and the
// call still ends at the deadline.
func TestEachAttemptGetsWhatIsLeft(t *testing.T) {
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if count.Add(1) == 1 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		waitForClientToLeave(r)
	}))
	defer srv.Close()
	clock := newFakeClock()
	c, err := NewClient(srv.URL, WithTimeout(100*time.Millisecond), clock.option(), WithJitter(func() float64 { return 0 }))
	require.NoError(t, err)
	err = c.Read(context.Background(), "node.status", nil, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 2, ce.Attempts)
	assert.EqualValues(t, 2, count.Load())
}

func TestCallerContextEndsTheCall(t *testing.T) {
	srv, count := hang(t)
	c, err := NewClient(srv.URL, WithTimeout(time.Hour))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = c.Read(ctx, "node.status", nil, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the caller's earlier deadline wins")
	assert.NotErrorIs(t, err, ErrUnavailable, "the caller's own deadline says nothing about the node")

	// The caller cancels while the request is in flight.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		waitForClientToLeave(r)
	}))
	defer srv2.Close()
	c2, err := NewClient(srv2.URL, WithTimeout(time.Hour))
	require.NoError(t, err)
	err = c2.Read(ctx, "node.status", nil, nil)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	// The first call may not even have reached hang before its 50ms ran out
	// on a busy machine; what matters is that nothing was retried after it.
	assert.LessOrEqual(t, count.Load(), int32(1), "hang saw at most the first call")
}

func TestNewClientRejectsANonPositiveTimeout(t *testing.T) {
	_, err := NewClient("http://127.0.0.1:1/", WithTimeout(0))
	require.ErrorContains(t, err, "WithTimeout(0s): want a positive duration")
}

func TestReadRetriesTransientFailuresButCallDoesNot(t *testing.T) {
	h := func(n int, req Request) (int, string, http.Header) {
		if n < 3 {
			return http.StatusBadGateway, "<html><body>502 Bad Gateway</body></html>", nil
		}
		return 200, ok(`{"ok":true}`), nil
	}
	_, count, url := server(t, h)
	c, err := NewClient(url, fastRetry...)
	require.NoError(t, err)
	var out map[string]bool
	require.NoError(t, c.Read(context.Background(), "gov.treasury.balance", nil, &out))
	assert.True(t, out["ok"])
	assert.EqualValues(t, 3, count.Load(), "two failures then success")

	_, count2, url2 := server(t, h)
	c2, err := NewClient(url2, fastRetry...)
	require.NoError(t, err)
	err = c2.Call(context.Background(), "gov.treasury.rollback_disbursement", map[string]any{"id": 1}, nil)
	require.Error(t, err)
	assert.EqualValues(t, 1, count2.Load(), "a write is never retried")
	assert.ErrorIs(t, err, ErrUnavailable)
}

func TestReadDoesNotRetryAnswersTheNodeMeant(t *testing.T) {
	for _, code := range []int{CodeInvalidParams, CodeNotFound, CodeUnauthorized, CodeMethodNotFound} {
		_, count, url := server(t, func(int, Request) (int, string, http.Header) { return 200, rpcErr(code, "no", ""), nil })
		c, err := NewClient(url, fastRetry...)
		require.NoError(t, err)
		require.Error(t, c.Read(context.Background(), "m", nil, nil))
		assert.EqualValues(t, 1, count.Load(), "code %d is final", code)
	}
}

func TestRetriesGiveUpAfterAttempts(t *testing.T) {
	_, count, url := server(t, func(int, Request) (int, string, http.Header) { return 503, "down", nil })
	c, err := NewClient(url, fastRetry...)
	require.NoError(t, err)
	err = c.Read(context.Background(), "m", nil, nil)
	require.Error(t, err)
	assert.EqualValues(t, 3, count.Load())
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 3, ce.Attempts)
	assert.Equal(t, 503, ce.HTTPStatus)
	assert.Contains(t, err.Error(), "(HTTP 503, 3 attempts)")
}

func TestHTTP429HonoursRetryAfter(t *testing.T) {
	_, count, url := server(t, func(n int, req Request) (int, string, http.Header) {
		if n == 1 {
			return 429, rpcErr(CodeRateLimited, "rate limited", ""), http.Header{"Retry-After": {"1"}}
		}
		return 200, ok(`1`), nil
	})
	clock := newFakeClock()
	c, err := NewClient(url, append(fastRetry, clock.option())...)
	require.NoError(t, err)
	var v int
	require.NoError(t, c.Read(context.Background(), "node.status", nil, &v))
	assert.Equal(t, 1, v)
	assert.EqualValues(t, 2, count.Load())
	assert.Equal(t, []time.Duration{time.Second}, clock.Sleeps(), "one wait, for Retry-After, not the 1ms backoff")
}

// A wait that does not fit (past the call's deadline, or over MaxWait) is not
// slept: Read returns the rate-limit error at once with the server's delay.
func TestRetryWaitsAreBounded(t *testing.T) {
	cases := []struct {
		name       string
		retryAfter string
		opts       []Option
		requests   int
		sleeps     []time.Duration
		want       time.Duration
	}{
		{"Retry-After 3600 with --timeout 2s", "3600", []Option{WithTimeout(2 * time.Second)}, 1, nil, time.Hour},
		{"Retry-After 3600 over MaxWait", "3600", []Option{WithTimeout(2 * time.Hour)}, 1, nil, time.Hour},
		{"Retry-After 7 over the default timeout", "7", nil, 1, nil, 7 * time.Second},
		{"Retry-After 7 fits once in 10s", "7", []Option{WithTimeout(10 * time.Second)}, 2, []time.Duration{7 * time.Second}, 7 * time.Second},
		{"MaxWait lowered", "7", []Option{WithTimeout(time.Minute), WithRetry(RetryPolicy{Attempts: 3, MaxWait: 5 * time.Second})}, 1, nil, 7 * time.Second},
		{"HTTP date an hour ahead", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), []Option{WithTimeout(2 * time.Second)}, 1, nil, time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, count, url := server(t, func(int, Request) (int, string, http.Header) {
				return 429, "Too Many Requests", http.Header{"Retry-After": {tc.retryAfter}}
			})
			clock := newFakeClock()
			c, err := NewClient(url, append(tc.opts, clock.option())...)
			require.NoError(t, err)
			err = c.Read(context.Background(), "energy.market", nil, nil)
			require.ErrorIs(t, err, ErrRateLimited)
			assert.EqualValues(t, tc.requests, count.Load())
			assert.Equal(t, tc.sleeps, clock.Sleeps(), "the waits the client asked for")
			d, ok := RetryAfter(err)
			require.True(t, ok)
			assert.InDelta(t, tc.want, d, float64(2*time.Second), "the delay the server asked for")
		})
	}
}

// Delays that do not fit in a Duration saturate; negative ones are none.
func TestHugeOrNegativeDelaysDoNotWrap(t *testing.T) {
	cases := []struct {
		name   string
		header string
		body   string
		want   time.Duration
		asked  bool
	}{
		{"Retry-After past int64", "99999999999999999999", "Too Many Requests", time.Duration(math.MaxInt64), true},
		{"Retry-After seconds past Duration", "9223372037", "Too Many Requests", time.Duration(math.MaxInt64), true},
		{"Retry-After negative", "-5", "Too Many Requests", 0, false},
		{"retry_after_ms past int64", "", rpcErr(CodeEnergyRateLimited, "rate limited", `{"retry_after_ms":1e30}`), time.Duration(math.MaxInt64), true},
		{"retry_after_ms negative", "", rpcErr(CodeEnergyRateLimited, "rate limited", `{"retry_after_ms":-1000}`), 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, count, url := server(t, func(int, Request) (int, string, http.Header) {
				return 429, tc.body, http.Header{"Retry-After": {tc.header}}
			})
			clock := newFakeClock()
			c, err := NewClient(url, append(fastRetry, clock.option())...)
			require.NoError(t, err)
			err = c.Read(context.Background(), "energy.market", nil, nil)
			require.ErrorIs(t, err, ErrRateLimited)
			d, asked := RetryAfter(err)
			assert.Equal(t, tc.asked, asked)
			assert.Equal(t, tc.want, d)
			for _, s := range clock.Sleeps() {
				assert.GreaterOrEqual(t, s, time.Duration(0))
				assert.LessOrEqual(t, s, DefaultMaxRetryWait)
			}
			if tc.asked {
				assert.EqualValues(t, 1, count.Load(), "no retry for a delay that long")
			}
		})
	}
}

func TestRateLimitDelayFromErrorData(t *testing.T) {
	_, count, url := server(t, func(n int, req Request) (int, string, http.Header) {
		return 429, rpcErr(CodeEnergyRateLimited, "rate limited", `{"retry_after_ms":1500}`), nil
	})
	c, err := NewClient(url, fastRetry...)
	require.NoError(t, err)
	err = c.Call(context.Background(), "energy.market", nil, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrRateLimited)
	d, ok := RetryAfter(err)
	require.True(t, ok)
	assert.Equal(t, 1500*time.Millisecond, d)
	var je *Error
	require.ErrorAs(t, err, &je)
	assert.Equal(t, CodeEnergyRateLimited, je.Code)
	assert.EqualValues(t, 1, count.Load())

	// A Read whose deadline cannot fit the delay gives up at once with the delay.
	count.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = c.Read(ctx, "energy.market", nil, nil)
	require.ErrorIs(t, err, ErrRateLimited)
	assert.EqualValues(t, 1, count.Load())
	assert.Contains(t, err.Error(), "retry after 1.5s")
}

func TestHTTP429WithoutJSONBody(t *testing.T) {
	_, _, url := server(t, func(int, Request) (int, string, http.Header) {
		return 429, "Too Many Requests", http.Header{"Retry-After": {"7"}}
	})
	c, err := NewClient(url, WithRetry(RetryPolicy{Attempts: 1}))
	require.NoError(t, err)
	err = c.Read(context.Background(), "m", nil, nil)
	require.ErrorIs(t, err, ErrRateLimited)
	d, ok := RetryAfter(err)
	require.True(t, ok)
	assert.Equal(t, 7*time.Second, d)
}

func TestResponseSizeCap(t *testing.T) {
	big := ok(`"` + strings.Repeat("x", 2048) + `"`)
	_, _, url := server(t, func(int, Request) (int, string, http.Header) { return 200, big, nil })
	c, err := NewClient(url, WithMaxResponseBytes(1024), WithRetry(RetryPolicy{Attempts: 1}))
	require.NoError(t, err)
	err = c.Read(context.Background(), "m", nil, nil)
	require.ErrorIs(t, err, ErrResponseTooLarge)
	assert.Contains(t, err.Error(), "over 1024 bytes")

	c2, err := NewClient(url, WithMaxResponseBytes(int64(len(big))))
	require.NoError(t, err)
	require.NoError(t, c2.Read(context.Background(), "m", nil, nil), "exactly at the cap is fine")
}

func TestMalformedBodies(t *testing.T) {
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"html from a proxy", "<!DOCTYPE html><html><body>Bad gateway</body></html>", 200, "got HTML"},
		{"truncated json", `{"jsonrpc":"2.0","id":1,"result":{"a":`, 200, "truncated or invalid JSON"},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"result":1}`, 200, `jsonrpc version "1.0"`},
		{"missing version", `{"id":1,"result":1}`, 200, `jsonrpc version ""`},
		{"empty body", ``, 200, "empty body"},
		{"not an object", `[1,2]`, 200, "not a JSON object"},
		{"neither result nor error", `{"jsonrpc":"2.0","id":1}`, 200, "neither result nor error"},
		{"html 404", "<html>Not Found</html>", 404, "HTTP 404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, url := server(t, func(int, Request) (int, string, http.Header) { return tc.status, tc.body, nil })
			c, err := NewClient(url, WithRetry(RetryPolicy{Attempts: 1}))
			require.NoError(t, err)
			err = c.Read(context.Background(), "node.status", nil, nil)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrMalformed)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "node.status at "+url, "errors name the method and URL")
		})
	}
}

func TestResultOfTheWrongShape(t *testing.T) {
	_, _, url := server(t, func(int, Request) (int, string, http.Header) { return 200, ok(`"a string"`), nil })
	c, err := NewClient(url)
	require.NoError(t, err)
	var out struct{ A int }
	err = c.Read(context.Background(), "m", nil, &out)
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), "decoding the result")
}

func TestSentinelErrors(t *testing.T) {
	cases := []struct {
		code int
		want error
	}{
		{CodeUnauthorized, ErrUnauthorized},
		{CodeRateLimited, ErrRateLimited},
		{CodeEnergyRateLimited, ErrRateLimited},
		{CodeNotFound, ErrNotFound},
		{CodeMethodNotFound, ErrMethodNotFound},
		{CodeInvalidParams, ErrInvalidParams},
	}
	for _, tc := range cases {
		_, _, url := server(t, func(int, Request) (int, string, http.Header) {
			return 200, rpcErr(tc.code, "x", `{"reason":"verification_failed"}`), nil
		})
		c, err := NewClient(url, WithRetry(RetryPolicy{Attempts: 1}))
		require.NoError(t, err)
		err = c.Read(context.Background(), "m", nil, nil)
		assert.ErrorIs(t, err, tc.want, "code %d", tc.code)
		var je *Error
		require.ErrorAs(t, err, &je)
		assert.Equal(t, tc.code, je.Code)
		assert.Equal(t, "verification_failed", je.Reason())
		for _, other := range []error{ErrUnauthorized, ErrNotFound, ErrMethodNotFound, ErrInvalidParams} {
			if other != tc.want {
				assert.NotErrorIs(t, err, other, "code %d", tc.code)
			}
		}
	}
}

// Library errors say what failed, not which CLI flag to change.
func TestErrorsSayWhatFailedWithoutCLIHints(t *testing.T) {
	for _, code := range []int{CodeUnauthorized, CodeMethodNotFound} {
		_, _, url := server(t, func(int, Request) (int, string, http.Header) {
			return 200, rpcErr(code, "no", ""), nil
		})
		c, err := NewClient(url)
		require.NoError(t, err)
		err = c.Read(context.Background(), "energy.market", nil, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "energy.market at "+url+": JSON-RPC error")
		assert.NotContains(t, err.Error(), "--")
		assert.NotContains(t, err.Error(), "TB_")
	}

	_, _, url := server(t, func(int, Request) (int, string, http.Header) { return 503, "down", nil })
	c, err := NewClient(url, fastRetry...)
	require.NoError(t, err)
	err = c.Read(context.Background(), "node.status", nil, nil)
	assert.Equal(t, "node.status at "+url+`: node unavailable: malformed JSON-RPC response: not a JSON object: "down" (HTTP 503, 3 attempts)`, err.Error())
}

func TestUnreachableNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c, err := NewClient("http://"+addr+"/", fastRetry...)
	require.NoError(t, err)
	err = c.Read(context.Background(), "node.status", nil, nil)
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "connection refused")
	assert.NotContains(t, err.Error(), `Post "`, "the URL is named once, by the CallError")
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 3, ce.Attempts, "connection failures of reads are retried")
}

func TestCancelledContextStopsRetrying(t *testing.T) {
	_, count, url := server(t, func(int, Request) (int, string, http.Header) { return 503, "down", nil })
	c, err := NewClient(url, WithRetry(RetryPolicy{Attempts: 10, Base: time.Second, Max: time.Second}), WithJitter(func() float64 { return 0.99 }))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = c.Read(ctx, "m", nil, nil)
	require.Error(t, err)
	assert.EqualValues(t, 1, count.Load(), "the backoff does not fit the deadline, so no second attempt")
}

func TestClientSidePacing(t *testing.T) {
	_, count, url := server(t, func(int, Request) (int, string, http.Header) { return 200, ok(`1`), nil })
	c, err := NewClient(url, WithRateLimit(1, 1)) // one call a second, burst 1
	require.NoError(t, err)
	require.NoError(t, c.Read(context.Background(), "m", nil, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = c.Read(ctx, "m", nil, nil)
	require.Error(t, err, "the second call must wait ~1s for the limiter, longer than the deadline")
	assert.Contains(t, err.Error(), "client-side rate limit")
	assert.EqualValues(t, 1, count.Load())
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, 3*time.Second, parseRetryAfter("3", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("-1", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("soon", now))
	assert.Equal(t, 10*time.Second, parseRetryAfter(now.Add(10*time.Second).Format(http.TimeFormat), now))
	assert.Equal(t, time.Duration(0), parseRetryAfter(now.Add(-time.Hour).Format(http.TimeFormat), now))
	assert.Equal(t, 3*time.Second, parseRetryAfter(" 3 ", now))
	assert.Equal(t, time.Duration(math.MaxInt64), parseRetryAfter("9223372036854775808", now), "past int64")
	assert.Equal(t, time.Duration(math.MaxInt64), parseRetryAfter("9223372037", now), "past Duration")
	assert.Equal(t, 9223372036*time.Second, parseRetryAfter("9223372036", now), "the largest that fits")
	assert.Equal(t, time.Duration(0), parseRetryAfter("-99999999999999999999", now))
}

func TestErrorRetryAfter(t *testing.T) {
	for data, want := range map[string]time.Duration{
		`{"retry_after_ms":1500}`:  1500 * time.Millisecond,
		`{"retry_after_ms":2.5}`:   2500 * time.Microsecond,
		`{"retry_after_ms":1e30}`:  time.Duration(math.MaxInt64),
		`{"retry_after_ms":1e400}`: time.Duration(math.MaxInt64),
		`{"retry_after_ms":-1}`:    0,
		`{"retry_after_ms":"x"}`:   0,
		`{"retry_after_ms":null}`:  0,
		`{}`:                       0,
		`[1]`:                      0,
	} {
		assert.Equal(t, want, (&Error{Code: CodeEnergyRateLimited, Data: json.RawMessage(data)}).RetryAfter(), data)
	}
}

func TestBackoffIsCappedAndJittered(t *testing.T) {
	c, err := NewClient("http://x/", WithRetry(RetryPolicy{Attempts: 5, Base: 100 * time.Millisecond, Max: 300 * time.Millisecond}),
		WithJitter(func() float64 { return 0.5 }))
	require.NoError(t, err)
	assert.Equal(t, 50*time.Millisecond, c.backoff(1, 0))
	assert.Equal(t, 100*time.Millisecond, c.backoff(2, 0))
	assert.Equal(t, 150*time.Millisecond, c.backoff(3, 0), "capped at Max before jitter")
	assert.Equal(t, 2*time.Second, c.backoff(1, 2*time.Second), "the server's delay wins")
}

func TestErrorIsMatchesThroughWrapping(t *testing.T) {
	err := &CallError{Method: "m", URL: "u", Err: &Error{Code: CodeNotFound, Message: "unknown id"}}
	wrapped := errors.Join(errors.New("context"), err)
	assert.ErrorIs(t, wrapped, ErrNotFound)
}

// redirector answers every request with a 307 to location(r), counting them.
func redirector(t *testing.T, location func(r *http.Request) string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		http.Redirect(w, r, location(r), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	return srv, &count
}

func TestCallNeverFollowsARedirect(t *testing.T) {
	_, other, otherURL := server(t, func(int, Request) (int, string, http.Header) { return 200, ok(`{"ok":true}`), nil })
	stolen := strings.Replace(otherURL, "http://", "http://ops:hunter2@", 1)
	srv, count := redirector(t, func(*http.Request) string { return stolen })
	c, err := NewClient(srv.URL+"/rpc", fastRetry...)
	require.NoError(t, err)

	err = c.Call(context.Background(), "gov.treasury.rollback_disbursement", map[string]any{"id": 4521, "reason": "x"}, nil)
	require.ErrorIs(t, err, ErrRedirect)
	assert.EqualValues(t, 1, count.Load())
	assert.EqualValues(t, 0, other.Load(), "the rollback never reached the other host")
	msg := err.Error()
	assert.Contains(t, msg, "gov.treasury.rollback_disbursement at "+srv.URL+"/rpc")
	assert.Contains(t, msg, "HTTP 307")
	assert.Contains(t, msg, "Location "+strings.Replace(otherURL, "http://", "http://ops:xxxxx@", 1))
	assert.Contains(t, msg, "the write was not sent on")
	assert.NotContains(t, msg, "hunter2")
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, http.StatusTemporaryRedirect, ce.HTTPStatus)
	assert.Equal(t, 1, ce.Attempts)
}

func TestCallRedirectLoopSendsOneRequest(t *testing.T) {
	srv, count := redirector(t, func(r *http.Request) string { return r.URL.Path })
	c, err := NewClient(srv.URL + "/rpc")
	require.NoError(t, err)
	err = c.Call(context.Background(), "gov.treasury.rollback_disbursement", nil, nil)
	require.ErrorIs(t, err, ErrRedirect)
	assert.EqualValues(t, 1, count.Load(), "exactly one request")
}

func TestReadFollowsASameHostRedirect(t *testing.T) {
	var moved, paths atomic.Int32
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Add(1)
		if r.URL.Path == "/old" {
			moved.Add(1)
			http.Redirect(w, r, "/new", http.StatusPermanentRedirect)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req Request
		_ = json.Unmarshal(body, &req)
		auth.Store(r.Method + " " + req.Method + " " + r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, ok(`7`))
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL+"/old", WithToken("tok"))
	require.NoError(t, err)
	var v int
	require.NoError(t, c.Read(context.Background(), "node.status", nil, &v))
	assert.Equal(t, 7, v)
	assert.EqualValues(t, 1, moved.Load())
	assert.EqualValues(t, 2, paths.Load())
	assert.Equal(t, "POST node.status Bearer tok", auth.Load(), "the request and its token arrived whole at the new path")
}

func TestReadRefusesRedirects(t *testing.T) {
	_, other, otherURL := server(t, func(int, Request) (int, string, http.Header) { return 200, ok(`1`), nil })
	cases := []struct {
		name     string
		status   int
		location func(srvURL string, r *http.Request) string
		requests int
		want     string
	}{
		{"to another host", http.StatusTemporaryRedirect, func(string, *http.Request) string { return otherURL }, 1,
			"Location " + otherURL + " is not on http://127.0.0.1:"},
		{"to another scheme", http.StatusTemporaryRedirect, func(u string, r *http.Request) string { return strings.Replace(u, "http://", "https://", 1) + "/rpc" }, 1,
			"is not on http://"},
		{"a loop", http.StatusTemporaryRedirect, func(_ string, r *http.Request) string { return r.URL.Path }, MaxRedirects + 1,
			"more than 3 redirects"},
		{"302 would drop the POST", http.StatusFound, func(string, *http.Request) string { return "/elsewhere" }, 1,
			"would resend the POST as a GET"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var count atomic.Int32
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				count.Add(1)
				http.Redirect(w, r, tc.location(srv.URL, r), tc.status)
			}))
			defer srv.Close()
			c, err := NewClient(srv.URL+"/rpc", fastRetry...)
			require.NoError(t, err)
			err = c.Read(context.Background(), "node.status", nil, nil)
			require.ErrorIs(t, err, ErrRedirect)
			assert.NotErrorIs(t, err, ErrUnavailable)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), fmt.Sprintf("HTTP %d", tc.status))
			assert.EqualValues(t, tc.requests, count.Load(), "a refused redirect is not retried")
			assert.EqualValues(t, 0, other.Load())
		})
	}
}

func TestWithHTTPClientIsNotChanged(t *testing.T) {
	srv, _ := redirector(t, func(*http.Request) string { return "http://example.invalid/" })
	hc := &http.Client{}
	c, err := NewClient(srv.URL, WithHTTPClient(hc))
	require.NoError(t, err)
	require.ErrorIs(t, c.Call(context.Background(), "m", nil, nil), ErrRedirect)
	require.ErrorIs(t, c.Read(context.Background(), "m", nil, nil), ErrRedirect)
	assert.Nil(t, hc.CheckRedirect, "the caller's client keeps its own redirect policy")
}

func TestURLPasswordIsHiddenButUsed(t *testing.T) {
	var user, pass atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		user.Store(u)
		pass.Store(p)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	endpoint := strings.Replace(srv.URL, "http://", "http://ops:hunter2@", 1) + "/rpc"
	shown := strings.Replace(srv.URL, "http://", "http://ops:xxxxx@", 1) + "/rpc"
	c, err := NewClient(endpoint, fastRetry...)
	require.NoError(t, err)
	assert.Equal(t, shown, c.URL())

	err = c.Read(context.Background(), "node.status", nil, nil)
	require.Error(t, err)
	assert.Equal(t, "hunter2", pass.Load(), "the request used the real URL")
	assert.Equal(t, "ops", user.Load())
	assert.NotContains(t, err.Error(), "hunter2")
	var ce *CallError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, shown, ce.URL)

	// A transport error quotes no password either.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c, err = NewClient("http://ops:hunter2@"+addr+"/", WithRetry(RetryPolicy{Attempts: 1}))
	require.NoError(t, err)
	err = c.Read(context.Background(), "node.status", nil, nil)
	require.ErrorIs(t, err, ErrUnavailable)
	assert.NotContains(t, err.Error(), "hunter2")

	_, err = NewClient("ftp://ops:hunter2@host/")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestWithRetriesCountsAttempts(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, WithRetries(2), WithRetry(RetryPolicy{Attempts: 5}), WithRetries(2), withClock(time.Now, func(context.Context, time.Duration) error { return nil }))
	require.NoError(t, err)
	require.Error(t, c.Read(context.Background(), "node.status", nil, nil))
	assert.Equal(t, int32(2), n.Load(), "WithRetries(2) is two requests in all")
	_, err = NewClient(srv.URL, WithRetries(0))
	assert.ErrorContains(t, err, "WithRetries(0): want at least 1 attempt")
	at := time.Date(2020, 1, 1, 3, 0, 0, 0, time.UTC)
	c, err = NewClient(srv.URL, WithClock(func() time.Time { return at }), WithRetries(1))
	require.NoError(t, err)
	assert.Equal(t, at, c.Now())
	err = c.Read(context.Background(), "node.status", nil, nil)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "a fake clock in the past does not time the call out: %v", err)
	assert.ErrorIs(t, err, ErrUnavailable, "the 503 itself")
}

// Behind a proxy (the energy guard), a node that is down is a 502/503/504 with
// a JSON-RPC body: reads retry it as unavailable, writes are sent once, and
// the node's error stays reachable with errors.As.
func TestGatewayErrorsWithJSONRPCBodiesAreUnavailable(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"upstream unreachable"}}`)
	}))
	defer srv.Close()
	noSleep := withClock(time.Now, func(context.Context, time.Duration) error { return nil })
	c, err := NewClient(srv.URL, WithRetries(3), noSleep)
	require.NoError(t, err)
	err = c.Read(context.Background(), "energy.market", nil, nil)
	assert.ErrorIs(t, err, ErrUnavailable)
	var re *Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, CodeInternal, re.Code)
	assert.Equal(t, int32(3), n.Load(), "a read retries a node that is down behind its proxy")
	n.Store(0)
	require.Error(t, c.Call(context.Background(), "energy.submit_reading", nil, nil))
	assert.Equal(t, int32(1), n.Load(), "a write is sent once")
}
