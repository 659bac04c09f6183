package governor

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func decisionObj(epoch uint64, gate string) map[string]any {
	return map[string]any{"action": "enter", "epoch": epoch, "gate": gate, "intent_id": fmt.Sprintf("%s-%d", gate, epoch),
		"metrics_raw": map[string]any{"fee_mean": 0.25, "note": "größe"},
		"metrics_summary": map[string]any{"epoch_tx_count": 100 + epoch, "epoch_tx_volume": 5000, "epoch_treasury_inflow": 70, "block_reward": 12,
			"market_metrics": map[string]any{"storage": map[string]any{"utilization_ppm": 600000, "provider_margin_ppm": 180000}}},
		"params_patch": map[string]any{}, "reason": "test"}
}

// writeDecision writes a canonical decision file (and a signed sidecar when key is set).
func writeDecision(t testing.TB, dir string, obj map[string]any, key ed25519.PrivateKey) string {
	t.Helper()
	enc, err := Canonical(obj)
	require.NoError(t, err)
	epoch := obj["epoch"].(uint64)
	path := filepath.Join(dir, FileName(epoch))
	require.NoError(t, os.WriteFile(path, enc, 0o644))
	if key != nil {
		h, err := SnapshotHash(obj)
		require.NoError(t, err)
		sc, err := SignDigest(key, h)
		require.NoError(t, err)
		b, err := json.Marshal(sc)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path+SigSuffix, b, 0o644))
	}
	return path
}

func TestFileNames(t *testing.T) {
	assert.Equal(t, "epoch-00000000000000000007.json", FileName(7))
	assert.Equal(t, "epoch-18446744073709551615.json", FileName(^uint64(0)))
	e, err := ParseFileName("epoch-00000000000000000042.json")
	require.NoError(t, err)
	assert.Equal(t, uint64(42), e)
	for name, msg := range map[string]string{
		"epoch-7.json":                     "not zero-padded to 20 digits (want epoch-00000000000000000007.json)",
		"epoch-000000000000000000007.json": "not zero-padded",
		"epoch-0000000000000000000x.json":  "not a decimal number",
		"epoch-99999999999999999999.json":  "out of range",
		"epoch-00000000000000000007.txt":   "not a decision file name",
		"decision-7.json":                  "not a decision file name",
		"epoch-.json":                      "not zero-padded",
	} {
		_, err := ParseFileName(name)
		assert.ErrorContains(t, err, msg, name)
		assert.ErrorContains(t, err, name)
	}
}

