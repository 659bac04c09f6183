package ed25519batch

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testKey(i int) ed25519.PrivateKey {
	seed := make([]byte, 32)
	binary.LittleEndian.PutUint64(seed, uint64(i)+1)
	return ed25519.NewKeyFromSeed(seed)
}

// entries returns n valid signatures by nKeys keys.
func entries(n, nKeys int) []Entry {
	keys := make([]ed25519.PrivateKey, nKeys)
	for i := range keys {
		keys[i] = testKey(i)
	}
	out := make([]Entry, n)
	for i := range out {
		k := keys[i%nKeys]
		msg := []byte(fmt.Sprintf("message %d", i))
		out[i] = Entry{PublicKey: k.Public().(ed25519.PublicKey), Message: msg, Signature: ed25519.Sign(k, msg)}
	}
	return out
}

// cacheKeys sets every entry's Key, as a key registry would.
func cacheKeys(t testing.TB, es []Entry) {
	for i := range es {
		es[i].Key = mustKey(t, es[i].PublicKey)
	}
}

func mustKey(t testing.TB, b []byte) *Key {
	k, err := ParseKey(b)
	require.NoError(t, err)
	return k
}

func stdlibAll(es []Entry) bool {
	for _, e := range es {
		if len(e.PublicKey) != 32 || !ed25519.Verify(e.PublicKey, e.Message, e.Signature) {
			return false
		}
	}
	return true
}

// zeroReader is a deterministic (and insecure) coefficient source for tests.
type countReader struct{ n byte }

func (r *countReader) Read(p []byte) (int, error) {
	for i := range p {
		r.n++
		p[i] = r.n*31 + 7
	}
	return len(p), nil
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestVerifyValid(t *testing.T) {
	v := NewVerifier(nil)
	for _, n := range []int{1, 2, 7, 64, 130} {
		for _, nk := range []int{1, 3, n} {
			es := entries(n, nk)
			assert.True(t, v.Verify(es), "n=%d keys=%d", n, nk)
			assert.True(t, Verify(es, &countReader{}), "n=%d keys=%d deterministic reader", n, nk)
			// Cached keys give the same answer.
			cacheKeys(t, es)
			assert.True(t, v.Verify(es), "n=%d keys=%d cached", n, nk)
		}
	}
	// The buffers shrink back: a small batch after a large one.
	assert.True(t, v.Verify(entries(3, 2)))
}

func TestVerifyEmpty(t *testing.T) {
	assert.True(t, Verify(nil, nil))
	assert.True(t, NewVerifier(failReader{}).Verify([]Entry{}))
}

func TestVerifyRandFailure(t *testing.T) {
	assert.False(t, Verify(entries(4, 2), failReader{}))
}

func TestVerifyOneBad(t *testing.T) {
	other := testKey(99).Public().(ed25519.PublicKey)
	corrupt := map[string]func(e *Entry){
		"R bit":     func(e *Entry) { e.Signature[5] ^= 1 },
		"s bit":     func(e *Entry) { e.Signature[40] ^= 1 },
		"message":   func(e *Entry) { e.Message = append(e.Message, '!') },
		"other key": func(e *Entry) { e.PublicKey = other },
		"short sig": func(e *Entry) { e.Signature = e.Signature[:63] },
		"long sig":  func(e *Entry) { e.Signature = append(e.Signature, 0) },
		"short key": func(e *Entry) { e.PublicKey = e.PublicKey[:31] },
		"nil key":   func(e *Entry) { e.PublicKey = nil },
		"other msg": func(e *Entry) { e.Message = []byte("message x") },
	}
	v := NewVerifier(nil)
	for _, n := range []int{1, 2, 64} {
		for name, c := range corrupt {
			for _, nk := range []int{1, n} {
				es := entries(n, nk)
				bad := &es[n/2]
				bad.Signature = bytes.Clone(bad.Signature)
				c(bad)
				assert.False(t, stdlibAll(es[n/2:n/2+1]), "%s: stdlib must reject too", name)
				assert.False(t, v.Verify(es), "n=%d keys=%d %s", n, nk, name)
			}
		}
	}
}

var ell = []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}

