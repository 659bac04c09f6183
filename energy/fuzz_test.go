package energy

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/theblock/tbops/rpc"
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

// FuzzGuard checks the guard against an encoding/json node (rpc.DecodeRequest,
// as nodetest decodes): whenever the node would execute an energy.* method, the
// guard counted the request against the limit and checked the token; whatever
// it forwards is exactly the body it decided on, and its method is the one the
// node decodes. The body is head, pad spaces, tail: the pad lets the fuzzer
// build bodies longer than the guard's body limit (fuzzMaxBody) and bury keys
// deep inside long ones.
func FuzzGuard(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"energy.market","params":{}}`), uint32(0), []byte(nil))
	f.Add([]byte(`{"jsonrpc":"2.0","params":{"a":[1,"}",{"b":null}]},`), uint32(3), []byte(`"METHOD":"energy\u002emarket"}`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"node.status",`), uint32(1<<17), []byte(`"Method":"energy.credits"}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"x\"y","method":"node.status"`), uint32(fuzzMaxBody), []byte(`}`))
	f.Fuzz(func(t *testing.T, head []byte, pad uint32, tail []byte) {
		n := int(pad % (2 * fuzzMaxBody))
		body := make([]byte, 0, len(head)+n+len(tail))
		body = append(append(append(body, head...), bytes.Repeat([]byte{' '}, n)...), tail...)

		// What the scan lets through, encoding/json reads the same way.
		if env := scanEnvelope(body); env.err == nil && json.Valid(body) {
			var req rpc.Request
			if err := json.Unmarshal(body, &req); err == nil && req.Method != env.method {
				t.Fatalf("guard saw method %q, encoding/json sees %q", env.method, req.Method)
			}
		}

		g, err := NewGuard(GuardOptions{Token: "t", RPS: 1, MaxClients: 64, MaxBody: fuzzMaxBody,
			Now: func() time.Time { return time.Unix(1_700_000_000, 0) }, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		node := &energyNode{t: t, want: body}
		h := g.Middleware(node)
		fuzzPost(h, body, "", "10.0.0.1:1")
		if node.executed > 0 {
			t.Fatalf("the node executed %q without the token", node.method)
		}
		fuzzPost(h, body, "t", "10.0.0.2:1")
		fuzzPost(h, body, "t", "10.0.0.2:1")
		if node.executed > 1 {
			t.Fatalf("the node executed %q twice within a limit of 1: the guard did not count it", node.method)
		}
	})
}

// fuzzMaxBody is the fuzzed guard's body limit: above the 64 KiB the old scan
// stopped at (the bypass seed is decided on its whole body), small enough that
// padding crosses it cheaply.
const fuzzMaxBody = 96 << 10

// energyNode decodes what it is forwarded as nodetest does and counts the
// energy.* methods it would execute.
type energyNode struct {
	t        *testing.T
	want     []byte
	executed int
	method   string
}

func (n *energyNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got, err := io.ReadAll(r.Body)
	if err != nil || !bytes.Equal(got, n.want) || r.ContentLength != int64(len(n.want)) {
		n.t.Fatalf("forwarded %d bytes (Content-Length %d), want exactly the %d bytes sent (err %v)", len(got), r.ContentLength, len(n.want), err)
	}
	if req, jerr := rpc.DecodeRequest(got); jerr == nil && strings.HasPrefix(req.Method, GuardedPrefix) {
		n.executed++
		n.method = req.Method
	}
}

func fuzzPost(h http.Handler, body []byte, token, remote string) {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.RemoteAddr = remote
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	h.ServeHTTP(httptest.NewRecorder(), req)
}