func TestVerifyFileProblems(t *testing.T) {
	dir := t.TempDir()
	key := testKey("a")
	good := writeDecision(t, dir, decisionObj(1, "economics"), key)
	r := VerifyFile(good, VerifyOptions{})
	assert.False(t, r.Failed)
	assert.Empty(t, r.Problems)
	assert.True(t, r.Signed)
	assert.True(t, r.SignatureOK)
	assert.Equal(t, "economics", r.Gate)
	data, _ := os.ReadFile(good)
	h, _ := HashBytes(data)
	assert.Equal(t, h, r.Hash)

	kinds := func(r FileResult) []string {
		var out []string
		for _, p := range r.Problems {
			out = append(out, p.Kind)
		}
		return out
	}
	// Unsigned: a finding unless signatures are required.
	unsigned := writeDecision(t, dir, decisionObj(2, "economics"), nil)
	r = VerifyFile(unsigned, VerifyOptions{})
	assert.Equal(t, []string{ProblemSignatureMissing}, kinds(r))
	assert.False(t, r.Failed)
	r = VerifyFile(unsigned, VerifyOptions{RequireSignatures: true})
	assert.True(t, r.Failed)

	// Trusted keys.
	r = VerifyFile(good, VerifyOptions{TrustedKeys: []ed25519.PublicKey{testKey("b").Public().(ed25519.PublicKey)}})
	assert.Equal(t, []string{ProblemSignatureInvalid}, kinds(r))
	assert.Contains(t, r.Err().Error(), "not a trusted key")
	r = VerifyFile(good, VerifyOptions{TrustedKeys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}})
	assert.Empty(t, r.Problems)

	// Stored hash that lies, epoch that differs from the name.
	obj := decisionObj(3, "economics")
	obj["snapshot_hash"] = strings.Repeat("0", 64)
	lying := writeDecision(t, dir, obj, nil)
	r = VerifyFile(lying, VerifyOptions{})
	assert.Contains(t, kinds(r), ProblemHashMismatch)
	assert.Contains(t, r.Err().Error(), lying)
	obj = decisionObj(4, "economics")
	h4, _ := SnapshotHash(obj)
	obj["snapshot_hash"] = strings.ToUpper(h4)
	r = VerifyFile(writeDecision(t, dir, obj, nil), VerifyOptions{})
	assert.NotContains(t, kinds(r), ProblemHashMismatch, "upper-case stored hash still matches")

	moved := filepath.Join(dir, FileName(99))
	require.NoError(t, os.WriteFile(moved, data, 0o644))
	r = VerifyFile(moved, VerifyOptions{})
	assert.Contains(t, kinds(r), ProblemEpochMismatch)

	// Bad sidecars.
	sigCases := map[string]struct {
		body string
		kind string
		msg  string
	}{
		"bad json":     {`{"payload_hash_hex":`, ProblemSidecarInvalid, "invalid JSON"},
		"missing key":  {`{"payload_hash_hex":"` + h + `","pubkey_hex":"00"}`, ProblemSidecarInvalid, `"signature_hex"`},
		"bad pub hex":  {`{"payload_hash_hex":"` + h + `","pubkey_hex":"zz","signature_hex":"00"}`, ProblemSidecarInvalid, "pubkey_hex"},
		"bad sig hex":  {`{"payload_hash_hex":"` + h + `","pubkey_hex":"` + strings.Repeat("00", 32) + `","signature_hex":"0g"}`, ProblemSidecarInvalid, "signature_hex"},
		"bad payload":  {`{"payload_hash_hex":"` + strings.Repeat("1", 64) + `","pubkey_hex":"00","signature_hex":"00"}`, ProblemSignatureInvalid, "does not match the file's hash"},
		"bad sig":      {`{"payload_hash_hex":"` + h + `","pubkey_hex":"` + strings.Repeat("00", 32) + `","signature_hex":"` + strings.Repeat("00", 64) + `"}`, ProblemSignatureInvalid, "Ed25519 verification failed"},
		"payload junk": {`{"payload_hash_hex":"xyz","pubkey_hex":"00","signature_hex":"00"}`, ProblemSignatureInvalid, "does not match"},
	}
	for name, c := range sigCases {
		p := filepath.Join(t.TempDir(), FileName(1))
		require.NoError(t, os.WriteFile(p, data, 0o644))
		require.NoError(t, os.WriteFile(p+SigSuffix, []byte(c.body), 0o644))
		r := VerifyFile(p, VerifyOptions{})
		assert.Equal(t, []string{c.kind}, kinds(r), name)
		assert.Contains(t, r.Err().Error(), c.msg, name)
		assert.Contains(t, r.Err().Error(), p+SigSuffix, name)
		assert.True(t, r.Failed, name)
	}
	// A signature from another file's hash does not verify this one.
	other := writeDecision(t, t.TempDir(), decisionObj(1, "naming"), key)
	sig, _ := os.ReadFile(other + SigSuffix)
	p := filepath.Join(t.TempDir(), FileName(1))
	require.NoError(t, os.WriteFile(p, data, 0o644))
	require.NoError(t, os.WriteFile(p+SigSuffix, sig, 0o644))
	assert.Equal(t, []string{ProblemSignatureInvalid}, kinds(VerifyFile(p, VerifyOptions{})))
}

