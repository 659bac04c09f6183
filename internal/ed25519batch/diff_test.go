package ed25519batch

import (
	"bytes"
	"crypto/ed25519"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"filippo.io/edwards25519"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Differential tests against crypto/ed25519 on batches large enough for the
// Pippenger path (one key per signature: 2n+1 terms, Pippenger from 190).

// largeSizes cross the Straus/Pippenger threshold of the curve library.
var largeSizes = []int{94, 95, 256, 1024}

// TestSmallOrderEncodings: the table is exactly the encodings of the eight
// torsion points, and for canonical encodings it agrees with [8]P = 0.
func TestSmallOrderEncodings(t *testing.T) {
	T := order8(t)
	var got [][32]byte
	acc := edwards25519.NewIdentityPoint()
	for range 8 {
		got = append(got, [32]byte(acc.Bytes()))
		acc.Add(acc, T)
	}
	want := smallOrderEncodings[:]
	sortEnc := func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) }
	assert.Equal(t, slices.SortedFunc(slices.Values(want), sortEnc), slices.SortedFunc(slices.Values(got), sortEnc))

	// Mixed-order and prime-order points are not small order.
	_, A := secret(t)
	for i := range 8 {
		p := new(edwards25519.Point).Add(A, edwards25519.NewIdentityPoint())
		for range i {
			p.Add(p, T)
		}
		b := p.Bytes()
		require.True(t, Canonical(b))
		assert.False(t, smallOrderEncoding(b), "A + [%d]T", i)
		assert.False(t, SmallOrder(p))
	}
	for _, b := range want {
		p, err := new(edwards25519.Point).SetBytes(b[:])
		require.NoError(t, err)
		assert.True(t, SmallOrder(p))
		assert.True(t, Canonical(b[:]))
		_, err = ParseKey(b[:])
		assert.ErrorIs(t, err, ErrSmallOrder)
	}
}

// withTorsion returns an owner-built signature on msg whose R (torsionR) or A
// carries an order-8 component T, which the cofactored batch accepts (the
// documented looser direction), and whether crypto/ed25519 accepts it:
// [s]B − [k]A = R holds only when T is on A and [k]T = 0 (8 divides k).
func withTorsion(t *testing.T, torsionR bool, msg []byte) (Entry, bool) {
	a, A := secret(t)
	T := order8(t)
	r, err := edwards25519.NewScalar().SetUniformBytes(bytes.Repeat([]byte{11}, 64))
	require.NoError(t, err)
	R := new(edwards25519.Point).ScalarBaseMult(r)
	if torsionR {
		R.Add(R, T)
	} else {
		A = new(edwards25519.Point).Add(A, T)
	}
	k := scalarFromHash(R.Bytes(), A.Bytes(), msg)
	s := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	e := Entry{PublicKey: A.Bytes(), Message: msg, Signature: append(R.Bytes(), s.Bytes()...)}
	return e, !torsionR && k.Bytes()[0]%8 == 0
}

// TestVerifyLargeBatches: valid batches of distinct keys verify, cached or not,
// and any one bad entry at the start, middle or end fails them.
func TestVerifyLargeBatches(t *testing.T) {
	v := NewVerifier(nil)
	for _, n := range largeSizes {
		es := entries(n, n)
		require.True(t, stdlibAll(es))
		assert.True(t, v.Verify(es), "n=%d", n)
		cached := slices.Clone(es)
		cacheKeys(t, cached)
		assert.True(t, v.Verify(cached), "n=%d cached", n)
		mixed := slices.Clone(es) // some cached, some not
		for i := 0; i < n; i += 3 {
			mixed[i] = cached[i]
		}
		assert.True(t, v.Verify(mixed), "n=%d mixed", n)

		positions := []int{0, n / 2, n - 1}
		if n > 256 {
			positions = positions[2:] // the last entry: every other one is processed first
		}
		for _, pos := range positions {
			for name, bad := range adversarial(t, es[pos]) {
				b := slices.Clone(es)
				b[pos] = bad.e
				assert.Equal(t, bad.stdlib, stdlibAll([]Entry{bad.e}), "%s: stdlib's verdict", name)
				assert.False(t, v.Verify(b), "n=%d pos=%d %s", n, pos, name)
			}
		}
	}
}

type badEntry struct {
	e      Entry
	stdlib bool // crypto/ed25519's verdict on e alone
}

