package jsonrpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/theblock/tbops/internal/jsonrpc"
)

func Example() {
	mux := jsonrpc.NewMux()
	mux.Handle("gov.treasury.disbursement", func(ctx context.Context, params json.RawMessage) (any, error) {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeNotFound, Message: "unknown disbursement"}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c, _ := jsonrpc.New(srv.URL)
	err := c.Read(context.Background(), "gov.treasury.disbursement", map[string]int{"id": 4521}, nil)
	var rpcErr *jsonrpc.Error
	fmt.Println(errors.Is(err, jsonrpc.ErrNotFound), errors.As(err, &rpcErr), rpcErr.Code)
	// Output: true true -32004
}
