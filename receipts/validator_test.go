package receipts_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/receipts"
)

func rcpt(id string, h int64, provider string, nonce uint64) receipts.Receipt {
	return receipts.Receipt{ReceiptID: id, Market: receipts.Storage, BlockHeight: h, Provider: provider,
		Payment: 5000, Nonce: nonce, Signature: "c2ln"}
}

func newValidator(t *testing.T, cfg receipts.ValidatorConfig) *receipts.Validator {
	t.Helper()
	v, err := receipts.NewValidator(cfg)
	require.NoError(t, err)
	return v
}

func TestValidatorAccepts(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{})
	for _, m := range receipts.Markets() {
		r := rcpt("r-"+string(m), 10, "p-"+string(m), 1)
		r.Market = m
		require.NoError(t, v.Validate(&r), m)
	}
	assert.Equal(t, uint64(4), v.Counts().Accepted)
	assert.Equal(t, int64(10), v.Tip())
	assert.Equal(t, 4, v.Len())
}

func TestValidatorSchema(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{Schemas: map[receipts.Market]receipts.Schema{
		receipts.Storage: {MaxPayment: 1_000_000, MaxIDLen: 8, MaxProviderLen: 8, MaxSignatureLen: 16},
	}})
	cases := []struct {
		name  string
		edit  func(*receipts.Receipt)
		field string
	}{
		{"unknown market", func(r *receipts.Receipt) { r.Market = "gas" }, "market"},
		{"market not configured", func(r *receipts.Receipt) { r.Market = receipts.Ad }, "market"},
		{"empty market", func(r *receipts.Receipt) { r.Market = "" }, "market"},
		{"empty id", func(r *receipts.Receipt) { r.ReceiptID = "" }, "receipt_id"},
		{"long id", func(r *receipts.Receipt) { r.ReceiptID = strings.Repeat("x", 9) }, "receipt_id"},
		{"bad utf8 provider", func(r *receipts.Receipt) { r.Provider = "\xff" }, "provider"},
		{"empty signature", func(r *receipts.Receipt) { r.Signature = "" }, "signature"},
		{"negative height", func(r *receipts.Receipt) { r.BlockHeight = -1 }, "block_height"},
		{"negative payment", func(r *receipts.Receipt) { r.Payment = -5 }, "payment"},
		{"over the market ceiling", func(r *receipts.Receipt) { r.Payment = 1_000_001 }, "payment"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rcpt("ok", 1, "p", 1)
			c.edit(&r)
			err := v.Validate(&r)
			require.ErrorIs(t, err, receipts.ErrSchemaMismatch)
			var re *receipts.RejectError
			require.True(t, errors.As(err, &re))
			assert.Equal(t, c.field, re.Field)
			assert.Equal(t, receipts.ReasonSchemaMismatch, receipts.ReasonOf(err))
		})
	}
	assert.Equal(t, uint64(len(cases)), v.Counts().Rejected[receipts.ReasonSchemaMismatch])
	assert.Zero(t, v.Len(), "rejected receipts never enter the window")
	require.Error(t, v.Validate(nil))
}

func TestValidatorMinPayment(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{})
	r := rcpt("a", 1, "p", 1)
	r.Payment = 999
	err := v.Validate(&r)
	require.ErrorIs(t, err, receipts.ErrMinPayment)
	assert.Contains(t, err.Error(), "0.000999 BLOCK is below the 0.001 BLOCK floor")
	r.Payment = receipts.MinPayment // exactly the floor is accepted
	require.NoError(t, v.Validate(&r))

	off := newValidator(t, receipts.ValidatorConfig{MinPayment: -1})
	r = rcpt("b", 1, "p", 1)
	r.Payment = 0
	require.NoError(t, off.Validate(&r))
}

func TestValidatorSignature(t *testing.T) {
	calls := 0
	v := newValidator(t, receipts.ValidatorConfig{Signature: receipts.SignatureFunc(func(r receipts.Receipt) error {
		calls++
		if r.Signature != "good" {
			return errors.New("verification_failed")
		}
		return nil
	})})
	r := rcpt("a", 1, "p", 1)
	err := v.Validate(&r)
	require.ErrorIs(t, err, receipts.ErrSignatureInvalid)
	assert.Contains(t, err.Error(), "verification_failed")
	r.Signature = "good"
	require.NoError(t, v.Validate(&r), "a receipt refused for its signature did not take its id")
	// Cheap checks run first: no signature check for a receipt below the floor.
	r2 := rcpt("b", 1, "p", 2)
	r2.Payment = 1
	require.ErrorIs(t, v.Validate(&r2), receipts.ErrMinPayment)
	assert.Equal(t, 2, calls)
}