// adversarial returns variants of the valid entry e that the batch must refuse.
func adversarial(t *testing.T, e Entry) map[string]badEntry {
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	sPlusL := bytes.Clone(e.Signature)
	carry := 0
	for i := range 32 {
		v := int(sPlusL[32+i]) + int(ell[i]) + carry
		sPlusL[32+i], carry = byte(v), v>>8
	}
	nc, _ := nonCanonical(t)
	// A = identity, non-canonically encoded (y = 1 + p): with R = [r]B and
	// s = r, crypto/ed25519 accepts any message.
	idNC := bytes.Repeat([]byte{0xff}, 32)
	idNC[0], idNC[31] = 0xee, 0x7f
	r, _ := secret(t)
	rB := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	// R = identity with s = k·a is valid for crypto/ed25519.
	a, A := secret(t)
	id := edwards25519.NewIdentityPoint().Bytes()
	msg := []byte("small-order R")
	sR := edwards25519.NewScalar().Multiply(scalarFromHash(id, A.Bytes(), msg), a)
	other := testKey(9999).Public().(ed25519.PublicKey)
	// Signed by a with k hashed over other's bytes: the equation holds on A's
	// point, so only the check that Key is PublicKey's decoding refuses it.
	kOther := scalarFromHash(rB, other, msg)
	sOther := edwards25519.NewScalar().MultiplyAdd(kOther, a, r)
	return map[string]badEntry{
		"R bit":               {Entry{PublicKey: e.PublicKey, Message: e.Message, Signature: flip(e.Signature, 3)}, false},
		"s bit":               {Entry{PublicKey: e.PublicKey, Message: e.Message, Signature: flip(e.Signature, 40)}, false},
		"message":             {Entry{PublicKey: e.PublicKey, Message: append(bytes.Clone(e.Message), '!'), Signature: e.Signature}, false},
		"other key":           {Entry{PublicKey: other, Message: e.Message, Signature: e.Signature}, false},
		"non-canonical s":     {Entry{PublicKey: e.PublicKey, Message: e.Message, Signature: sPlusL}, false},
		"non-canonical R":     {Entry{PublicKey: e.PublicKey, Message: e.Message, Signature: append(bytes.Clone(nc), e.Signature[32:]...)}, false},
		"non-canonical A":     {Entry{PublicKey: nc, Message: e.Message, Signature: e.Signature}, false},
		"small-order A (nc)":  {Entry{PublicKey: idNC, Message: []byte("any"), Signature: append(bytes.Clone(rB), r.Bytes()...)}, true},
		"small-order A":       {Entry{PublicKey: id, Message: []byte("any"), Signature: append(bytes.Clone(rB), r.Bytes()...)}, true},
		"small-order R":       {Entry{PublicKey: A.Bytes(), Message: msg, Signature: append(bytes.Clone(id), sR.Bytes()...)}, true},
		"all-zero signature":  {Entry{PublicKey: id, Message: e.Message, Signature: append(bytes.Clone(id), make([]byte, 32)...)}, true},
		"short signature":     {Entry{PublicKey: e.PublicKey, Message: e.Message, Signature: e.Signature[:63]}, false},
		"short key":           {Entry{PublicKey: e.PublicKey[:31], Message: e.Message, Signature: e.Signature}, false},
		"R not on the curve":  {Entry{PublicKey: e.PublicKey, Message: e.Message, Signature: append(notOnCurve(t), e.Signature[32:]...)}, false},
		"cached key mismatch": {Entry{PublicKey: other, Key: mustKey(t, A.Bytes()), Message: msg, Signature: append(bytes.Clone(rB), sOther.Bytes()...)}, false},
	}
}

// notOnCurve is a canonical 32-byte string that decodes to no point.
func notOnCurve(t *testing.T) []byte {
	b := make([]byte, 32)
	b[0] = 2
	_, err := new(edwards25519.Point).SetBytes(b)
	require.Error(t, err)
	return b
}

// TestVerifyTorsionLargeBatch: in a large batch, an owner-built signature with
// a torsion component on R or A is accepted by the cofactored equation though
// crypto/ed25519 may reject it — and a bad signature next to it still fails.
func TestVerifyTorsionLargeBatch(t *testing.T) {
	v := NewVerifier(nil)
	for _, torsionR := range []bool{true, false} {
		es := entries(256, 256)
		for _, msg := range []string{"a", "b", "c", "d"} {
			te, stdlib := withTorsion(t, torsionR, []byte(msg))
			assert.Equal(t, stdlib, ed25519.Verify(te.PublicKey, te.Message, te.Signature))
			es[100] = te
			assert.True(t, v.Verify(es), "torsion on R=%v", torsionR)
		}
		es[200].Signature = bytes.Clone(es[200].Signature)
		es[200].Signature[40] ^= 1
		assert.False(t, v.Verify(es))
	}
}

// TestVerifyMatchesStdlibLarge: random batches of 95–300 distinct keys with a
// few random mutations; the batch is true exactly when crypto/ed25519 accepts
// every entry.
func TestVerifyMatchesStdlibLarge(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 6))
	v := NewVerifier(&countReader{})
	base := entries(300, 300)
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	for round := range rounds {
		n := 95 + rng.IntN(len(base)-95)
		es := slices.Clone(base[:n])
		if rng.IntN(2) == 0 {
			cacheKeys(t, es)
		}
		for range rng.IntN(3) {
			e := &es[rng.IntN(n)]
			switch rng.IntN(3) {
			case 0:
				e.Signature = bytes.Clone(e.Signature)
				e.Signature[rng.IntN(64)] ^= byte(1 << rng.IntN(8))
			case 1:
				e.PublicKey = bytes.Clone(e.PublicKey)
				e.PublicKey[rng.IntN(32)] ^= byte(1 << rng.IntN(8))
				e.Key = nil
			case 2:
				e.Message = append(bytes.Clone(e.Message), byte(rng.Uint32()))
			}
		}
		assert.Equal(t, stdlibAll(es), v.Verify(es), "round %d n=%d", round, n)
	}
}

// TestVerifyOneAndEmpty: n = 0 is true without reading randomness; n = 1 is
// crypto/ed25519's verdict on ordinary signatures.
func TestVerifyOneAndEmpty(t *testing.T) {
	assert.True(t, NewVerifier(failReader{}).Verify(nil))
	e := entries(1, 1)
	assert.True(t, Verify(e, nil))
	for name, bad := range adversarial(t, e[0]) {
		assert.False(t, Verify([]Entry{bad.e}, nil), name)
	}
}
