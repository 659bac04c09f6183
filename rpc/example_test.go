package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/theblock/tbops/rpc"
)

func Example() {
	mux := rpc.NewMux()
	mux.Handle("gov.treasury.disbursement", func(ctx context.Context, params json.RawMessage) (any, error) {
		return nil, &rpc.Error{Code: rpc.CodeNotFound, Message: "unknown disbursement"}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c, _ := rpc.NewClient(srv.URL)
	err := c.Read(context.Background(), "gov.treasury.disbursement", map[string]int{"id": 4521}, nil)
	var rpcErr *rpc.Error
	fmt.Println(errors.Is(err, rpc.ErrNotFound), errors.As(err, &rpcErr), rpcErr.Code)
	// Output: true true -32004
}

// A read that the node rate-limits for longer than the call may wait returns at
// once, with the delay the node asked for, instead of sleeping through it.
func ExampleClient_Read_rateLimited() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		rpc.WriteError(w, nil, &rpc.Error{Code: rpc.CodeRateLimited, Message: "rate limited"}, http.StatusTooManyRequests)
	}))
	defer srv.Close()

	c, _ := rpc.NewClient(srv.URL, rpc.WithTimeout(2*time.Second))
	err := c.Read(context.Background(), "energy.market", nil, nil)
	delay, _ := rpc.RetryAfter(err)
	var ce *rpc.CallError
	errors.As(err, &ce)
	fmt.Println(errors.Is(err, rpc.ErrRateLimited), delay, ce.Attempts)
	// Output: true 1h0m0s 1
}
