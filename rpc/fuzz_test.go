package rpc

import (
	"net/http"
	"testing"
	"time"
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
			if d := r.Error.RetryAfter(); d < 0 {
				t.Fatalf("negative retry_after_ms delay %s from %q", d, body)
			}
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

// FuzzParseRetryAfter feeds arbitrary Retry-After headers: a delay is never
// negative (a huge value saturates rather than wrapping).
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"3", "-1", "99999999999999999999", "9223372037", "+5", " 7 ", "soon", "",
		now.Add(time.Hour).Format(http.TimeFormat), "Fri, 31 Dec 9999 23:59:59 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %s", v, d)
		}
	})
}
