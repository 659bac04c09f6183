package bench

// Peers for rows of BENCHMARKS.md that had none (issue #17.1):
//   - receipts duplicate detection: receipts.Validator against the way one
//     builds it with Go maps (receipt ids and provider nonces, each remembered
//     with its block, forgotten 120 blocks later);
//   - ParseExposition: promq against expfmt's own text parser and sample
//     extraction, which it wraps.
// Both report cpu-ns/op (the process's CPU time) beside ns/op.
//
// Run: cd bench && go test -run '^$' -bench 'ReceiptsDuplicates|Exposition400' -benchmem .

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/receipts"
)

const (
	receiptsPerBlock = 1000
	receiptsWindow   = 120 // receipts.DefaultWindowBlocks
)

// receiptPool is 262 144 distinct receipts, as receipts' own benchmark: more
// than twice the window, so reusing it with ever higher heights never meets a
// receipt still remembered.
func receiptPool() []receipts.Receipt {
	pool := make([]receipts.Receipt, 1<<18)
	for i := range pool {
		pool[i] = receipts.Receipt{ReceiptID: "rcpt-" + strconv.Itoa(i), Market: receipts.Markets()[i%4],
			Provider: "provider-" + strconv.Itoa(i%512), Payment: 5000, Nonce: uint64(i), Signature: "c2lnbmF0dXJl"}
	}
	return pool
}

type providerNonce struct {
	provider string
	nonce    uint64
}

// mapDedup is duplicate detection over a window of blocks with two maps and,
// per block, the keys to forget when the block leaves the window.
type mapDedup struct {
	ids    map[string]struct{}
	pairs  map[providerNonce]struct{}
	blocks map[int64][]*receipts.Receipt
	newest int64
}

func newMapDedup() *mapDedup {
	return &mapDedup{ids: map[string]struct{}{}, pairs: map[providerNonce]struct{}{}, blocks: map[int64][]*receipts.Receipt{}}
}

// admit says whether r is new in the window, and remembers it.
func (m *mapDedup) admit(r *receipts.Receipt) bool {
	for ; m.newest < r.BlockHeight; m.newest++ {
		old := m.newest - receiptsWindow
		for _, o := range m.blocks[old] {
			delete(m.ids, o.ReceiptID)
			delete(m.pairs, providerNonce{o.Provider, o.Nonce})
		}
		delete(m.blocks, old)
	}
	p := providerNonce{r.Provider, r.Nonce}
	if _, dup := m.ids[r.ReceiptID]; dup {
		return false
	}
	if _, dup := m.pairs[p]; dup {
		return false
	}
	m.ids[r.ReceiptID], m.pairs[p] = struct{}{}, struct{}{}
	m.blocks[r.BlockHeight] = append(m.blocks[r.BlockHeight], r)
	return true
}

func TestMapDedupRefusesReplays(t *testing.T) {
	m := newMapDedup()
	r := receipts.Receipt{ReceiptID: "a", Provider: "p", Nonce: 1, BlockHeight: 5}
	require.True(t, m.admit(&r))
	require.False(t, m.admit(&r), "same id")
	r2 := receipts.Receipt{ReceiptID: "b", Provider: "p", Nonce: 1, BlockHeight: 6}
	require.False(t, m.admit(&r2), "same provider nonce")
	r3 := receipts.Receipt{ReceiptID: "a", Provider: "p", Nonce: 1, BlockHeight: 5 + receiptsWindow + 1}
	require.True(t, m.admit(&r3), "forgotten once out of the window")
}

func BenchmarkReceiptsDuplicates(b *testing.B) {
	pool := receiptPool()
	b.Run("impl=tbops", func(b *testing.B) {
		v, err := receipts.NewValidator(receipts.ValidatorConfig{})
		require.NoError(b, err)
		runReceipts(b, pool, func(r *receipts.Receipt) bool { return v.Validate(r) == nil })
	})
	b.Run("impl=map", func(b *testing.B) {
		m := newMapDedup()
		runReceipts(b, pool, m.admit)
	})
}

// runReceipts feeds every receipt once, receiptsPerBlock a block; each must be admitted.
func runReceipts(b *testing.B, pool []receipts.Receipt, admit func(*receipts.Receipt) bool) {
	rs := make([]receipts.Receipt, len(pool))
	copy(rs, pool)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		r := &rs[i&(len(rs)-1)]
		r.BlockHeight = int64(i / receiptsPerBlock)
		if !admit(r) {
			b.Fatalf("receipt %d refused", i)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// exposition400 is promq's own 400-line benchmark body: 20 counters of 10
// series, 10 histograms of 12 buckets.
func exposition400() []byte {
	var b bytes.Buffer
	for f := 0; f < 20; f++ {
		fmt.Fprintf(&b, "# HELP c%d_total A counter.\n# TYPE c%d_total counter\n", f, f)
		for s := 0; s < 10; s++ {
			fmt.Fprintf(&b, "c%d_total{market=\"m%d\",provider=\"p%d\"} %d\n", f, s, s%3, 1000*f+s)
		}
	}
	for h := 0; h < 10; h++ {
		fmt.Fprintf(&b, "# HELP h%d_seconds A histogram.\n# TYPE h%d_seconds histogram\n", h, h)
		for i, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"} {
			fmt.Fprintf(&b, "h%d_seconds_bucket{le=%q} %d\n", h, le, 10*(i+1))
		}
		fmt.Fprintf(&b, "h%d_seconds_sum 12.5\nh%d_seconds_count 120\n", h, h)
	}
	return b.Bytes()
}

// expfmtSamples is what a program gets from expfmt alone: the text parser,
// then the flat samples.
func expfmtSamples(body []byte, ts time.Time) (model.Vector, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	all := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		all = append(all, f)
	}
	return expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.TimeFromUnixNano(ts.UnixNano())}, all...)
}

func TestExpositionParsersAgree(t *testing.T) {
	body, ts := exposition400(), time.Unix(1700000000, 0)
	ours, err := promq.ParseExposition(body, "text/plain; version=0.0.4", ts)
	require.NoError(t, err)
	theirs, err := expfmtSamples(body, ts)
	require.NoError(t, err)
	require.Len(t, ours, 20*10+10*14)
	require.ElementsMatch(t, theirs, ours)
}

func BenchmarkExposition400(b *testing.B) {
	body, ts := exposition400(), time.Unix(1700000000, 0)
	for _, c := range []struct {
		name  string
		parse func() (model.Vector, error)
	}{
		{"tbops", func() (model.Vector, error) { return promq.ParseExposition(body, "text/plain; version=0.0.4", ts) }},
		{"expfmt", func() (model.Vector, error) { return expfmtSamples(body, ts) }},
	} {
		b.Run("impl="+c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				if v, err := c.parse(); err != nil || len(v) != 340 {
					b.Fatal(len(v), err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
