package receipts_test

import (
	"errors"
	"testing"

	"github.com/theblock/tbops/receipts"
)

// FuzzValidateJSON feeds arbitrary bytes through the decoder and the Validator:
// never a panic, every failure a *RejectError with one of the four reasons, and
// an accepted receipt is a duplicate the second time.
func FuzzValidateJSON(f *testing.F) {
	f.Add([]byte(`{"receipt_id":"r1","market":"ad","block_height":7,"provider":"p","payment":1500,"nonce":3,"signature":"c2ln"}`))
	f.Add([]byte(`{"receipt_id":"r1","market":"storage","block_height":-7,"provider":"p","payment":999,"nonce":3,"signature":"s"}`))
	f.Add([]byte(`{"receipt_id":"r1","market":"gas","block_height":9223372036854775807,"provider":"p","payment":1e3,"nonce":18446744073709551615,"signature":"s"}`))
	f.Add([]byte(`{"receipt_id":"\u0000","market":"compute","block_height":0,"provider":"\xff","payment":1000,"nonce":0,"signature":"s"} x`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := receipts.NewValidator(receipts.ValidatorConfig{WindowBlocks: 4})
		if err != nil {
			t.Fatal(err)
		}
		r, err := v.ValidateJSON(data)
		if err != nil {
			var re *receipts.RejectError
			if !errors.As(err, &re) {
				t.Fatalf("not a RejectError: %T %v", err, err)
			}
			switch re.Reason {
			case receipts.ReasonSchemaMismatch, receipts.ReasonDuplicate, receipts.ReasonSignatureInvalid, receipts.ReasonMinPayment:
			default:
				t.Fatalf("reason %q", re.Reason)
			}
			if re.Error() == "" {
				t.Fatal("empty message")
			}
			if v.Len() != 0 {
				t.Fatal("a rejected receipt entered the window")
			}
			return
		}
		if r.Payment < receipts.MinPayment || r.BlockHeight < 0 || r.ReceiptID == "" {
			t.Fatalf("accepted an invalid receipt %+v", r)
		}
		if err := v.Validate(&r); !errors.Is(err, receipts.ErrDuplicate) {
			t.Fatalf("second sight of %+v: %v", r, err)
		}
	})
}