func TestVerifyFileBadInput(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		body string
		kind string
		msg  string
	}{
		"dup keys":        {`{"a":1,"a":1}`, ProblemInvalidJSON, "duplicate object key"},
		"trailing":        {protocolVector + "x", ProblemInvalidJSON, "trailing data"},
		"truncated":       {protocolVector[:60], ProblemInvalidJSON, "invalid JSON"},
		"empty":           {``, ProblemInvalidJSON, "end of input"},
		"not object":      {`[]`, ProblemInvalidDecision, "not a JSON object"},
		"missing key":     {`{"action":"enter"}`, ProblemInvalidDecision, `"epoch": missing`},
		"epoch type":      {strings.Replace(protocolVector, `"epoch":7`, `"epoch":"7"`, 1), ProblemInvalidDecision, `"epoch": want an integer`},
		"epoch negative":  {strings.Replace(protocolVector, `"epoch":7`, `"epoch":-7`, 1), ProblemInvalidDecision, "non-negative"},
		"epoch fraction":  {strings.Replace(protocolVector, `"epoch":7`, `"epoch":7.0`, 1), ProblemInvalidDecision, "non-negative integer"},
		"gate type":       {strings.Replace(protocolVector, `"gate":"operational"`, `"gate":1`, 1), ProblemInvalidDecision, `"gate"`},
		"bad stored hash": {strings.Replace(protocolVector, `{`, `{"snapshot_hash":"xyz",`, 1), ProblemInvalidDecision, `"snapshot_hash"`},
	}
	for name, c := range cases {
		p := filepath.Join(dir, FileName(7))
		require.NoError(t, os.WriteFile(p, []byte(c.body), 0o644))
		r := VerifyFile(p, VerifyOptions{})
		require.NotEmpty(t, r.Problems, name)
		assert.Equal(t, c.kind, r.Problems[0].Kind, name)
		assert.Contains(t, r.Err().Error(), c.msg, name)
		assert.Contains(t, r.Err().Error(), p, name)
		assert.True(t, r.Failed)
	}
	// Unreadable: a dangling symlink.
	p := filepath.Join(dir, FileName(8))
	require.NoError(t, os.Symlink(filepath.Join(dir, "nowhere"), p))
	r := VerifyFile(p, VerifyOptions{})
	assert.Equal(t, ProblemUnreadable, r.Problems[0].Kind)
	_, err := ReadDecisionFile(p)
	assert.ErrorContains(t, err, p)
}

