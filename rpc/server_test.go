package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func post(t *testing.T, h http.Handler, body string) (int, map[string]any) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func errCode(t *testing.T, out map[string]any) int {
	t.Helper()
	e, ok := out["error"].(map[string]any)
	require.True(t, ok, "want an error answer, got %v", out)
	return int(e["code"].(float64))
}

func TestMuxDispatchAndErrors(t *testing.T) {
	m := NewMux()
	m.Handle("echo", func(ctx context.Context, params json.RawMessage) (any, error) {
		var p struct {
			N int `json:"n"`
		}
		if err := BindParams(params, &p); err != nil {
			return nil, err
		}
		return map[string]int{"n": p.N}, nil
	})
	m.Handle("boom", func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("disk on fire") })
	m.Handle("notfound", func(context.Context, json.RawMessage) (any, error) {
		return nil, fmt.Errorf("lookup: %w", &Error{Code: CodeNotFound, Message: "unknown id 7"})
	})
	assert.True(t, m.Has("echo"))
	assert.False(t, m.Has("nope"))

	status, out := post(t, m, `{"jsonrpc":"2.0","id":9,"method":"echo","params":{"n":3}}`)
	assert.Equal(t, 200, status)
	assert.Equal(t, float64(9), out["id"])
	assert.Equal(t, map[string]any{"n": float64(3)}, out["result"])

	_, out = post(t, m, `{"jsonrpc":"2.0","id":1,"method":"echo"}`)
	assert.Equal(t, map[string]any{"n": float64(0)}, out["result"], "absent params are an empty object")

	cases := map[string]int{
		`{"jsonrpc":"2.0","id":1,"method":"nope","params":{}}`:        CodeMethodNotFound,
		`{"jsonrpc":"2.0","id":1,"method":"boom","params":{}}`:        CodeInternal,
		`{"jsonrpc":"2.0","id":1,"method":"notfound","params":{}}`:    CodeNotFound,
		`{"jsonrpc":"2.0","id":1,"method":"echo","params":{"n":"x"}}`: CodeInvalidParams,
		`{"jsonrpc":"2.0","id":1,"method":"echo","params":{"m":1}}`:   CodeInvalidParams,
		`{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]}`:       CodeInvalidParams,
		`{"jsonrpc":"1.0","id":1,"method":"echo"}`:                    CodeInvalidRequest,
		`{"jsonrpc":"2.0","id":1}`:                                    CodeInvalidRequest,
		`[{"jsonrpc":"2.0","id":1,"method":"echo"}]`:                  CodeInvalidRequest,
		`{"jsonrpc":"2.0",`: CodeParseError,
		``:                  CodeInvalidRequest,
	}
	for body, want := range cases {
		_, out := post(t, m, body)
		assert.Equal(t, want, errCode(t, out), "body %q", body)
	}

	_, out = post(t, m, `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"n":"x"}}`)
	assert.Contains(t, out["error"].(map[string]any)["message"], `param "n"`, "the error names the field")
	_, out = post(t, m, `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"m":1}}`)
	assert.Contains(t, out["error"].(map[string]any)["message"], `unknown param "m"`)
}

func TestMuxBodyLimit(t *testing.T) {
	m := NewMux()
	m.MaxBody = 64
	m.Handle("x", func(context.Context, json.RawMessage) (any, error) { return 1, nil })
	_, out := post(t, m, `{"jsonrpc":"2.0","id":1,"method":"x","params":{"pad":"`+strings.Repeat("a", 100)+`"}}`)
	assert.Equal(t, CodeInvalidRequest, errCode(t, out))
	assert.Contains(t, out["error"].(map[string]any)["message"], "over 64 bytes")
}

func TestServerRejectsGET(t *testing.T) {
	srv := httptest.NewServer(NewMux())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	assert.Equal(t, CodeInvalidRequest, errCode(t, out))
}

func TestWriteErrorWithInvalidData(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, json.RawMessage("3"), &Error{Code: CodeInternal, Message: "x", Data: json.RawMessage("{bad")}, 200)
	var out map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), "the envelope stays valid JSON")
	assert.Equal(t, float64(3), out["id"])
}

// The client and the server helpers agree with each other end to end.
func TestClientAgainstMux(t *testing.T) {
	m := NewMux()
	m.Handle("rate", func(context.Context, json.RawMessage) (any, error) {
		return nil, &Error{Code: CodeEnergyRateLimited, Message: "rate limited", Data: json.RawMessage(`{"retry_after_ms":250}`)}
	})
	srv := httptest.NewServer(m)
	defer srv.Close()
	c, err := NewClient(srv.URL, WithRetry(RetryPolicy{Attempts: 1}))
	require.NoError(t, err)
	err = c.Read(context.Background(), "rate", nil, nil)
	require.ErrorIs(t, err, ErrRateLimited)
	d, ok := RetryAfter(err)
	assert.True(t, ok)
	assert.EqualValues(t, 250_000_000, d)
}
