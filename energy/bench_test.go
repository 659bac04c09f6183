package energy

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// nopHandler is the upstream; the reject benchmarks must never reach it.
var errForwarded atomic.Int64

type nopHandler struct{}

func (nopHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { errForwarded.Add(1) }

const benchBody = `{"jsonrpc":"2.0","id":1,"method":"energy.submit_reading","params":{"provider_id":"p"}}`

type bodyReader struct {
	s string
	i int
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.i >= len(b.s) {
		return 0, io.EOF
	}
	n := copy(p, b.s[b.i:])
	b.i += n
	return n, nil
}
func (b *bodyReader) Close() error { return nil }

// BenchmarkGuardRejectDistinctClients: every request comes from a new client
// (1 000 000 distinct IPv6 addresses, cycled) without a token: limiter insert
// (with eviction at MaxClients) + auth reject + error written. ServeHTTP is
// called directly with a recorder-like writer, in parallel on GOMAXPROCS.
func BenchmarkGuardRejectDistinctClients(b *testing.B) {
	g := benchGuard(b, GuardOptions{Token: "secret"})
	h := g.Middleware(nopHandler{})
	const clients = 1_000_000
	addrs := make([]string, clients)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("[2001:db8::%x:%x]:443", i>>16, i&0xffff)
	}
	var next atomic.Int64
	errForwarded.Store(0)
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		for pb.Next() {
			i := next.Add(1) % clients
			req.RemoteAddr = addrs[i]
			req.Body = &bodyReader{s: benchBody}
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
	b.StopTimer()
	var ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	runtime.KeepAlive(addrs) // the addresses are not the guard's memory: keep them out of the delta
	if errForwarded.Load() != 0 {
		b.Fatal("a rejected request was forwarded")
	}
	b.ReportMetric(float64(g.Clients()), "clients_tracked")
	b.ReportMetric(float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/(1<<20), "heap_MiB_delta")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkGuardRejectRateLimited: one hot client over its limit (-33010, 429).
func BenchmarkGuardRejectRateLimited(b *testing.B) {
	g := benchGuard(b, GuardOptions{RPS: 1})
	h := g.Middleware(nopHandler{})
	g.Allow(netip.MustParseAddr("10.1.2.3"))
	errForwarded.Store(0)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.RemoteAddr = "10.1.2.3:555"
		for pb.Next() {
			req.Body = &bodyReader{s: benchBody}
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	if errForwarded.Load() > int64(b.Elapsed().Seconds())+2 { // one admission per second is allowed
		b.Fatal("rejected requests were forwarded")
	}
}

func benchGuard(b *testing.B, o GuardOptions) *Guard {
	o.Logger = slog.New(slog.DiscardHandler)
	g, err := NewGuard(o)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchReadings(b *testing.B, n, nKeys int) (*KeyRegistry, []Reading) {
	reg := NewKeyRegistry()
	keys := make([]ed25519.PrivateKey, nKeys)
	for i := range keys {
		seed := make([]byte, 32)
		seed[0], seed[1] = byte(i), byte(i>>8)
		keys[i] = ed25519.NewKeyFromSeed(seed)
		if err := reg.Add(fmt.Sprintf("p%d", i), "", hex.EncodeToString(keys[i].Public().(ed25519.PublicKey))); err != nil {
			b.Fatal(err)
		}
	}
	rs := make([]Reading, n)
	for i := range rs {
		r, err := Sign(Reading{ProviderID: fmt.Sprintf("p%d", i%nKeys), Meter: "meter_001", TotalKWh: uint64(i), Timestamp: 1_700_000_000, Nonce: uint64(i)}, keys[i%nKeys])
		if err != nil {
			b.Fatal(err)
		}
		rs[i] = r
	}
	return reg, rs
}

// BenchmarkVerifyStdlib is crypto/ed25519.Verify on the decoded inputs (the peer).
func BenchmarkVerifyStdlib(b *testing.B) {
	reg, rs := benchReadings(b, 1, 1)
	k, _ := reg.Lookup("p0")
	sig, _ := DecodeSignature(rs[0].Signature)
	msg := rs[0].Message()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !ed25519.Verify(k.PublicKey, msg, sig) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkVerifySingle is energy.VerifyWith: lookup, decode, message, verify.
func BenchmarkVerifySingle(b *testing.B) {
	reg, rs := benchReadings(b, 1, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := VerifyWith(reg, rs[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyBatch reports ns per signature (ns/sig) of a Batch against
// crypto/ed25519 on the same readings, interleaved per count; keys=n means
// every reading has its own key (no merging), keys=8 a batch from 8 providers.
// Compare with benchstat -col /impl.
func BenchmarkVerifyBatch(b *testing.B) {
	for _, n := range []int{64, 256, 1024} {
		for _, nk := range []int{n, 8} {
			reg, rs := benchReadings(b, n, nk)
			perSig := func(b *testing.B) {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
			}
			b.Run(fmt.Sprintf("n=%d/keys=%d/impl=stdlib", n, nk), func(b *testing.B) {
				keys, sigs, msgs := decodedReadings(b, reg, rs)
				for b.Loop() {
					for i := range rs {
						if !ed25519.Verify(keys[i], msgs[i], sigs[i]) {
							b.Fatal("invalid")
						}
					}
				}
				perSig(b)
			})
			b.Run(fmt.Sprintf("n=%d/keys=%d/impl=batch", n, nk), func(b *testing.B) {
				bt := NewBatch(nil)
				for b.Loop() {
					bt.Reset()
					for _, r := range rs {
						bt.Add(reg, r)
					}
					if _, ok := bt.Verify(); !ok {
						b.Fatal("batch failed")
					}
				}
				perSig(b)
			})
		}
	}
}

// decodedReadings is each reading's key, signature and signed bytes, decoded
// ahead for the stdlib peer.
func decodedReadings(b *testing.B, reg *KeyRegistry, rs []Reading) (keys []ed25519.PublicKey, sigs, msgs [][]byte) {
	for _, r := range rs {
		k, _ := reg.Lookup(r.ProviderID)
		sig, err := DecodeSignature(r.Signature)
		if err != nil {
			b.Fatal(err)
		}
		keys, sigs, msgs = append(keys, k.PublicKey), append(sigs, sig), append(msgs, r.Message())
	}
	return keys, sigs, msgs
}

// BenchmarkScanEnvelope is the walk the guard makes over every body before the
// limit and the token: a small request, and one whose method comes after 1 MiB
// of parameters (the longest body the guard takes by default), each beside
// json.Valid on the same bytes.
func BenchmarkScanEnvelope(b *testing.B) {
	for name, body := range map[string][]byte{
		"small": []byte(`{"jsonrpc":"2.0","id":1,"params":{"a":[1,2,3],"b":"` + strings.Repeat("x", 200) + `"},"method":"node.status"}`),
		"1MiB":  []byte(`{"jsonrpc":"2.0","id":1,"params":{"a":[` + strings.Repeat(`{"k":"v\\"},`, (DefaultMaxBody-100)/13) + `0]},"method":"energy.market"}`),
	} {
		b.Run(name+"/scan", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if env := scanEnvelope(body); env.err != nil {
					b.Fatal(env.err)
				}
			}
		})
		// The peer: encoding/json's own validation pass, which every
		// json.Unmarshal (the node's decode) makes first.
		b.Run(name+"/json.Valid", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !json.Valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
