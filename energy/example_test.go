package energy_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/theblock/tbops/energy"
)

// Sign a reading as the runbook's Python snippet does, verify it, and see a
// tampered copy fail with the runbook's reason.
func ExampleSign() {
	key := ed25519.NewKeyFromSeed(make([]byte, 32)) // use the provider's real key
	r := energy.Reading{ProviderID: "provider_usa_001", Meter: "meter_001", TotalKWh: 1500000, Timestamp: 1700000000, Nonce: 12345}
	signed, err := energy.Sign(r, key)
	if err != nil {
		panic(err)
	}
	reg := energy.NewKeyRegistry()
	_ = reg.Add("provider_usa_001", energy.SchemeEd25519, hex.EncodeToString(key.Public().(ed25519.PublicKey)))
	fmt.Println("message bytes:", len(signed.Message()))
	fmt.Println("valid:", energy.VerifyWith(reg, signed) == nil)

	signed.TotalKWh = 1600000
	err = energy.VerifyWith(reg, signed)
	fmt.Println("tampered:", errors.Is(err, energy.ErrVerificationFailed))
	var ve *energy.VerifyError
	if errors.As(err, &ve) {
		fmt.Println("reason:", ve.Reason)
	}
	// Output:
	// message bytes: 49
	// valid: true
	// tampered: true
	// reason: verification_failed
}
