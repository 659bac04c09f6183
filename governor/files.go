package governor

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Decision file naming: <data_dir>/governor/decisions/epoch-{E}.json with E
// zero-padded to 20 digits, and an optional sidecar <same>.sig.
const (
	DecisionsSubdir = "governor/decisions"
	filePrefix      = "epoch-"
	fileSuffix      = ".json"
	SigSuffix       = ".sig"
	EpochDigits     = 20
)

// MaxFileBytes caps the size of a decision file or sidecar that is read; a
// larger one is reported as too large rather than read into memory.
const MaxFileBytes = 16 << 20

// FileName is the decision file name for an epoch: epoch-00000000000000000007.json.
func FileName(epoch uint64) string {
	return fmt.Sprintf("%s%0*d%s", filePrefix, EpochDigits, epoch, fileSuffix)
}

// ParseFileName returns the epoch of a decision file name, or an error saying
// what is wrong with the name.
func ParseFileName(name string) (uint64, error) {
	if !strings.HasPrefix(name, filePrefix) || !strings.HasSuffix(name, fileSuffix) {
		return 0, fmt.Errorf("%s: not a decision file name (want epoch-{E}.json, E zero-padded to %d digits)", name, EpochDigits)
	}
	digits := strings.TrimSuffix(strings.TrimPrefix(name, filePrefix), fileSuffix)
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s: epoch %q is not a decimal number", name, digits)
		}
	}
	if len(digits) != EpochDigits {
		return 0, fmt.Errorf("%s: epoch %q is not zero-padded to %d digits (want %s)", name, digits, EpochDigits, paddedHint(digits))
	}
	e, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: epoch %s is out of range", name, digits)
	}
	return e, nil
}

func paddedHint(digits string) string {
	e, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || digits == "" {
		return "epoch-" + strings.Repeat("0", EpochDigits) + ".json"
	}
	return FileName(e)
}

// Problem kinds of a decision file.
const (
	ProblemBadName          = "bad-name"          // not epoch-{20 digits}.json
	ProblemUnreadable       = "unreadable"        // could not be read (permissions, too large, I/O)
	ProblemInvalidJSON      = "invalid-json"      // not strictly valid JSON
	ProblemInvalidDecision  = "invalid-decision"  // valid JSON, not a decision object
	ProblemEpochMismatch    = "epoch-mismatch"    // epoch key differs from the file name
	ProblemHashMismatch     = "hash-mismatch"     // stored snapshot_hash differs from the computed hash
	ProblemSignatureMissing = "signature-missing" // no .sig sidecar
	ProblemSidecarInvalid   = "sidecar-invalid"   // .sig is unreadable or malformed (bad JSON, bad hex)
	ProblemSignatureInvalid = "signature-invalid" // payload_hash_hex differs, untrusted key, or Ed25519 fails
	ProblemOrphanSidecar    = "orphan-sidecar"    // .sig without its decision file
)

// Problem is one thing wrong with a decision file.
type Problem struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// FileResult is what verifying one directory entry found.
type FileResult struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Epoch is the file's epoch, from its name or else its epoch key; when
	// neither gives one (a misnamed, unreadable file, an orphan sidecar) it is
	// 0 and written as null.
	Epoch      uint64 `json:"epoch"`
	epochKnown bool
	// Hash is the computed snapshot hash; "" when the file could not be parsed.
	Hash       string `json:"hash,omitempty"`
	StoredHash string `json:"stored_hash,omitempty"`
	Gate       string `json:"gate,omitempty"`
	Action     string `json:"action,omitempty"`
	IntentID   string `json:"intent_id,omitempty"`
	// Signed says a .sig sidecar exists; SignatureOK that it verified.
	Signed      bool      `json:"signed"`
	SignatureOK bool      `json:"signature_ok"`
	Signer      string    `json:"signer,omitempty"`
	Problems    []Problem `json:"problems,omitempty"`
	// Failed says some problem counts as a failure under the options used
	// (signature-missing is a failure only with RequireSignatures).
	Failed bool `json:"failed"`
}

// MarshalJSON writes an epoch neither the name nor the content gave as null.
func (r FileResult) MarshalJSON() ([]byte, error) {
	type plain FileResult
	var epoch *uint64
	if r.epochKnown {
		epoch = &r.Epoch
	}
	return json.Marshal(struct {
		plain
		Epoch *uint64 `json:"epoch"`
	}{plain(r), epoch})
}

