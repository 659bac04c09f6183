package energy

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/edwards25519"
	"lukechampine.com/blake3"

	"github.com/theblock/tbops/internal/ed25519batch"
)

// Signature schemes (PROTOCOL.md section 4).
const (
	// SchemeEd25519 signs the reading's message itself (the default).
	SchemeEd25519 = "ed25519"
	// SchemeEd25519Blake3 signs BLAKE3-256(message), the reference node's rule.
	SchemeEd25519Blake3 = "ed25519-blake3"
)

// DefaultMaxSkew is the timestamp tolerance of a reading (-33008 beyond it).
const DefaultMaxSkew = 300 * time.Second

// MaxIDLen bounds provider_id and meter so a hostile reading cannot make the
// signed message arbitrarily large.
const MaxIDLen = 256

// Reading is one signed meter reading (PROTOCOL.md section 4). Its JSON form uses
// the contract's names; the reference node's meter_address and kwh_reading are
// accepted when decoding.
type Reading struct {
	ProviderID string `json:"provider_id"`
	Meter      string `json:"meter"`     // the meter's id
	TotalKWh   uint64 `json:"total_kwh"` // the meter's running total
	// Timestamp is Unix seconds.
	Timestamp uint64 `json:"timestamp"`
	Nonce     uint64 `json:"nonce"` // strictly increasing per provider
	// Signature is standard base64 (hex is accepted when decoding).
	Signature string `json:"signature"`
	// Scheme is ed25519 (the default when empty) or ed25519-blake3.
	Scheme string `json:"scheme,omitempty"`
}

// Message returns the signed message: provider_id (UTF-8) ‖ meter (UTF-8) ‖
// total_kwh u64 LE ‖ timestamp u64 LE ‖ nonce u64 LE, with no separators. It is
// the message the runbook's Python snippet builds.
func (r Reading) Message() []byte {
	m := make([]byte, 0, len(r.ProviderID)+len(r.Meter)+24)
	m = append(m, r.ProviderID...)
	m = append(m, r.Meter...)
	m = binary.LittleEndian.AppendUint64(m, r.TotalKWh)
	m = binary.LittleEndian.AppendUint64(m, r.Timestamp)
	m = binary.LittleEndian.AppendUint64(m, r.Nonce)
	return m
}

// SignedBytes returns what the Ed25519 signature covers under scheme: the
// message for ed25519, its BLAKE3-256 digest for ed25519-blake3.
func SignedBytes(scheme string, message []byte) ([]byte, error) {
	switch scheme {
	case "", SchemeEd25519:
		return message, nil
	case SchemeEd25519Blake3:
		d := blake3.Sum256(message)
		return d[:], nil
	}
	return nil, &VerifyError{Reason: ReasonSchemeUnsupported, Detail: fmt.Sprintf("scheme %q (want %s or %s)", scheme, SchemeEd25519, SchemeEd25519Blake3)}
}

// readingWire is the decoding form: the contract's names and the reference
// node's.
type readingWire struct {
	ProviderID   *string `json:"provider_id"`
	Meter        *string `json:"meter"`
	MeterAddress *string `json:"meter_address"`
	TotalKWh     *uint64 `json:"total_kwh"`
	KWhReading   *uint64 `json:"kwh_reading"`
	Timestamp    *uint64 `json:"timestamp"`
	Nonce        *uint64 `json:"nonce"`
	Signature    *string `json:"signature"`
	Scheme       *string `json:"scheme"`
}

// ParseReading decodes one reading strictly: unknown fields, missing fields,
// negative or fractional numbers, and conflicting contract/reference-node names
// are invalid_format errors naming the field. The signature is not checked.
func ParseReading(data []byte) (Reading, error) {
	var w readingWire
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Reading{}, formatErr("", "reading JSON: %s", jsonErrText(err))
	}
	if dec.More() {
		return Reading{}, formatErr("", "reading JSON: trailing data after the object")
	}
	var r Reading
	var err error
	pick := func(a, b *string, an, bn string) string {
		switch {
		case a != nil && b != nil && *a != *b:
			err = errors.Join(err, formatErr("", "fields %q and %q disagree", an, bn))
		case a != nil:
			return *a
		case b != nil:
			return *b
		default:
			err = errors.Join(err, formatErr("", "field %q is missing", an))
		}
		return ""
	}
	pickU := func(a, b *uint64, an, bn string) uint64 {
		switch {
		case a != nil && b != nil && *a != *b:
			err = errors.Join(err, formatErr("", "fields %q and %q disagree", an, bn))
		case a != nil:
			return *a
		case b != nil:
			return *b
		default:
			err = errors.Join(err, formatErr("", "field %q is missing", an))
		}
		return 0
	}
	r.ProviderID = pick(w.ProviderID, nil, "provider_id", "")
	r.Meter = pick(w.Meter, w.MeterAddress, "meter", "meter_address")
	r.TotalKWh = pickU(w.TotalKWh, w.KWhReading, "total_kwh", "kwh_reading")
	r.Timestamp = pickU(w.Timestamp, nil, "timestamp", "")
	r.Nonce = pickU(w.Nonce, nil, "nonce", "")
	r.Signature = pick(w.Signature, nil, "signature", "")
	if w.Scheme != nil {
		r.Scheme = *w.Scheme
	}
	if err != nil {
		return Reading{}, firstVerifyError(err)
	}
	if err := r.Validate(); err != nil {
		return Reading{}, err
	}
	return r, nil
}

