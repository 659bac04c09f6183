package energy_test

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"filippo.io/edwards25519"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/energy"
)

// TestBatchSmallOrderRGoesSingle: a signature with R = identity and s = k·a
// is valid for crypto/ed25519; the shared batch refuses to judge it and the
// single-verification fallback accepts it, so the batch's verdicts stay
// exactly single verification's.
func TestBatchSmallOrderRGoesSingle(t *testing.T) {
	reg, rs := batchSet(t, 6, 2)
	seed := make([]byte, 32)
	seed[0] = 42
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	require.NoError(t, reg.Add("crafted", "", hex.EncodeToString(pub)))
	h := sha512.Sum512(seed)
	a, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	require.NoError(t, err)

	r := energy.Reading{ProviderID: "crafted", Meter: "m", TotalKWh: 7, Timestamp: 1, Nonce: 1}
	msg, err := energy.SignedBytes(r.Scheme, r.Message())
	require.NoError(t, err)
	R := edwards25519.NewIdentityPoint().Bytes()
	kh := sha512.New()
	kh.Write(R)
	kh.Write(pub)
	kh.Write(msg)
	k, err := edwards25519.NewScalar().SetUniformBytes(kh.Sum(nil))
	require.NoError(t, err)
	s := edwards25519.NewScalar().Multiply(k, a)
	r.Signature = base64.StdEncoding.EncodeToString(append(R, s.Bytes()...))
	require.NoError(t, energy.VerifyWith(reg, r), "crypto/ed25519 accepts a small-order R")

	rs = append(rs, r)
	errs := energy.VerifyBatch(reg, rs)
	for i, err := range errs {
		assert.NoError(t, err, i)
	}
	// A bad reading beside it is still named, and only it.
	rs[2].TotalKWh++
	errs = energy.VerifyBatch(reg, rs)
	for i, err := range errs {
		if i == 2 {
			assert.ErrorIs(t, err, energy.ErrVerificationFailed)
		} else {
			assert.NoError(t, err, i)
		}
	}
}

// TestBatchRandFailureFallsBack: without randomness every reading is verified
// singly, with the same verdicts.
func TestBatchRandFailureFallsBack(t *testing.T) {
	reg, rs := batchSet(t, 5, 2)
	rs[1].Nonce++
	b := energy.NewBatch(failReader{})
	for _, r := range rs {
		b.Add(reg, r)
	}
	errs, ok := b.Verify()
	assert.False(t, ok)
	for i, err := range errs {
		if i == 1 {
			assert.ErrorIs(t, err, energy.ErrVerificationFailed)
		} else {
			assert.NoError(t, err, i)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, assert.AnError }