// Err returns the file's problems as one error naming the file, or nil.
func (r FileResult) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	parts := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		parts[i] = p.Kind + ": " + p.Detail
	}
	return fmt.Errorf("%s: %s", r.Path, strings.Join(parts, "; "))
}

func (r *FileResult) add(kind, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

// VerifyOptions configures [VerifyFile] and [VerifyDir].
type VerifyOptions struct {
	// RequireSignatures makes a missing .sig sidecar a failure; by default it is
	// reported as a signature-missing problem that does not fail the file.
	RequireSignatures bool
	// TrustedKeys, when not empty, are the only signer keys accepted.
	TrustedKeys []ed25519.PublicKey
	// Concurrency is how many files are read and hashed at once (default
	// GOMAXPROCS, at most 16).
	Concurrency int
	// NoBatch makes VerifyDir check every signature on its own with
	// crypto/ed25519 instead of in batches (see batchVerify: a batch is
	// re-checked signature by signature whenever it fails).
	NoBatch bool
}

// batchSize is how many signatures a VerifyDir worker checks at once.
const batchSize = 64

// Sidecar is a decision file's .sig sidecar.
type Sidecar struct {
	PayloadHashHex string `json:"payload_hash_hex"`
	PubkeyHex      string `json:"pubkey_hex"`
	SignatureHex   string `json:"signature_hex"`
}

// ParseSidecar parses a .sig sidecar strictly: a JSON object with the three
// hex string keys (extra keys are ignored).
func ParseSidecar(data []byte) (Sidecar, error) {
	v, err := Parse(data)
	if err != nil {
		return Sidecar{}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Sidecar{}, errors.New("sidecar is not a JSON object")
	}
	var s Sidecar
	for k, dst := range map[string]*string{"payload_hash_hex": &s.PayloadHashHex, "pubkey_hex": &s.PubkeyHex, "signature_hex": &s.SignatureHex} {
		x, ok := obj[k].(string)
		if !ok {
			return Sidecar{}, fmt.Errorf("sidecar key %q: missing or not a string", k)
		}
		*dst = x
	}
	return s, nil
}

// ErrBadSignature is a sidecar that does not vouch for the file.
var ErrBadSignature = errors.New("bad signature")

// Verify checks the sidecar against a file's computed hash: payload_hash_hex
// must equal it and signature_hex must be an Ed25519 signature by pubkey_hex
// over the 32 raw digest bytes. Malformed hex is reported by field.
func (s Sidecar) Verify(hash string) error {
	c, err := s.check(hash)
	if err != nil {
		return err
	}
	if !c.verify() {
		return fmt.Errorf("%w: Ed25519 verification failed for key %s", ErrBadSignature, s.PubkeyHex)
	}
	return nil
}

// check decodes the sidecar for a file whose hash is hash: everything but the
// Ed25519 equation.
func (s Sidecar) check(hash string) (*sigCheck, error) {
	digest, err := ParseDigest(hash)
	if err != nil {
		return nil, err
	}
	if !SameHash(s.PayloadHashHex, hash) {
		return nil, fmt.Errorf("%w: payload_hash_hex %s does not match the file's hash %s", ErrBadSignature, s.PayloadHashHex, hash)
	}
	pub, err := hex.DecodeString(s.PubkeyHex)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("sidecar pubkey_hex: want %d bytes of hex, got %q", ed25519.PublicKeySize, s.PubkeyHex)
	}
	sig, err := hex.DecodeString(s.SignatureHex)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("sidecar signature_hex: want %d bytes of hex, got %q", ed25519.SignatureSize, s.SignatureHex)
	}
	return &sigCheck{pub: pub, digest: digest[:], sig: sig}, nil
}

// SignDigest makes a sidecar for a file whose snapshot hash is hash.
func SignDigest(priv ed25519.PrivateKey, hash string) (Sidecar, error) {
	d, err := ParseDigest(hash)
	if err != nil {
		return Sidecar{}, err
	}
	return Sidecar{PayloadHashHex: d.Hex(), PubkeyHex: hex.EncodeToString(priv.Public().(ed25519.PublicKey)),
		SignatureHex: hex.EncodeToString(ed25519.Sign(priv, d[:]))}, nil
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileBytes)
	}
	return data, nil
}