func TestValidatorDuplicates(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{WindowBlocks: 10})
	a := rcpt("a", 100, "p", 1)
	require.NoError(t, v.Validate(&a))

	same := a
	err := v.Validate(&same)
	require.ErrorIs(t, err, receipts.ErrDuplicate)
	var re *receipts.RejectError
	require.True(t, errors.As(err, &re))
	assert.Equal(t, "receipt_id", re.Field)
	assert.Contains(t, err.Error(), "already seen in block 100")

	replay := rcpt("a-new-id", 104, "p", 1) // same provider and nonce
	err = v.Validate(&replay)
	require.ErrorIs(t, err, receipts.ErrDuplicate)
	require.True(t, errors.As(err, &re))
	assert.Equal(t, "nonce", re.Field)

	other := rcpt("b", 104, "q", 1) // another provider may use nonce 1
	require.NoError(t, v.Validate(&other))
	assert.Equal(t, uint64(2), v.Counts().Rejected[receipts.ReasonDuplicate])
}

func TestValidatorWindowSlides(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{WindowBlocks: 10})
	a := rcpt("a", 100, "p", 1)
	require.NoError(t, v.Validate(&a))
	// Out of order within the window is fine.
	b := rcpt("b", 95, "p", 2)
	require.NoError(t, v.Validate(&b))
	// Height 109: window is 100..109; "a" at 100 still remembered.
	c := rcpt("c", 109, "p", 3)
	require.NoError(t, v.Validate(&c))
	again := rcpt("a", 109, "x", 9)
	require.ErrorIs(t, v.Validate(&again), receipts.ErrDuplicate)
	// Height 110: block 100 slides out, "a" may be seen again.
	d := rcpt("d", 110, "p", 4)
	require.NoError(t, v.Validate(&d))
	require.NoError(t, v.Validate(&again))
	// A receipt older than the window is refused, not silently accepted.
	old := rcpt("old", 100, "z", 1)
	err := v.Validate(&old)
	require.ErrorIs(t, err, receipts.ErrStale)
	require.ErrorIs(t, err, receipts.ErrDuplicate)
	assert.Equal(t, uint64(1), v.Counts().Stale)
	// A gap larger than the window forgets everything.
	far := rcpt("far", 10_000, "p", 5)
	require.NoError(t, v.Validate(&far))
	assert.Equal(t, 1, v.Len())
	// "d" was forgotten with its block: within the new window it is new again.
	d.BlockHeight = 9_999
	require.NoError(t, v.Validate(&d))
}

func TestValidatorMaxAheadAndAdvance(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{WindowBlocks: 10, MaxAhead: 50})
	a := rcpt("a", 100, "p", 1)
	require.NoError(t, v.Validate(&a))
	wild := rcpt("wild", 1<<40, "p", 2)
	err := v.Validate(&wild)
	require.ErrorIs(t, err, receipts.ErrSchemaMismatch)
	assert.Equal(t, int64(100), v.Tip(), "a wild height does not slide the window")
	v.Advance(1000)
	assert.Equal(t, int64(1000), v.Tip())
	assert.Zero(t, v.Len())
	v.Advance(10) // never backwards
	assert.Equal(t, int64(1000), v.Tip())
	v.Reset()
	assert.Equal(t, int64(-1), v.Tip())
}

func TestValidatorConfigErrors(t *testing.T) {
	for _, cfg := range []receipts.ValidatorConfig{
		{WindowBlocks: -1},
		{WindowBlocks: 1 << 30},
		{MaxAhead: -1},
		{Schemas: map[receipts.Market]receipts.Schema{receipts.Ad: {}}},
	} {
		_, err := receipts.NewValidator(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
}

// The window holds only the receipts of its blocks, however long the stream.
func TestValidatorMemoryBoundedByWindow(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{WindowBlocks: 20})
	const perBlock = 50
	for h := int64(0); h < 2000; h++ {
		for i := 0; i < perBlock; i++ {
			r := rcpt(fmt.Sprintf("r-%d-%d", h, i), h, fmt.Sprintf("p%d", i), uint64(h))
			require.NoError(t, v.Validate(&r))
		}
		require.LessOrEqual(t, v.Len(), 20*perBlock)
	}
	assert.Equal(t, 20*perBlock, v.Len())
}

func TestValidatorConcurrent(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{WindowBlocks: 1000})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				r := rcpt(fmt.Sprintf("r%d", i), int64(i/10), "p", uint64(i))
				if v.Validate(&r) == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 500, accepted, "each receipt accepted exactly once")
	c := v.Counts()
	assert.Equal(t, uint64(1500), c.Rejected[receipts.ReasonDuplicate])
}