// firstVerifyError keeps the typed error of a joined set, with all messages.
func firstVerifyError(err error) error {
	var ve *VerifyError
	if errors.As(err, &ve) {
		msgs := strings.ReplaceAll(err.Error(), "\n", "; ")
		return &VerifyError{Reason: ve.Reason, ProviderID: ve.ProviderID, Detail: strings.ReplaceAll(msgs, ReasonInvalidFormat+": ", "")}
	}
	return err
}

func jsonErrText(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return fmt.Sprintf("field %q: want %s, got %s", ute.Field, ute.Type, ute.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Validate checks the reading's fields without its signature: non-empty
// provider_id and meter of at most MaxIDLen bytes of valid UTF-8, a signature
// that decodes to 64 bytes, and a known scheme.
func (r Reading) Validate() error {
	switch {
	case r.ProviderID == "":
		return formatErr(r.ProviderID, "provider_id is empty")
	case len(r.ProviderID) > MaxIDLen:
		return formatErr(r.ProviderID[:32], "provider_id is %d bytes (max %d)", len(r.ProviderID), MaxIDLen)
	case r.Meter == "":
		return formatErr(r.ProviderID, "meter is empty")
	case len(r.Meter) > MaxIDLen:
		return formatErr(r.ProviderID, "meter is %d bytes (max %d)", len(r.Meter), MaxIDLen)
	case !validUTF8(r.ProviderID) || !validUTF8(r.Meter):
		return formatErr(r.ProviderID, "provider_id and meter must be UTF-8")
	}
	if _, err := DecodeSignature(r.Signature); err != nil {
		return withProvider(err, r.ProviderID)
	}
	if _, err := SignedBytes(r.Scheme, nil); err != nil {
		return withProvider(err, r.ProviderID)
	}
	return nil
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// decodeBytes decodes a key or signature written as hex (exactly 2·n hex digits)
// or standard base64 (padded or not), and requires n bytes.
func decodeBytes(what, s string, n int) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%s is empty", what)
	}
	if len(s) == 2*n {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	var b []byte
	var err error
	if strings.HasSuffix(s, "=") {
		b, err = base64.StdEncoding.DecodeString(s)
	} else {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		if len(s) == 2*n {
			return nil, fmt.Errorf("%s is neither hex nor base64: %v", what, err)
		}
		return nil, fmt.Errorf("%s: bad base64 (%v) and not %d hex digits (%d characters)", what, err, 2*n, len(s))
	}
	if len(b) != n {
		return nil, fmt.Errorf("%s decodes to %d bytes, want %d", what, len(b), n)
	}
	return b, nil
}

// DecodeSignature decodes a 64-byte Ed25519 signature from base64 or hex.
func DecodeSignature(s string) ([]byte, error) {
	b, err := decodeBytes("signature", s, ed25519.SignatureSize)
	if err != nil {
		return nil, &VerifyError{Reason: ReasonInvalidFormat, Detail: err.Error()}
	}
	return b, nil
}

// DecodePublicKey decodes a 32-byte Ed25519 public key from base64 or hex. It
// rejects encodings that are not points and small-order points (which would
// verify forged signatures).
func DecodePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeBytes("public key", s, ed25519.PublicKeySize)
	if err != nil {
		return nil, &VerifyError{Reason: ReasonInvalidFormat, Detail: err.Error()}
	}
	if _, err := parsePoint(b); err != nil {
		return nil, &VerifyError{Reason: ReasonInvalidFormat, Detail: "public key: " + err.Error()}
	}
	return ed25519.PublicKey(b), nil
}

func parsePoint(b []byte) (*edwards25519.Point, error) {
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, errors.New("not a valid curve point")
	}
	if ed25519batch.SmallOrder(p) {
		return nil, errors.New("a small-order point (weak key)")
	}
	return p, nil
}