// ReadDecisionFile reads and parses one decision file strictly; errors name the file.
func ReadDecisionFile(path string) (Decision, error) {
	data, err := readCapped(path)
	if err != nil {
		return Decision{}, fmt.Errorf("%s: %w", path, err)
	}
	d, err := ParseDecision(data)
	if err != nil {
		return Decision{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// VerifyFile reads one decision file and its sidecar and checks the name, the
// JSON, the decision keys, the stored hash and the signature. It never fails:
// everything wrong is a Problem in the result.
func VerifyFile(path string, opts VerifyOptions) FileResult {
	r, c := checkFile(path, opts)
	if c != nil {
		finishSig(&r, c, c.verify(), opts)
	}
	return finish(r, opts)
}

// checkFile does everything but the Ed25519 check, which it returns (nil when
// there is no well-formed sidecar to check).
func checkFile(path string, opts VerifyOptions) (FileResult, *sigCheck) {
	r := FileResult{Name: filepath.Base(path), Path: path}
	epoch, nameErr := ParseFileName(r.Name)
	r.Epoch, r.epochKnown = epoch, nameErr == nil
	if nameErr != nil {
		r.add(ProblemBadName, "%v", nameErr)
	}
	data, err := readCapped(path)
	if err != nil {
		r.add(ProblemUnreadable, "%v", err)
		return r, nil
	}
	v, err := Parse(data)
	if err != nil {
		r.add(ProblemInvalidJSON, "%v", err)
		return r, nil
	}
	d, err := DecisionFromValue(v)
	if err != nil {
		r.add(ProblemInvalidDecision, "%v", err)
		return r, nil
	}
	r.Gate, r.Action, r.IntentID, r.StoredHash = d.Gate, d.Action, d.IntentID, d.StoredHash
	if nameErr == nil && d.Epoch != epoch {
		r.add(ProblemEpochMismatch, "file name says epoch %d, the epoch key says %d", epoch, d.Epoch)
	}
	if nameErr != nil {
		r.Epoch, r.epochKnown = d.Epoch, true
	}
	h, err := d.Hash()
	if err != nil {
		r.add(ProblemInvalidDecision, "%v", err)
		return r, nil
	}
	r.Hash = h
	if r.StoredHash != "" && !SameHash(r.StoredHash, h) {
		r.add(ProblemHashMismatch, "snapshot_hash in the file is %s, the file hashes to %s", r.StoredHash, h)
	}
	return r, prepareSidecar(&r)
}

// prepareSidecar reads and checks the sidecar's form and payload hash; the
// signature itself is left to the caller (one by one or batched).
func prepareSidecar(r *FileResult) *sigCheck {
	sigPath := r.Path + SigSuffix
	data, err := readCapped(sigPath)
	if errors.Is(err, fs.ErrNotExist) {
		r.add(ProblemSignatureMissing, "no sidecar %s", filepath.Base(sigPath))
		return nil
	}
	r.Signed = true
	if err != nil {
		r.add(ProblemSidecarInvalid, "%s: %v", sigPath, err)
		return nil
	}
	sc, err := ParseSidecar(data)
	if err != nil {
		r.add(ProblemSidecarInvalid, "%s: %v", sigPath, err)
		return nil
	}
	r.Signer = sc.PubkeyHex
	c, err := sc.check(r.Hash)
	if err != nil {
		kind := ProblemSidecarInvalid
		if errors.Is(err, ErrBadSignature) {
			kind = ProblemSignatureInvalid
		}
		r.add(kind, "%s: %v", sigPath, err)
		return nil
	}
	return c
}

// finishSig records the outcome of the Ed25519 check and the trusted-key rule.
func finishSig(r *FileResult, c *sigCheck, ok bool, opts VerifyOptions) {
	sigPath := r.Path + SigSuffix
	if !ok {
		r.add(ProblemSignatureInvalid, "%s: %v: Ed25519 verification failed for key %s", sigPath, ErrBadSignature, r.Signer)
		return
	}
	if len(opts.TrustedKeys) > 0 {
		trusted := false
		for _, k := range opts.TrustedKeys {
			if ed25519.PublicKey(c.pub).Equal(k) {
				trusted = true
			}
		}
		if !trusted {
			r.add(ProblemSignatureInvalid, "%s: signer %s is not a trusted key", sigPath, r.Signer)
			return
		}
	}
	r.SignatureOK = true
}

func finish(r FileResult, opts VerifyOptions) FileResult {
	for _, p := range r.Problems {
		if p.Kind != ProblemSignatureMissing || opts.RequireSignatures {
			r.Failed = true
		}
	}
	return r
}

// VerifySummary counts what [VerifyDir] saw.
type VerifySummary struct {
	Files    int `json:"files"`    // decision files (and misnamed entries) checked
	OK       int `json:"ok"`       // files without a failure
	Failed   int `json:"failed"`   // files (and orphan sidecars) with a failure
	Signed   int `json:"signed"`   // files with a sidecar
	Unsigned int `json:"unsigned"` // files without one
}

// VerifyDir verifies every entry of a decisions directory and calls fn once per
// result, from one goroutine at a time, in completion order (not sorted). It
// streams: directory entries are read in batches and at most
// opts.Concurrency files are in memory at once, so a directory of any size
// works. Decision files and misnamed entries each give a result, as does a .sig
// sidecar whose decision file is missing; names starting with "." (temporary
// files) and subdirectories are skipped. One bad file never stops the others.
// An error is returned only when the directory cannot be read, ctx ends or fn
// returns one.
func VerifyDir(ctx context.Context, dir string, opts VerifyOptions, fn func(FileResult) error) (VerifySummary, error) {
	var sum VerifySummary
	f, err := os.Open(dir)
	if err != nil {
		return sum, fmt.Errorf("decisions directory: %w", err)
	}
	defer f.Close()
	workers := opts.Concurrency
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 16)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		path   string
		orphan bool
	}
	jobs := make(chan job, workers)
	results := make(chan FileResult, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			emit := func(r FileResult) bool {
				select {
				case results <- finish(r, opts):
					return true
				case <-ctx.Done():
					return false
				}
			}
			// Signed files wait for a batch of signatures to be checked at once.
			var held []FileResult
			var checks []sigCheck
			var bv batcher
			flush := func() bool {
				ok := !opts.NoBatch && bv.verify(checks)
				for i := range held {
					finishSig(&held[i], &checks[i], ok || checks[i].verify(), opts)
					if !emit(held[i]) {
						return false
					}
				}
				held, checks = held[:0], checks[:0]
				return true
			}
			for j := range jobs {
				if j.orphan {
					r := FileResult{Name: filepath.Base(j.path), Path: j.path}
					r.add(ProblemOrphanSidecar, "sidecar without its decision file %s", strings.TrimSuffix(r.Name, SigSuffix))
					if !emit(r) {
						return
					}
					continue
				}
				r, c := checkFile(j.path, opts)
				if c == nil {
					if !emit(r) {
						return
					}
					continue
				}
				held, checks = append(held, r), append(checks, *c)
				if len(held) == batchSize && !flush() {
					return
				}
			}
			flush()
		}()
	}
	var readErr error
	go func() {
		defer close(jobs)
		// Names only (not contents) are remembered, to find sidecars whose
		// decision file is missing without a stat per file.
		jsons, sigs := map[string]bool{}, map[string]bool{}
		send := func(j job) bool {
			select {
			case jobs <- j:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			entries, err := f.ReadDir(512)
			for _, e := range entries {
				name := e.Name()
				if strings.HasPrefix(name, ".") || e.IsDir() {
					continue
				}
				if strings.HasSuffix(name, SigSuffix) {
					sigs[name] = true
					continue
				}
				jsons[name] = true
				if !send(job{path: filepath.Join(dir, name)}) {
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = fmt.Errorf("decisions directory %s: %w", dir, err)
					return
				}
				break
			}
		}
		var orphans []string
		for name := range sigs {
			if !jsons[strings.TrimSuffix(name, SigSuffix)] {
				orphans = append(orphans, name)
			}
		}
		sort.Strings(orphans)
		for _, name := range orphans {
			if !send(job{path: filepath.Join(dir, name), orphan: true}) {
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var fnErr error
	for r := range results {
		if fnErr != nil {
			continue // drain
		}
		sum.Files++
		switch {
		case r.Failed:
			sum.Failed++
		default:
			sum.OK++
		}
		if r.Hash != "" {
			if r.Signed {
				sum.Signed++
			} else {
				sum.Unsigned++
			}
		}
		if fn != nil {
			if err := fn(r); err != nil {
				fnErr = err
				cancel()
			}
		}
	}
	if fnErr != nil {
		return sum, fnErr
	}
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	return sum, readErr
}
