// Package ed25519batch verifies many Ed25519 signatures at once with a random
// linear combination of their verification equations. It is shared by the
// energy (meter readings) and governor (decision-file sidecars) packages.
//
// # Equation
//
// For signatures (Rᵢ, sᵢ) on messages Mᵢ under keys Aᵢ, with
// kᵢ = SHA-512(Rᵢ‖Aᵢ‖Mᵢ) mod ℓ and fresh random 128-bit zᵢ, [Verify] checks
// the cofactored equation
//
//	[8]( Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ − [Σ zᵢsᵢ]B ) = 0.
//
// The cofactored form is the only sound one for a random linear combination:
// without the [8], small-order components of honest-looking points would make
// the result depend on the zᵢ.
//
// # Acceptance rules compared with crypto/ed25519
//
// crypto/ed25519.Verify is cofactorless: it accepts iff s < ℓ and R is
// byte-for-byte the encoding of [s]B − [k]A. Before the equation, the batch
// requires of every entry: a 32-byte key and 64-byte signature; s < ℓ
// (canonical); R and A canonical encodings of curve points (y < p, and no
// "negative zero" x); neither R nor A of small order ([8]P ≠ 0). Any entry
// failing these makes Verify return false, leaving the entry to the caller's
// per-signature check; so both callers get the stricter rules, and crafted
// encodings never reach the equation.
//
//   - Everything crypto/ed25519 accepts with canonical, non-small-order R and A
//     the batch accepts: a valid signature makes its term exactly zero.
//   - crypto/ed25519 also accepts some signatures the batch refuses (returns
//     false for): non-canonical or small-order public keys, small-order R. The
//     caller's per-signature fallback then accepts them as before.
//   - The batch can accept a signature crypto/ed25519 rejects only when
//     [s]B − [k]A − R is a non-zero point of small order, i.e. when R or A
//     carries a torsion component (R or A of mixed order, not of small order,
//     which the checks above do not exclude). Only the key's owner can build
//     such a signature; an honest signer never does. Any other invalid
//     signature makes the batch fail except with probability ≤ 2⁻¹²⁸.
//
// # Randomness
//
// The zᵢ are 16 bytes each, read at once from the io.Reader given to
// [NewVerifier] or [Verify] (crypto/rand when nil). If the reader fails,
// Verify returns false (the caller falls back to single verification). A
// predictable reader makes the batch forgeable; inject one only in tests.
//
// # Repeated and cached keys
//
// Entries with the same public key bytes share one term: their zᵢkᵢ are summed
// into one scalar on one point, so a batch from a few signers costs little more
// than one R decompression and one short (128-bit) scalar term per signature.
// A caller that sees a key often (a key registry) decodes it once with
// [ParseKey] and passes it as [Entry.Key], saving one decompression per
// signature; a Key is only used for the exact bytes it was parsed from.
//
// # Curve arithmetic
//
// Points and the multi-scalar multiplication come from
// github.com/oasisprotocol/curve25519-voi (package curve only): a Pippenger
// bucket multiplication above 190 terms (Straus below), vectorised with AVX2
// on amd64 (portable Go elsewhere, slower). It is a dependency because, with
// one key per signature, filippo.io/edwards25519's public API stops near 2×
// stdlib: its multi-scalar multiplication (Straus) costs three times voi's
// per signature, and buckets written over its Point.Add, which converts its
// operand on every call, gain only 10 % (BENCHMARKS.md, energy section).
// voi is pinned to its last commit (the module has no tagged releases);
// voi's own Ed25519 verifier, whose acceptance rules are its own, is not
// used. Scalars stay on filippo.io/edwards25519 (faster than voi's) and are
// handed over as canonical bytes. Small-order R and A are found by comparing
// the canonical encoding with the eight encodings of the torsion points.
//
// # Results
//
// Verify returns true only when every entry is well formed and the combination
// holds. A false result says only that some entry is bad or unusual: verify one
// by one (crypto/ed25519) to find which, and report their verdicts.
package ed25519batch
