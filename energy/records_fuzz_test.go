package energy_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/theblock/tbops/energy"
)

// FuzzRecords decodes node answers as providers, credits and disputes (the
// contract's shapes and the reference node's): nothing panics, and a decoded
// record survives encoding and decoding again unchanged.
func FuzzRecords(f *testing.F) {
	f.Add([]byte(`{"provider_id":"p","status":"active","reputation":{"composite_score":0.9},"capacity_kwh":5000,"price_per_kwh":120000,"last_settlement":0}`))
	f.Add([]byte(`{"id":12,"reputation_score":0.3,"public_key":"ab","scheme":"ed25519-blake3"}`))
	f.Add([]byte(`{"credit_id":"c1","provider":"p","meter_address":"m","amount_kwh":1.5,"status":"pending","created_at":1700000000}`))
	f.Add([]byte(`{"id":"d1","provider":"p","status":"open","opened_at":5,"resolved_at":null,"evidence":{"summary":"x"}}`))
	f.Add([]byte(`{"credit_id":1e999}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip[energy.Provider](t, data)
		roundTrip[energy.Credit](t, data)
		roundTrip[energy.Dispute](t, data)
	})
}

func roundTrip[T any](t *testing.T, data []byte) {
	var first T
	if json.Unmarshal(data, &first) != nil {
		return
	}
	a, err := json.Marshal(first)
	if err != nil {
		t.Fatalf("%T decoded but does not encode: %v", first, err)
	}
	var second T
	if err := json.Unmarshal(a, &second); err != nil {
		t.Fatalf("%T: its own encoding %s does not decode: %v", first, a, err)
	}
	b, _ := json.Marshal(second)
	if !bytes.Equal(a, b) {
		t.Fatalf("%T changed on a round trip:\n%s\n%s", first, a, b)
	}
}
