package node

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeResult feeds arbitrary results to every result type: decoding never
// panics, fails only with ErrBadResult, and what it keeps encodes back to JSON
// that decodes to the same value (missing stays missing).
func FuzzDecodeResult(f *testing.F) {
	for _, seed := range []string{
		`{"current_block_height":1200000,"epoch":10000,"syncing":false,"peers":24,"version":"v1"}`,
		`{"status":"healthy","last_finalized_height":1,"round":7,"validators_online":21,"validators_total":21}`,
		`{"size":42,"age_p50":2,"fee_floor":1}`, `{"difficulty":18446744073709551615}`,
		`{"account":"a","balance":-1,"nonce":1,"updated_at":1}`,
		`null`, `{}`, `[]`, `"x"`, `{"peers":"24"}`, `{"difficulty":-1}`, `{"syncing":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // the transport only hands over valid JSON
		}
		for _, out := range []any{&Status{}, &ConsensusStatus{}, &Account{}, &MempoolStats{}, &Difficulty{}} {
			if err := decodeResult("m", raw, out); err != nil {
				if !errors.Is(err, ErrBadResult) {
					t.Fatalf("%T: %v is not ErrBadResult", out, err)
				}
				continue
			}
			again, err := json.Marshal(out)
			if err != nil {
				t.Fatalf("%T: %v", out, err)
			}
			if err := decodeResult("m", again, out); err != nil {
				t.Fatalf("%T: its own encoding %s: %v", out, again, err)
			}
			if back, _ := json.Marshal(out); string(back) != string(again) {
				t.Fatalf("%T: %s then %s", out, again, back)
			}
		}
	})
}