func TestVerifyNonCanonicalS(t *testing.T) {
	es := entries(8, 2)
	sig := bytes.Clone(es[3].Signature)
	carry := 0
	for i := 0; i < 32; i++ { // s + ℓ: the same scalar, non-canonical
		v := int(sig[32+i]) + int(ell[i]) + carry
		sig[32+i], carry = byte(v), v>>8
	}
	require.Zero(t, carry)
	es[3].Signature = sig
	assert.False(t, ed25519.Verify(es[3].PublicKey, es[3].Message, sig))
	assert.False(t, Verify(es, nil))
}

// nonCanonical returns a valid but non-canonical encoding of a point (y + p
// for a small y on the curve) and the canonical one.
func nonCanonical(t *testing.T) (enc, canon []byte) {
	for y := byte(2); y < 19; y++ {
		b := make([]byte, 32)
		b[0] = y
		if p, err := new(edwards25519.Point).SetBytes(b); err == nil && !SmallOrder(p) {
			// y + p = y − 19 + 2²⁵⁵: bytes of 2²⁵⁵ − 19 + y.
			nc := bytes.Repeat([]byte{0xff}, 32)
			nc[31] = 0x7f
			nc[0] = 0xed + y
			q, err := new(edwards25519.Point).SetBytes(nc)
			require.NoError(t, err)
			require.Equal(t, 1, q.Equal(p))
			require.False(t, Canonical(nc))
			require.True(t, Canonical(b))
			return nc, b
		}
	}
	t.Fatal("no small y on the curve")
	return nil, nil
}

func TestVerifyNonCanonicalPoints(t *testing.T) {
	nc, _ := nonCanonical(t)
	// R non-canonical.
	es := entries(8, 2)
	es[2].Signature = append(bytes.Clone(nc), es[2].Signature[32:]...)
	assert.False(t, Verify(es, nil))
	// A non-canonical (with or without a pre-decompressed point).
	es = entries(8, 2)
	es[5].PublicKey = nc
	assert.False(t, Verify(es, nil))
	_, canon := nonCanonical(t)
	es[5].Key = mustKey(t, canon) // the same point, cached, under other bytes
	assert.False(t, Verify(es, nil))
	// "Negative zero": the identity with the sign bit set.
	nz := make([]byte, 32)
	nz[0], nz[31] = 1, 0x80
	assert.False(t, Canonical(nz))
	_, err := ParseKey(nz)
	assert.ErrorIs(t, err, ErrNonCanonical)
	_, err = ParseKey(nc)
	assert.ErrorIs(t, err, ErrNonCanonical)
	_, err = ParseKey(nc[:31])
	assert.ErrorIs(t, err, ErrPointLength)
	_, err = ParseKey(edwards25519.NewIdentityPoint().Bytes())
	assert.ErrorIs(t, err, ErrSmallOrder)
	notPoint := make([]byte, 32)
	notPoint[0] = 2 // y = 2 is not on the curve
	_, err = new(edwards25519.Point).SetBytes(notPoint)
	require.Error(t, err)
	_, err = ParseKey(notPoint)
	assert.ErrorIs(t, err, ErrNotOnCurve)
}

// TestCanonicalEdges: Canonical agrees with decode-and-re-encode on the
// encodings near p and around x = 0.
func TestCanonicalEdges(t *testing.T) {
	var cases [][]byte
	for _, top := range []byte{0x00, 0x7f, 0x80, 0xff} {
		for _, low := range []byte{0, 1, 2, 0xeb, 0xec, 0xed, 0xee, 0xff} {
			for _, mid := range []byte{0, 0xff} {
				b := bytes.Repeat([]byte{mid}, 32)
				b[0], b[31] = low, top
				cases = append(cases, b)
			}
		}
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		cases = append(cases, b)
	}
	for _, b := range cases {
		p, err := new(edwards25519.Point).SetBytes(b)
		if err != nil {
			continue
		}
		assert.Equal(t, bytes.Equal(p.Bytes(), b), Canonical(b), "%x", b)
	}
}

// scalarFromHash is k = SHA-512(R‖A‖M) mod ℓ.
func scalarFromHash(R, A, M []byte) *edwards25519.Scalar {
	h := sha512.New()
	h.Write(R)
	h.Write(A)
	h.Write(M)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	return k
}

func secret(t *testing.T) (*edwards25519.Scalar, *edwards25519.Point) {
	a, err := edwards25519.NewScalar().SetUniformBytes(bytes.Repeat([]byte{7}, 64))
	require.NoError(t, err)
	return a, new(edwards25519.Point).ScalarBaseMult(a)
}

