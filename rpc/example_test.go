package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"

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
