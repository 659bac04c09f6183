package energy_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"lukechampine.com/blake3"

	"github.com/theblock/tbops/energy"
)

func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, 32)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

func TestMessageLayout(t *testing.T) {
	r := energy.Reading{ProviderID: "provider_usa_001", Meter: "meter_001", TotalKWh: 1500000, Timestamp: 1700000000, Nonce: 12345}
	want := "provider_usa_001" + "meter_001" +
		"\x60\xe3\x16\x00\x00\x00\x00\x00" + // 1500000 LE
		"\x00\xf1\x53\x65\x00\x00\x00\x00" + // 1700000000 LE
		"\x39\x30\x00\x00\x00\x00\x00\x00" // 12345 LE
	assert.Equal(t, []byte(want), r.Message())
}

func TestSignVerifySchemes(t *testing.T) {
	key := testKey(1)
	pub := key.Public().(ed25519.PublicKey)
	for _, scheme := range []string{"", energy.SchemeEd25519, energy.SchemeEd25519Blake3} {
		t.Run(scheme, func(t *testing.T) {
			r := energy.Reading{ProviderID: "p1", Meter: "m1", TotalKWh: 42, Timestamp: 1700000000, Nonce: 7, Scheme: scheme}
			signed, err := energy.Sign(r, key)
			require.NoError(t, err)
			require.NoError(t, energy.Verify(signed, pub))
			sig, _ := base64.StdEncoding.DecodeString(signed.Signature)
			// independent check of what is signed
			msg := r.Message()
			if scheme == energy.SchemeEd25519Blake3 {
				d := blake3.Sum256(msg)
				msg = d[:]
			}
			assert.True(t, ed25519.Verify(pub, msg, sig))
			// hex signatures verify too
			signed.Signature = hex.EncodeToString(sig)
			require.NoError(t, energy.Verify(signed, pub))
			// a changed field fails with verification_failed
			signed.TotalKWh++
			err = energy.Verify(signed, pub)
			assert.ErrorIs(t, err, energy.ErrVerificationFailed)
		})
	}
	// signing under one scheme and verifying under the other fails
	r, _ := energy.Sign(energy.Reading{ProviderID: "p1", Meter: "m1", Scheme: energy.SchemeEd25519Blake3}, key)
	r.Scheme = energy.SchemeEd25519
	assert.ErrorIs(t, energy.Verify(r, pub), energy.ErrVerificationFailed)
}

func TestBadInputs(t *testing.T) {
	key := testKey(2)
	pub := key.Public().(ed25519.PublicKey)
	good, _ := energy.Sign(energy.Reading{ProviderID: "p", Meter: "m", Timestamp: 1}, key)
	cases := map[string]struct {
		mut    func(*energy.Reading)
		reason error
	}{
		"bad base64":      {func(r *energy.Reading) { r.Signature = "!!!notbase64" }, energy.ErrInvalidFormat},
		"short signature": {func(r *energy.Reading) { r.Signature = base64.StdEncoding.EncodeToString(make([]byte, 63)) }, energy.ErrInvalidFormat},
		"bad hex":         {func(r *energy.Reading) { r.Signature = "zz" + hex.EncodeToString(make([]byte, 63)) }, energy.ErrInvalidFormat},
		"empty provider":  {func(r *energy.Reading) { r.ProviderID = "" }, energy.ErrInvalidFormat},
		"unknown scheme":  {func(r *energy.Reading) { r.Scheme = "rsa" }, energy.ErrSchemeUnsupported},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := good
			c.mut(&r)
			err := energy.Verify(r, pub)
			require.Error(t, err)
			assert.ErrorIs(t, err, c.reason, err.Error())
		})
	}
	assert.ErrorIs(t, energy.Verify(good, pub[:31]), energy.ErrInvalidFormat)

	_, err := energy.DecodePublicKey(hex.EncodeToString(make([]byte, 31)))
	assert.ErrorIs(t, err, energy.ErrInvalidFormat)
	assert.Contains(t, err.Error(), "want 32")
	// the identity point is a small-order (weak) key
	id := make([]byte, 32)
	id[0] = 1
	_, err = energy.DecodePublicKey(hex.EncodeToString(id))
	assert.ErrorContains(t, err, "small-order")
	_, err = energy.DecodePrivateKey("abc")
	assert.Error(t, err)
}

