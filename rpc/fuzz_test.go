package rpc

import (
	"testing"
)

// FuzzDecodeEnvelope feeds arbitrary bodies to the client's response decoder:
// it must never panic, and whatever it accepts is a 2.0 envelope with a result
// or an error.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"a":1}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-33010,"message":"rate limited","data":{"retry_after_ms":20}}}`,
		`<html>502</html>`, `{"jsonrpc":"2.0","id":1,"result":`, `[]`, ``, `null`, `{"jsonrpc":2}`,
		`{"jsonrpc":"2.0","error":{"code":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r response
		if err := decodeEnvelope(body, &r); err != nil {
			return
		}
		if r.JSONRPC != "2.0" || (r.Result == nil && r.Error == nil) {
			t.Fatalf("accepted a bad envelope: %q", body)
		}
		if r.Error != nil {
			_ = r.Error.Error()
			_ = r.Error.RetryAfter()
			_ = r.Error.Reason()
		}
	})
}

// FuzzDecodeRequest feeds arbitrary bodies to the server's request decoder.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"node.status","params":{}}`,
		`{"jsonrpc":"2.0","id":"a","method":"m"}`, `[{}]`, `{"jsonrpc":"2.0","method":"m","params":[1]}`, `{`, ` `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, jerr := DecodeRequest(body)
		if jerr != nil {
			if req != nil {
				t.Fatal("both a request and an error")
			}
			return
		}
		if req.JSONRPC != "2.0" || req.Method == "" || len(req.Params) == 0 || req.Params[0] != '{' {
			t.Fatalf("accepted a bad request %q: %+v", body, req)
		}
	})
}
