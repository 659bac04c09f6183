package receipts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/theblock/tbops"
)

// Market is a receipt market.
type Market string

// The four markets of the wire contract (PROTOCOL.md section 5).
const (
	Storage Market = "storage"
	Compute Market = "compute"
	Energy  Market = "energy"
	Ad      Market = "ad"
)

// Markets returns the four markets in runbook order.
func Markets() []Market { return []Market{Storage, Compute, Energy, Ad} }

// ParseMarket returns the market called s, or an error naming the valid ones.
func ParseMarket(s string) (Market, error) {
	for _, m := range Markets() {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("%w: unknown market %q (want one of storage, compute, energy, ad)", ErrUnknownMarket, s)
}

// MinPayment is the payment floor: 0.001 BLOCK (1000 micro-BLOCK). A receipt
// below it is rejected and counted in receipt_min_payment_rejected_total.
const MinPayment tbops.Amount = 1000

// Receipt is one receipt as on the wire (PROTOCOL.md section 5). Payment is in
// micro-BLOCK.
type Receipt struct {
	ReceiptID   string       `json:"receipt_id"`
	Market      Market       `json:"market"`
	BlockHeight int64        `json:"block_height"`
	Provider    string       `json:"provider"`
	Payment     tbops.Amount `json:"payment"`
	Nonce       uint64       `json:"nonce"`
	Signature   string       `json:"signature"`
}

// wireReceipt finds missing fields (nil) and wrong types (the decoder's error).
type wireReceipt struct {
	ReceiptID   *string `json:"receipt_id"`
	Market      *string `json:"market"`
	BlockHeight *int64  `json:"block_height"`
	Provider    *string `json:"provider"`
	Payment     *int64  `json:"payment"`
	Nonce       *uint64 `json:"nonce"`
	Signature   *string `json:"signature"`
}

// MaxReceiptBytes bounds one encoded receipt: far above any valid one, it keeps
// a hostile input from costing more than a few kilobytes of decoding.
const MaxReceiptBytes = 16 << 10

// DecodeReceipt decodes one receipt from JSON and checks its shape: every field
// present, of the right JSON type (integers for block_height, payment and nonce;
// no floats, no quoted numbers), nothing after the object. Unknown fields are
// ignored (nodes may add some). Any failure is a *RejectError with reason
// schema_mismatch naming the field; range and market checks are the Validator's.
func DecodeReceipt(data []byte) (Receipt, error) {
	if len(data) > MaxReceiptBytes {
		return Receipt{}, schemaErr(Receipt{}, "", fmt.Sprintf("receipt is %d bytes, over the %d-byte limit", len(data), MaxReceiptBytes))
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Receipt{}, schemaErr(Receipt{}, "", "not a JSON object")
	}
	var w wireReceipt
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&w); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return Receipt{}, schemaErr(Receipt{}, ute.Field, fmt.Sprintf("want %s, got JSON %s", jsonKind(ute.Type.Kind().String()), ute.Value))
		}
		return Receipt{}, schemaErr(Receipt{}, "", "invalid JSON: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Receipt{}, schemaErr(Receipt{}, "", "data after the receipt object")
	}
	var r Receipt
	var missing []string
	str := func(p *string, name string) string {
		if p == nil {
			missing = append(missing, name)
			return ""
		}
		return *p
	}
	r.ReceiptID = str(w.ReceiptID, "receipt_id")
	r.Market = Market(str(w.Market, "market"))
	r.Provider = str(w.Provider, "provider")
	r.Signature = str(w.Signature, "signature")
	if w.BlockHeight == nil {
		missing = append(missing, "block_height")
	} else {
		r.BlockHeight = *w.BlockHeight
	}
	if w.Payment == nil {
		missing = append(missing, "payment")
	} else {
		r.Payment = tbops.Amount(*w.Payment)
	}
	if w.Nonce == nil {
		missing = append(missing, "nonce")
	} else {
		r.Nonce = *w.Nonce
	}
	if len(missing) > 0 {
		return r, schemaErr(r, missing[0], "required field missing (missing: "+strings.Join(missing, ", ")+")")
	}
	return r, nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int64", "uint64":
		return "an integer"
	}
	return goKind
}