func TestParseReading(t *testing.T) {
	r, err := energy.ParseReading([]byte(`{"provider_id":"p","meter":"m","total_kwh":5,"timestamp":10,"nonce":1,"signature":"` +
		base64.StdEncoding.EncodeToString(make([]byte, 64)) + `"}`))
	require.NoError(t, err)
	assert.Equal(t, uint64(5), r.TotalKWh)
	// reference node's names
	r, err = energy.ParseReading([]byte(`{"provider_id":"p","meter_address":"m","kwh_reading":5,"timestamp":10,"nonce":1,"signature":"` +
		hex.EncodeToString(make([]byte, 64)) + `","scheme":"ed25519-blake3"}`))
	require.NoError(t, err)
	assert.Equal(t, "m", r.Meter)
	for name, body := range map[string]string{
		"negative":  `{"provider_id":"p","meter":"m","total_kwh":-5,"timestamp":10,"nonce":1,"signature":"x"}`,
		"fraction":  `{"provider_id":"p","meter":"m","total_kwh":5.5,"timestamp":10,"nonce":1,"signature":"x"}`,
		"unknown":   `{"provider_id":"p","meter":"m","total_kwh":5,"timestamp":10,"nonce":1,"signature":"x","extra":1}`,
		"missing":   `{"provider_id":"p","meter":"m"}`,
		"conflict":  `{"provider_id":"p","meter":"m","meter_address":"n","total_kwh":5,"timestamp":10,"nonce":1,"signature":"x"}`,
		"not json":  `{"provider_id":`,
		"trailing":  `{"provider_id":"p"} {}`,
		"overflow":  `{"provider_id":"p","meter":"m","total_kwh":18446744073709551616,"timestamp":10,"nonce":1,"signature":"x"}`,
		"array":     `[]`,
		"empty sig": `{"provider_id":"p","meter":"m","total_kwh":5,"timestamp":10,"nonce":1,"signature":""}`,
	} {
		_, err := energy.ParseReading([]byte(body))
		require.Error(t, err, name)
		assert.ErrorIs(t, err, energy.ErrInvalidFormat, name)
	}
	_, err = energy.ParseReading([]byte(`{"provider_id":"p","meter":"m","total_kwh":-5,"timestamp":10,"nonce":1,"signature":"x"}`))
	assert.Contains(t, err.Error(), "total_kwh")
}

func TestCheckerSkewAndNonce(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	key := testKey(3)
	reg := energy.NewKeyRegistry()
	require.NoError(t, reg.Add("p", "", base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))))
	c := energy.NewChecker(reg)
	c.Now = func() time.Time { return now }
	sign := func(ts int64, nonce uint64) energy.Reading {
		r, err := energy.Sign(energy.Reading{ProviderID: "p", Meter: "m", TotalKWh: 1, Timestamp: uint64(ts), Nonce: nonce}, key)
		require.NoError(t, err)
		return r
	}
	require.NoError(t, c.Check(sign(now.Unix(), 1)))
	err := c.Check(sign(now.Unix(), 1))
	assert.ErrorIs(t, err, energy.ErrNonceReplay)
	assert.Equal(t, -33007, energy.ErrorObject(err).Code)
	err = c.Check(sign(now.Unix()+301, 2))
	assert.ErrorIs(t, err, energy.ErrTimestampSkew)
	assert.Contains(t, err.Error(), "in the future")
	assert.Equal(t, -33008, energy.ErrorObject(err).Code)
	err = c.Check(sign(now.Unix()-301, 2))
	assert.ErrorContains(t, err, "in the past")
	assert.NoError(t, c.Check(sign(now.Unix()-300, 2)))
	// a forged reading does not burn the nonce
	forged := sign(now.Unix(), 5)
	forged.TotalKWh = 99
	assert.ErrorIs(t, c.Check(forged), energy.ErrVerificationFailed)
	assert.NoError(t, c.Check(sign(now.Unix(), 5)))
	// unknown provider
	r := sign(now.Unix(), 9)
	r.ProviderID = "q"
	err = c.Check(r)
	assert.ErrorIs(t, err, energy.ErrKeyNotFound)
	obj := energy.ErrorObject(err)
	assert.Equal(t, -33001, obj.Code)
	assert.Equal(t, "key_not_found", obj.Reason())
	// scheme mismatch against a key registered for blake3
	require.NoError(t, reg.Add("b", energy.SchemeEd25519Blake3, hex.EncodeToString(key.Public().(ed25519.PublicKey))))
	rb, _ := energy.Sign(energy.Reading{ProviderID: "b", Meter: "m", Timestamp: uint64(now.Unix()), Nonce: 1}, key)
	assert.ErrorIs(t, c.Check(rb), energy.ErrSchemeUnsupported)
	// far-future timestamps do not overflow
	assert.ErrorIs(t, c.Check(sign(-1, 10)), energy.ErrTimestampSkew)
}