// TestVerifySmallOrderR: R = identity, s = k·a is valid for crypto/ed25519
// ([s]B − [k]A = 0 = R); the batch leaves it to the single check.
func TestVerifySmallOrderR(t *testing.T) {
	a, A := secret(t)
	R := edwards25519.NewIdentityPoint().Bytes()
	msg := []byte("m")
	s := edwards25519.NewScalar().Multiply(scalarFromHash(R, A.Bytes(), msg), a)
	e := Entry{PublicKey: A.Bytes(), Message: msg, Signature: append(R, s.Bytes()...)}
	require.True(t, ed25519.Verify(e.PublicKey, msg, e.Signature))
	assert.False(t, Verify([]Entry{e}, nil))
	assert.False(t, Verify(append(entries(5, 2), e), nil))
}

// TestVerifySmallOrderA: with A the identity, (R = [r]B, s = r) verifies any
// message under crypto/ed25519; the batch refuses it.
func TestVerifySmallOrderA(t *testing.T) {
	r, _ := secret(t)
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	A := edwards25519.NewIdentityPoint().Bytes()
	e := Entry{PublicKey: A, Message: []byte("anything"), Signature: append(R, r.Bytes()...)}
	require.True(t, ed25519.Verify(e.PublicKey, e.Message, e.Signature))
	assert.False(t, Verify([]Entry{e}, nil))
	e.Key = &Key{} // not made by ParseKey
	assert.False(t, Verify(append(entries(5, 2), e), nil))
	// The all-zero signature under the identity key (s = 0, R = identity).
	z := Entry{PublicKey: A, Message: make([]byte, 32), Signature: append(bytes.Clone(A), make([]byte, 32)...)}
	assert.False(t, Verify([]Entry{z}, nil))
}

// order8 returns a point of order 8.
func order8(t *testing.T) *edwards25519.Point {
	for y := byte(0); ; y++ {
		b := make([]byte, 32)
		b[0] = 0x26 ^ y // search small encodings for a torsion point of order 8
		b[1] = y
		p, err := new(edwards25519.Point).SetBytes(b)
		if err != nil {
			continue
		}
		// [ℓ]p is the torsion component of p (ℓ ≡ 5 mod 8, so it keeps the order).
		lb := bytes.Clone(ell)
		lb[0]-- // ℓ − 1
		lm1, _ := edwards25519.NewScalar().SetCanonicalBytes(lb)
		tp := new(edwards25519.Point).ScalarMult(lm1, p)
		tp.Add(tp, p) // [ℓ]p
		q := new(edwards25519.Point).Add(tp, tp)
		q.Add(q, q)
		if q.Equal(edwards25519.NewIdentityPoint()) == 0 && SmallOrder(tp) {
			return tp
		}
		require.Less(t, y, byte(250))
	}
}

// TestVerifyTorsionDiffers documents the one direction the cofactored batch is
// looser: a key with an order-8 component (A' = A + T, built by its owner)
// signing so that [s]B − [k]A' − R = −[k]T ≠ 0. crypto/ed25519 rejects (k is
// not a multiple of 8), the batch accepts ([8] kills T).
func TestVerifyTorsionDiffers(t *testing.T) {
	a, A := secret(t)
	T := order8(t)
	Ap := new(edwards25519.Point).Add(A, T)
	require.False(t, SmallOrder(Ap))
	r, _ := edwards25519.NewScalar().SetUniformBytes(bytes.Repeat([]byte{9}, 64))
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	found := false
	for i := 0; i < 16 && !found; i++ {
		msg := []byte{byte(i)}
		k := scalarFromHash(R, Ap.Bytes(), msg)
		if k.Bytes()[0]%8 == 0 {
			continue
		}
		s := edwards25519.NewScalar().MultiplyAdd(k, a, r)
		e := Entry{PublicKey: Ap.Bytes(), Message: msg, Signature: append(bytes.Clone(R), s.Bytes()...)}
		assert.False(t, ed25519.Verify(e.PublicKey, msg, e.Signature))
		assert.True(t, Verify([]Entry{e}, nil), "cofactored equation accepts the torsion case")
		found = true
	}
	assert.True(t, found)
}