func TestVerifyDir(t *testing.T) {
	dir := t.TempDir()
	key := testKey("a")
	const n = 600 // more than one ReadDir batch (512)
	for e := uint64(0); e < n; e++ {
		var k ed25519.PrivateKey
		if e%2 == 0 {
			k = key
		}
		writeDecision(t, dir, decisionObj(e, "economics"), k)
	}
	// One signature in the middle of a batch signed by another key over another file.
	forged := writeDecision(t, t.TempDir(), decisionObj(1, "naming"), testKey("mallory"))
	var sc Sidecar
	raw, err := os.ReadFile(forged + SigSuffix)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &sc))
	h100, err := HashBytes(mustRead(t, filepath.Join(dir, FileName(100))))
	require.NoError(t, err)
	sc.PayloadHashHex = h100 // right payload, wrong signature
	raw, _ = json.Marshal(sc)
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName(100))+SigSuffix, raw, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "epoch-7.json"), []byte(protocolVector), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName(5000)), []byte(`{"a":1,"a":2}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName(6000)+SigSuffix), []byte(`{}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".epoch-tmp.json"), []byte(`x`), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README"), []byte(`x`), 0o644))

	var mu sync.Mutex
	var results []FileResult
	sum, err := VerifyDir(context.Background(), dir, VerifyOptions{Concurrency: 3}, func(r FileResult) error {
		mu.Lock()
		defer mu.Unlock()
		results = append(results, r)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, n+4, sum.Files)
	assert.Equal(t, n-1, sum.OK)
	assert.Equal(t, 5, sum.Failed)
	assert.Equal(t, n/2, sum.Signed)
	assert.Equal(t, n/2+1, sum.Unsigned) // epoch-7.json hashed but unsigned
	var failed []string
	for _, r := range results {
		if r.Failed {
			failed = append(failed, r.Name+" "+r.Problems[0].Kind)
		}
	}
	sort.Strings(failed)
	assert.Equal(t, []string{"README bad-name", "epoch-00000000000000000100.json signature-invalid", "epoch-00000000000000005000.json invalid-json",
		"epoch-00000000000000006000.json.sig orphan-sidecar", "epoch-7.json bad-name"}, failed)

	// Batched and one-by-one verification agree file by file.
	byName := func(o VerifyOptions) map[string]bool {
		out := map[string]bool{}
		_, err := VerifyDir(context.Background(), dir, o, func(r FileResult) error { out[r.Name] = r.Failed; return nil })
		require.NoError(t, err)
		return out
	}
	assert.Equal(t, byName(VerifyOptions{NoBatch: true}), byName(VerifyOptions{}))

	// Signatures required: every unsigned file fails.
	sum, err = VerifyDir(context.Background(), dir, VerifyOptions{RequireSignatures: true}, nil)
	require.NoError(t, err)
	assert.Equal(t, n/2+5, sum.Failed)

	// fn's error stops the walk and is returned.
	stop := fmt.Errorf("stop")
	_, err = VerifyDir(context.Background(), dir, VerifyOptions{}, func(FileResult) error { return stop })
	assert.ErrorIs(t, err, stop)
	// A cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = VerifyDir(ctx, dir, VerifyOptions{}, nil)
	assert.ErrorIs(t, err, context.Canceled)
	// A missing directory.
	_, err = VerifyDir(context.Background(), filepath.Join(dir, "nope"), VerifyOptions{}, nil)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestDecisionEconomics(t *testing.T) {
	d, err := DecisionFromValue(mustParse(t, decisionObj(9, "ad_targeting_contextual")))
	require.NoError(t, err)
	assert.Equal(t, "ad_contextual", d.Gate, "reference gate names normalised")
	s, err := d.Economics()
	require.NoError(t, err)
	assert.Equal(t, 109.0, s.EpochTxCount)
	assert.Equal(t, MarketMetrics{UtilizationPPM: 600000, ProviderMarginPPM: 180000}, s.MarketMetrics["storage"])
	obj := decisionObj(9, "economics")
	obj["metrics_summary"].(map[string]any)["block_reward"] = "12"
	d, err = DecisionFromValue(mustParse(t, obj))
	require.NoError(t, err)
	_, err = d.Economics()
	assert.ErrorContains(t, err, `"metrics_summary.block_reward": want a number, got a string`)
}

// sidecarVerify exercises Verify on arbitrary sidecars (never panics).
func sidecarVerify(data []byte) error {
	sc, err := ParseSidecar(data)
	if err != nil {
		return err
	}
	return sc.Verify(sc.PayloadHashHex)
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

func mustParse(t *testing.T, v any) any {
	b, err := Canonical(v)
	require.NoError(t, err)
	p, err := Parse(b)
	require.NoError(t, err)
	return p
}

// FuzzDecisionFile: the reader never panics, and a file that parses as a
// decision hashes the same through every path.
func FuzzDecisionFile(f *testing.F) {
	f.Add([]byte(protocolVector), []byte(`{}`))
	f.Add([]byte(`{"a":1,"a":2}`), []byte(``))
	f.Add([]byte(strings.Replace(protocolVector, `{`, `{"snapshot_hash":"`+strings.Repeat("a", 64)+`",`, 1)), []byte(`{"payload_hash_hex":"x","pubkey_hex":"y","signature_hex":"z"}`))
	dir := f.TempDir() // one directory, files overwritten: the fuzzer runs workers in separate processes
	f.Fuzz(func(t *testing.T, file, sidecar []byte) {
		p := filepath.Join(dir, FileName(7))
		if err := os.WriteFile(p, file, 0o644); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(p + SigSuffix)
		if len(sidecar) > 0 {
			if err := os.WriteFile(p+SigSuffix, sidecar, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ParseSidecar(sidecar); err == nil {
			_ = sidecarVerify(sidecar)
		}
		r := VerifyFile(p, VerifyOptions{})
		d, err := ParseDecision(file)
		if err != nil {
			if !r.Failed {
				t.Fatalf("unparseable decision not failed: %+v", r)
			}
			return
		}
		h, err := HashBytes(file)
		if err != nil || h != r.Hash {
			t.Fatalf("hash %s vs %s (%v)", h, r.Hash, err)
		}
		h2, _ := d.Hash()
		if h2 != h {
			t.Fatalf("decision hash %s vs %s", h2, h)
		}
		if r.Failed && d.Epoch == 7 && d.StoredHash == "" && len(sidecar) == 0 {
			t.Fatalf("valid unsigned decision failed: %+v", r.Problems)
		}
	})
}