// DecodePrivateKey decodes an Ed25519 private key: a 32-byte seed or a 64-byte
// seed‖public key, in hex or base64 (as the runbook's Python snippet takes), or a
// PEM "PRIVATE KEY" block (PKCS #8, as openssl genpkey writes).
func DecodePrivateKey(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		blk, _ := pem.Decode([]byte(s))
		if blk == nil {
			return nil, errors.New("private key: PEM block does not decode")
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("private key: PEM: %v", err)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("private key: PEM holds a %T, not an Ed25519 key", k)
		}
		return ek, nil
	}
	if b, err := decodeBytes("private key", s, ed25519.SeedSize); err == nil {
		return ed25519.NewKeyFromSeed(b), nil
	}
	b, err := decodeBytes("private key", s, ed25519.PrivateKeySize)
	if err != nil {
		return nil, fmt.Errorf("private key: want a 32-byte seed or a 64-byte key in hex or base64: %v", err)
	}
	k := ed25519.NewKeyFromSeed(b[:32])
	if !bytes.Equal(k[32:], b[32:]) {
		return nil, errors.New("private key: the 64-byte key's public half does not match its seed")
	}
	return k, nil
}

// Sign returns r signed with key under r.Scheme (ed25519 when empty), the
// signature in standard base64.
func Sign(r Reading, key ed25519.PrivateKey) (Reading, error) {
	if len(key) != ed25519.PrivateKeySize {
		return r, fmt.Errorf("private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	msg, err := SignedBytes(r.Scheme, r.Message())
	if err != nil {
		return r, err
	}
	r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))
	return r, nil
}

// Verify checks r's signature with pub, the provider's public key, under
// r.Scheme. It is exactly crypto/ed25519.Verify (cofactorless, canonical s) on
// the scheme's signed bytes. Failures are *VerifyError with the runbook's reason.
func Verify(r Reading, pub ed25519.PublicKey) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize {
		return &VerifyError{Reason: ReasonInvalidFormat, ProviderID: r.ProviderID, Detail: fmt.Sprintf("public key is %d bytes, want 32", len(pub))}
	}
	sig, _ := DecodeSignature(r.Signature)
	msg, _ := SignedBytes(r.Scheme, r.Message())
	if !ed25519.Verify(pub, msg, sig) {
		return &VerifyError{Reason: ReasonVerificationFailed, ProviderID: r.ProviderID,
			Detail: fmt.Sprintf("signature does not match the message under scheme %s and the registered key", schemeName(r.Scheme))}
	}
	return nil
}

func schemeName(s string) string {
	if s == "" {
		return SchemeEd25519
	}
	return s
}

// Key is a provider's registered public key.
type Key struct {
	ProviderID string // whose key it is
	// Scheme is the scheme the key is registered for; "" accepts either.
	Scheme    string
	PublicKey ed25519.PublicKey // the decoded key
	// batch is the key decoded for batch verification (nil when the batch's
	// stricter rules refuse it: the batch then fails and Verify decides).
	batch *ed25519batch.Key
}

// KeyRegistry maps providers to public keys. It is safe for concurrent use.
type KeyRegistry struct {
	mu   sync.RWMutex
	keys map[string]Key
}

// NewKeyRegistry returns an empty registry.
func NewKeyRegistry() *KeyRegistry { return &KeyRegistry{keys: map[string]Key{}} }

// Add registers (or replaces) provider's key, given in hex or base64. scheme ""
// accepts both schemes.
func (k *KeyRegistry) Add(providerID, scheme, publicKey string) error {
	if providerID == "" {
		return formatErr("", "provider_id is empty")
	}
	if _, err := SignedBytes(scheme, nil); err != nil {
		return withProvider(err, providerID)
	}
	pub, err := DecodePublicKey(publicKey)
	if err != nil {
		return withProvider(err, providerID)
	}
	bk, _ := ed25519batch.ParseKey(pub)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[providerID] = Key{ProviderID: providerID, Scheme: scheme, PublicKey: pub, batch: bk}
	return nil
}

// Lookup returns provider's key.
func (k *KeyRegistry) Lookup(providerID string) (Key, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.keys[providerID]
	return key, ok
}

// Len is the number of registered keys.
func (k *KeyRegistry) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.keys)
}

// RegistryFromOracleKeys builds a registry from energy.oracle_keys; keys that do
// not decode are returned as errors and left out.
func RegistryFromOracleKeys(ok OracleKeys) (*KeyRegistry, error) {
	reg := NewKeyRegistry()
	var errs []error
	for _, k := range ok.Keys {
		if err := reg.Add(k.ProviderID, k.Scheme, k.PublicKey); err != nil {
			errs = append(errs, err)
		}
	}
	return reg, errors.Join(errs...)
}