// TestVerifyMatchesStdlib: on random batches of valid and mutated signatures,
// the batch is true exactly when crypto/ed25519 accepts every entry (mutations
// do not produce torsion components with noticeable odds).
func TestVerifyMatchesStdlib(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	v := NewVerifier(nil)
	base := entries(32, 6)
	for round := range 200 {
		n := 1 + rng.IntN(len(base))
		es := make([]Entry, n)
		copy(es, base)
		for range rng.IntN(3) {
			i := rng.IntN(n)
			e := &es[i]
			switch rng.IntN(4) {
			case 0:
				e.Signature = bytes.Clone(e.Signature)
				e.Signature[rng.IntN(64)] ^= byte(1 << rng.IntN(8))
			case 1:
				e.PublicKey = bytes.Clone(e.PublicKey)
				e.PublicKey[rng.IntN(32)] ^= byte(1 << rng.IntN(8))
			case 2:
				e.Message = append(bytes.Clone(e.Message), byte(rng.Uint32()))
			case 3:
				e.Signature = bytes.Clone(e.Signature)
				for j := range e.Signature {
					e.Signature[j] = byte(rng.Uint32())
				}
			}
		}
		assert.Equal(t, stdlibAll(es), v.Verify(es), "round %d", round)
	}
}

// FuzzVerify: the batch never accepts what crypto/ed25519 rejects (the torsion
// case needs the owner of a mixed-order key, which the fuzzer cannot build),
// alone, next to a valid entry, or with its key cached; and the batch's point
// rules (ParseKey: canonical, on the curve, not small order) agree with
// filippo.io/edwards25519's decoding.
func FuzzVerify(f *testing.F) {
	good := entries(2, 2)
	f.Add(good[0].PublicKey, good[0].Message, good[0].Signature)
	bad := bytes.Clone(good[0].Signature)
	bad[0] ^= 1
	f.Add(good[0].PublicKey, good[0].Message, bad)
	f.Add(edwards25519.NewIdentityPoint().Bytes(), []byte{}, make([]byte, 64))
	f.Add(bytes.Repeat([]byte{0xff}, 32), []byte("x"), bytes.Repeat([]byte{0xff}, 64))
	f.Add(smallOrderEncodings[4][:], []byte("x"), append(smallOrderEncodings[6][:], make([]byte, 32)...))
	v := NewVerifier(nil)
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		e := Entry{PublicKey: pub, Message: msg, Signature: sig}
		stdlib := len(pub) == 32 && ed25519.Verify(pub, msg, sig)
		if v.Verify([]Entry{good[1], e}) && !stdlib {
			t.Fatalf("batch accepted what crypto/ed25519 rejects: pub %x sig %x", pub, sig)
		}
		if v.Verify([]Entry{e}) && !stdlib {
			t.Fatalf("batch of one accepted what crypto/ed25519 rejects: pub %x sig %x", pub, sig)
		}
		if k, err := ParseKey(pub); err == nil {
			e.Key = k
			if v.Verify([]Entry{e, good[0]}) && !stdlib {
				t.Fatalf("batch with a cached key accepted what crypto/ed25519 rejects: pub %x sig %x", pub, sig)
			}
		}
		for _, b := range [][]byte{pub, sig} {
			if len(b) >= 32 {
				checkPointRules(t, b[:32])
			}
		}
	})
}

// checkPointRules compares ParseKey's verdict on b with filippo's decoding.
func checkPointRules(t *testing.T, b []byte) {
	p, decodeErr := new(edwards25519.Point).SetBytes(b)
	_, err := ParseKey(b)
	canonical := decodeErr == nil && bytes.Equal(p.Bytes(), b)
	if decodeErr == nil && Canonical(b) != canonical {
		t.Fatalf("Canonical(%x) = %v, re-encoding says otherwise", b, Canonical(b))
	}
	var want error
	switch {
	case decodeErr == nil && !canonical:
		want = ErrNonCanonical
	case decodeErr == nil && SmallOrder(p):
		want = ErrSmallOrder
	case decodeErr != nil && Canonical(b):
		want = ErrNotOnCurve
	case decodeErr != nil:
		want = ErrNonCanonical // y ≥ p, checked before the curve equation
	}
	if !errors.Is(err, want) {
		t.Fatalf("ParseKey(%x) = %v, want %v", b, err, want)
	}
}
