package nodetest

import (
	"fmt"
	"sort"

	"github.com/theblock/tbops/rpc"
)

// listLimit applies the contract's list rule (PROTOCOL.md section 1) for every
// area: limit defaults to 50; outside 1..500 it is refused with -32602 naming
// the param.
func listLimit(limit int) (int, *rpc.Error) {
	switch {
	case limit == 0:
		return 50, nil
	case limit < 0 || limit > 500:
		return 0, &rpc.Error{Code: rpc.CodeInvalidParams, Message: fmt.Sprintf(`param "limit": %d is out of 1..500`, limit)}
	}
	return limit, nil
}

// pageAfter sorts items by id and returns at most limit of them with an id above
// cursor, and the next cursor (nil at the end): the contract's opaque integer
// cursor.
func pageAfter[T any](items []T, id func(T) int64, cursor *int64, limit int) ([]T, any) {
	sort.SliceStable(items, func(i, j int) bool { return id(items[i]) < id(items[j]) })
	i := 0
	if cursor != nil {
		i = sort.Search(len(items), func(k int) bool { return id(items[k]) > *cursor })
	}
	end := min(i+limit, len(items))
	var next any
	if end < len(items) {
		next = id(items[end-1])
	}
	return items[i:end], next
}