func TestDecodePrivateKeyForms(t *testing.T) {
	key := testKey(4)
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(key.Seed()), hex.EncodeToString(key.Seed()),
		base64.StdEncoding.EncodeToString(key), hex.EncodeToString(key),
	} {
		k, err := energy.DecodePrivateKey(s + "\n")
		require.NoError(t, err)
		assert.Equal(t, key, k)
	}
	bad := append([]byte(nil), key...)
	bad[40] ^= 1
	_, err := energy.DecodePrivateKey(hex.EncodeToString(bad))
	assert.ErrorContains(t, err, "does not match")
}

// batchSet signs n readings with nKeys keys.
func batchSet(t testing.TB, n, nKeys int) (*energy.KeyRegistry, []energy.Reading) {
	reg := energy.NewKeyRegistry()
	keys := make([]ed25519.PrivateKey, nKeys)
	for i := range keys {
		keys[i] = testKey(byte(i * 3))
		require.NoError(t, reg.Add(fmt.Sprintf("p%d", i), "", hex.EncodeToString(keys[i].Public().(ed25519.PublicKey))))
	}
	rs := make([]energy.Reading, n)
	for i := range rs {
		k := i % nKeys
		scheme := ""
		if i%2 == 1 {
			scheme = energy.SchemeEd25519Blake3
		}
		r, err := energy.Sign(energy.Reading{ProviderID: fmt.Sprintf("p%d", k), Meter: "m", TotalKWh: uint64(i), Timestamp: 1, Nonce: uint64(i), Scheme: scheme}, keys[k])
		require.NoError(t, err)
		rs[i] = r
	}
	return reg, rs
}

func TestBatchVerify(t *testing.T) {
	reg, rs := batchSet(t, 40, 5)
	errs := energy.VerifyBatch(reg, rs)
	for i, err := range errs {
		require.NoError(t, err, i)
	}
	// corrupt a few: the batch names exactly those
	rs[3].TotalKWh++
	rs[17].Signature = rs[18].Signature
	rs[25].ProviderID = "nobody"
	errs = energy.VerifyBatch(reg, rs)
	for i, err := range errs {
		switch i {
		case 3, 17:
			assert.ErrorIs(t, err, energy.ErrVerificationFailed, i)
		case 25:
			assert.ErrorIs(t, err, energy.ErrKeyNotFound)
		default:
			assert.NoError(t, err, i)
		}
	}
}

// TestBatchAgreesWithSingle: random mutations never make batch and single
// verification disagree (the only disagreement possible needs torsion
// components, which random bit flips do not produce with noticeable odds).
func TestBatchAgreesWithSingle(t *testing.T) {
	reg, rs := batchSet(t, 16, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		cp := append([]energy.Reading(nil), rs...)
		for j := 0; j < 2; j++ {
			i := rng.IntN(len(cp))
			sig, _ := base64.StdEncoding.DecodeString(cp[i].Signature)
			sig[rng.IntN(64)] ^= byte(1 << rng.IntN(8))
			cp[i].Signature = base64.StdEncoding.EncodeToString(sig)
		}
		errs := energy.VerifyBatch(reg, cp)
		for i, r := range cp {
			single := energy.VerifyWith(reg, r)
			assert.Equal(t, single == nil, errs[i] == nil, "round %d reading %d: single %v batch %v", round, i, single, errs[i])
		}
	}
}

// TestBatchNonCanonicalS: s ≥ ℓ is rejected by both.
func TestBatchNonCanonicalS(t *testing.T) {
	reg, rs := batchSet(t, 4, 1)
	sig, _ := base64.StdEncoding.DecodeString(rs[0].Signature)
	// s + ℓ (little-endian add) is a non-canonical encoding of the same scalar
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	carry := 0
	for i := 0; i < 32; i++ {
		v := int(sig[32+i]) + int(l[i]) + carry
		sig[32+i], carry = byte(v), v>>8
	}
	require.Zero(t, carry) // s < ℓ < 2^253, so s+ℓ fits in 32 bytes
	rs[0].Signature = base64.StdEncoding.EncodeToString(sig)
	errs := energy.VerifyBatch(reg, rs)
	assert.ErrorIs(t, errs[0], energy.ErrVerificationFailed)
	assert.ErrorIs(t, energy.VerifyWith(reg, rs[0]), energy.ErrVerificationFailed)
	for _, err := range errs[1:] {
		assert.NoError(t, err)
	}
}