func TestDecodeReceipt(t *testing.T) {
	r, err := receipts.DecodeReceipt([]byte(`{"receipt_id":"r1","market":"ad","block_height":7,"provider":"p","payment":1500,"nonce":3,"signature":"c2ln","extra":true}`))
	require.NoError(t, err)
	assert.Equal(t, receipts.Receipt{ReceiptID: "r1", Market: receipts.Ad, BlockHeight: 7, Provider: "p", Payment: 1500, Nonce: 3, Signature: "c2ln"}, r)

	bad := map[string]string{
		`{"receipt_id":"r1","market":"ad","block_height":7,"provider":"p","payment":1500.5,"nonce":3,"signature":"s"}`: "payment",
		`{"receipt_id":"r1","market":"ad","block_height":"7","provider":"p","payment":1500,"nonce":3,"signature":"s"}`: "block_height",
		`{"receipt_id":"r1","market":"ad","block_height":7,"provider":"p","payment":1500,"nonce":-3,"signature":"s"}`:  "nonce",
		`{"receipt_id":1,"market":"ad","block_height":7,"provider":"p","payment":1500,"nonce":3,"signature":"s"}`:      "receipt_id",
		`{"market":"ad","block_height":7,"provider":"p","payment":1500,"nonce":3}`:                                     "receipt_id",
		`[1,2]`:          "",
		`{"receipt_id":`: "",
		`{} {}`:          "",
	}
	for in, field := range bad {
		_, err := receipts.DecodeReceipt([]byte(in))
		require.ErrorIs(t, err, receipts.ErrSchemaMismatch, in)
		var re *receipts.RejectError
		require.True(t, errors.As(err, &re))
		assert.Equal(t, field, re.Field, in)
	}
	_, err = receipts.DecodeReceipt([]byte(`{"market":"ad"}`))
	assert.Contains(t, err.Error(), "missing: receipt_id, provider, signature, block_height, payment, nonce")
	_, err = receipts.DecodeReceipt(make([]byte, receipts.MaxReceiptBytes+1))
	require.ErrorIs(t, err, receipts.ErrSchemaMismatch)
}

func TestValidateJSONCountsSchema(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{})
	_, err := v.ValidateJSON([]byte(`{"nope":1}`))
	require.ErrorIs(t, err, receipts.ErrSchemaMismatch)
	r, err := v.ValidateJSON([]byte(`{"receipt_id":"r1","market":"energy","block_height":7,"provider":"p","payment":1000,"nonce":3,"signature":"s"}`))
	require.NoError(t, err)
	assert.Equal(t, receipts.Energy, r.Market)
	assert.Equal(t, uint64(1), v.Counts().Rejected[receipts.ReasonSchemaMismatch])
}

func TestCollector(t *testing.T) {
	v := newValidator(t, receipts.ValidatorConfig{})
	a := rcpt("a", 1, "p", 1)
	require.NoError(t, v.Validate(&a))
	require.Error(t, v.Validate(&a)) // duplicate
	low := rcpt("b", 1, "p", 2)
	low.Payment = 10
	require.Error(t, v.Validate(&low))
	bad := rcpt("c", 1, "p", 3)
	bad.Market = "x"
	require.Error(t, v.Validate(&bad))
	c := v.Collector(prometheus.Labels{"node": "n1"})
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP receipt_min_payment_rejected_total Receipts rejected below the 0.001 BLOCK payment floor.
# TYPE receipt_min_payment_rejected_total counter
receipt_min_payment_rejected_total{node="n1"} 1
# HELP receipt_validation_errors_total Receipts that failed validation, by reason.
# TYPE receipt_validation_errors_total counter
receipt_validation_errors_total{node="n1",reason="duplicate_detection"} 1
receipt_validation_errors_total{node="n1",reason="schema_mismatch"} 1
receipt_validation_errors_total{node="n1",reason="signature_invalid"} 0
`)))
	// It registers cleanly (pedantic: descriptions match what it collects).
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	_, err := reg.Gather()
	require.NoError(t, err)
}
