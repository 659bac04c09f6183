package governor

import (
	"encoding/hex"
	"fmt"
	"strings"

	"lukechampine.com/blake3"
)

// Keys left out of the hashed encoding: the hash itself and a node's attestation.
const (
	KeySnapshotHash = "snapshot_hash"
	KeyAttestation  = "attestation"
)

// Digest is a BLAKE3-256 snapshot digest.
type Digest [32]byte

// Hex is the lower-case hex form, as on the wire and in decision files.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// String is Hex.
func (d Digest) String() string { return d.Hex() }

// ParseDigest reads a 64-digit hex digest; upper-case digits are accepted.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 64 {
		return d, fmt.Errorf("snapshot hash %q: want 64 hex digits, got %d characters", s, len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("snapshot hash %q: %v", s, err)
	}
	return d, nil
}

// SameHash compares two hex hashes as digests (case-insensitive), so that an
// upper-case hash from some tool still matches.
func SameHash(a, b string) bool {
	return len(a) == 64 && strings.EqualFold(a, b)
}

// SnapshotDigest is BLAKE3-256 over the canonical encoding of the decision
// object without its top-level snapshot_hash and attestation keys. decision is
// usually a map[string]any from [Parse]; any value [Canonical] accepts works,
// but only an object has keys to leave out.
func SnapshotDigest(decision any) (Digest, error) {
	if m, ok := decision.(map[string]any); ok {
		if _, a := m[KeySnapshotHash]; a || hasKey(m, KeyAttestation) {
			c := make(map[string]any, len(m))
			for k, v := range m {
				if k != KeySnapshotHash && k != KeyAttestation {
					c[k] = v
				}
			}
			decision = c
		}
	}
	enc, err := Canonical(decision)
	if err != nil {
		return Digest{}, err
	}
	return blake3.Sum256(enc), nil
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// SnapshotHash is the lower-case hex of [SnapshotDigest].
func SnapshotHash(decision any) (string, error) {
	d, err := SnapshotDigest(decision)
	if err != nil {
		return "", err
	}
	return d.Hex(), nil
}

// HashBytes parses a decision file's bytes strictly and returns its snapshot
// hash. A file written canonically without a snapshot_hash key hashes to
// BLAKE3 of its own bytes.
func HashBytes(data []byte) (string, error) {
	v, err := Parse(data)
	if err != nil {
		return "", err
	}
	if _, ok := v.(map[string]any); !ok {
		return "", errNotObject
	}
	return SnapshotHash(v)
}
