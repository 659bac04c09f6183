package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

func TestDeadlineOnEveryAttempt(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := NewClient(srv.URL, WithTimeout(50*time.Millisecond), WithRetry(RetryPolicy{Attempts: 1}))
	require.NoError(t, err)
	err = c.Read(context.Background(), "node.status", nil, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "no answer within 50ms")
	assert.Contains(t, err.Error(), "node.status at "+srv.URL)
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
	assert.Contains(t, err.Error(), "after 3 attempts")
}

func TestHTTP429HonoursRetryAfter(t *testing.T) {
	var first time.Time
	var gap time.Duration
	_, count, url := server(t, func(n int, req Request) (int, string, http.Header) {
		if n == 1 {
			first = time.Now()
			return 429, rpcErr(CodeRateLimited, "rate limited", ""), http.Header{"Retry-After": {"1"}}
		}
		gap = time.Since(first)
		return 200, ok(`1`), nil
	})
	c, err := NewClient(url, fastRetry...)
	require.NoError(t, err)
	var v int
	require.NoError(t, c.Read(context.Background(), "node.status", nil, &v))
	assert.Equal(t, 1, v)
	assert.EqualValues(t, 2, count.Load())
	assert.GreaterOrEqual(t, gap, 900*time.Millisecond, "the retry waited for Retry-After, not the 1ms backoff")
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

func TestErrorsSayWhatToDoNext(t *testing.T) {
	_, _, url := server(t, func(int, Request) (int, string, http.Header) {
		return 200, rpcErr(CodeUnauthorized, "unauthorized", ""), nil
	})
	c, _ := NewClient(url)
	err := c.Read(context.Background(), "energy.market", nil, nil)
	assert.Contains(t, err.Error(), "check the bearer token")

	_, _, url = server(t, func(int, Request) (int, string, http.Header) {
		return 200, rpcErr(CodeMethodNotFound, "method not found", ""), nil
	})
	c, _ = NewClient(url)
	err = c.Read(context.Background(), "governor.intents", nil, nil)
	assert.Contains(t, err.Error(), "does not serve this method")
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
	assert.Contains(t, err.Error(), "is the node running")
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
