package energy

import (
	"encoding/json"
	"strings"
	"testing"
)

func FuzzParseReading(f *testing.F) {
	f.Add([]byte(`{"provider_id":"p","meter":"m","total_kwh":5,"timestamp":10,"nonce":1,"signature":"` + strings.Repeat("A", 86) + `=="}`))
	f.Add([]byte(`{"provider_id":"p","meter_address":"m","kwh_reading":5,"timestamp":10,"nonce":1,"signature":"` + strings.Repeat("ab", 64) + `","scheme":"ed25519-blake3"}`))
	f.Add([]byte(`{"provider_id":"p","total_kwh":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReading(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), ReasonInvalidFormat) && !strings.HasPrefix(err.Error(), ReasonSchemeUnsupported) {
				t.Fatalf("untyped error %q", err)
			}
			return
		}
		if r.Validate() != nil {
			t.Fatalf("parsed reading does not validate")
		}
		_ = r.Message()
	})
}

func FuzzScanEnvelope(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"energy.market","params":{}}`))
	f.Add([]byte(`{"params":{"a":[1,"}",{"b":null}]},"METHOD":"energy\u002emarket"}`))
	f.Add([]byte(`{"method":"node.status","method":"energy.x"}`))
	f.Add([]byte(`{"id":"x\"y","method":"a`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := scanEnvelope(data)
		passes := res.found && !res.dup && !res.bad && res.complete && !strings.HasPrefix(res.method, GuardedPrefix)
		if !passes {
			return
		}
		// The guard lets this body through as a non-energy call: the handler
		// behind (encoding/json, as rpc.DecodeRequest) must see the same method.
		var req struct {
			Method string `json:"method"`
		}
		if err := json.Unmarshal(data, &req); err == nil && req.Method != res.method {
			t.Fatalf("guard saw method %q, encoding/json sees %q", res.method, req.Method)
		}
	})
}