// VerifyWith looks up r's provider in keys and verifies the signature, checking
// that the reading's scheme matches the key's.
func VerifyWith(keys *KeyRegistry, r Reading) error {
	key, err := keyFor(keys, r)
	if err != nil {
		return err
	}
	return Verify(r, key.PublicKey)
}

func keyFor(keys *KeyRegistry, r Reading) (Key, error) {
	if err := r.Validate(); err != nil {
		return Key{}, err
	}
	key, ok := keys.Lookup(r.ProviderID)
	if !ok {
		return Key{}, &VerifyError{Reason: ReasonKeyNotFound, ProviderID: r.ProviderID, Detail: "no public key registered for the provider"}
	}
	if key.Scheme != "" && schemeName(key.Scheme) != schemeName(r.Scheme) {
		return Key{}, &VerifyError{Reason: ReasonSchemeUnsupported, ProviderID: r.ProviderID,
			Detail: fmt.Sprintf("reading uses scheme %s but the provider's key is registered for %s", schemeName(r.Scheme), key.Scheme)}
	}
	return key, nil
}

// Checker is the full admission check a node runs on a reading: key lookup,
// scheme, timestamp skew, nonce order and signature. It keeps the last accepted
// nonce per provider, counts signature failures by reason (Failures, and
// Collector for Prometheus) and is safe for concurrent use. Set its fields
// before the first Check.
type Checker struct {
	// Keys are the providers' registered keys.
	Keys *KeyRegistry
	// MaxSkew is the tolerated |timestamp − now| (DefaultMaxSkew when 0).
	MaxSkew time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu     sync.Mutex
	nonces map[string]uint64
	// failures counts *VerifyError refusals, indexed as Reasons().
	failures [4]atomic.Uint64
}

// NewChecker returns a Checker over keys with the default skew and clock.
func NewChecker(keys *KeyRegistry) *Checker {
	return &Checker{Keys: keys, MaxSkew: DefaultMaxSkew, Now: time.Now}
}

// Check admits r or says why not: *VerifyError (-33001) for format, key, scheme
// and signature failures, *SkewError (-33008) and *NonceError (-33007). The
// cheap checks run first; the nonce is recorded only when everything passed, so a
// forged reading cannot burn a provider's nonces.
func (c *Checker) Check(r Reading) error {
	err := c.check(r)
	var ve *VerifyError
	if err != nil && errors.As(err, &ve) {
		if i := slices.Index(Reasons(), ve.Reason); i >= 0 {
			c.failures[i].Add(1)
		}
	}
	return err
}

func (c *Checker) check(r Reading) error {
	key, err := keyFor(c.Keys, r)
	if err != nil {
		return err
	}
	if err := c.checkSkew(r); err != nil {
		return err
	}
	if err := c.checkNonce(r, false); err != nil {
		return err
	}
	if err := Verify(r, key.PublicKey); err != nil {
		return err
	}
	return c.checkNonce(r, true)
}

// Failures is how many readings Check refused for reason (one of the Reason
// constants) since the checker was made.
func (c *Checker) Failures(reason string) uint64 {
	if i := slices.Index(Reasons(), reason); i >= 0 {
		return c.failures[i].Load()
	}
	return 0
}

func (c *Checker) checkSkew(r Reading) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	max := c.MaxSkew
	if max <= 0 {
		max = DefaultMaxSkew
	}
	t := now()
	if r.Timestamp > uint64(1<<62) {
		return &SkewError{ProviderID: r.ProviderID, Timestamp: r.Timestamp, Skew: time.Duration(1<<63 - 1), Max: max}
	}
	skew := time.Unix(int64(r.Timestamp), 0).Sub(t)
	if skew > max || -skew > max {
		return &SkewError{ProviderID: r.ProviderID, Timestamp: r.Timestamp, Skew: skew, Max: max}
	}
	return nil
}

func (c *Checker) checkNonce(r Reading, commit bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	last, seen := c.nonces[r.ProviderID]
	if seen && r.Nonce <= last {
		return &NonceError{ProviderID: r.ProviderID, Nonce: r.Nonce, Last: last}
	}
	if commit {
		if c.nonces == nil {
			c.nonces = map[string]uint64{}
		}
		c.nonces[r.ProviderID] = r.Nonce
	}
	return nil
}

// LastNonce returns the last accepted nonce of provider.
func (c *Checker) LastNonce(providerID string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nonces[providerID]
	return n, ok
}
