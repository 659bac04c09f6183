// Command receipts-validator runs receipts.Validator over a stream of receipts
// as a node or an explorer ingests them (runbook "Receipts Flatlining"): the
// schema, the 0.001 BLOCK floor, a pluggable signature check and duplicate
// detection by receipt id and by provider+nonce, with each rejection's reason,
// and exports the counts as the node's receipt_validation_errors_total and
// receipt_min_payment_rejected_total.
//
//	go run ./examples/receipts-validator
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/theblock/tbops/receipts"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "receipts-validator:", err)
		os.Exit(1)
	}
}

// signedBytes is what a provider signs. PROTOCOL.md leaves the signing rule
// to the node, which is why the Validator takes the check as a plug-in.
func signedBytes(r receipts.Receipt) []byte {
	return fmt.Appendf(nil, "%s|%s|%s|%d|%d|%d", r.ReceiptID, r.Market, r.Provider, r.BlockHeight, r.Payment, r.Nonce)
}

func run(ctx context.Context, w io.Writer) error {
	// One provider key, fixed so the output is the same on every run.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	keys := map[string]ed25519.PublicKey{"prov-1": key.Public().(ed25519.PublicKey)}

	v, err := receipts.NewValidator(receipts.ValidatorConfig{
		WindowBlocks: 100,
		Signature: receipts.SignatureFunc(func(r receipts.Receipt) error {
			pub, ok := keys[r.Provider]
			sig, err := base64.StdEncoding.DecodeString(r.Signature)
			if !ok || err != nil || !ed25519.Verify(pub, signedBytes(r), sig) {
				return errors.New("ed25519 signature does not verify")
			}
			return nil
		}),
	})
	if err != nil {
		return err
	}

	sign := func(r receipts.Receipt) receipts.Receipt {
		r.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, signedBytes(r)))
		return r
	}
	r1 := sign(receipts.Receipt{ReceiptID: "rc-1", Market: receipts.Storage, BlockHeight: 500, Provider: "prov-1", Payment: 2500, Nonce: 1})
	r2 := sign(receipts.Receipt{ReceiptID: "rc-2", Market: receipts.Compute, BlockHeight: 501, Provider: "prov-1", Payment: 4000, Nonce: 2})
	replayID := sign(receipts.Receipt{ReceiptID: "rc-1", Market: receipts.Storage, BlockHeight: 502, Provider: "prov-1", Payment: 2500, Nonce: 3})
	replayNonce := sign(receipts.Receipt{ReceiptID: "rc-3", Market: receipts.Storage, BlockHeight: 502, Provider: "prov-1", Payment: 2500, Nonce: 2})
	cheap := sign(receipts.Receipt{ReceiptID: "rc-4", Market: receipts.Ad, BlockHeight: 502, Provider: "prov-1", Payment: 999, Nonce: 4})
	forged := sign(receipts.Receipt{ReceiptID: "rc-5", Market: receipts.Energy, BlockHeight: 503, Provider: "prov-1", Payment: 1000, Nonce: 5})
	forged.Payment = 1_000_000 // changed after signing

	stream := []receipts.Receipt{r1, r2, replayID, replayNonce, cheap, forged}
	for i := range stream {
		report(w, stream[i].ReceiptID, v.Validate(&stream[i]))
	}
	// Raw JSON off the wire: a quoted number is a schema error naming the field.
	raw := []byte(`{"receipt_id":"rc-6","market":"storage","block_height":504,"provider":"prov-1","payment":"2500","nonce":6,"signature":"AA=="}`)
	_, err = v.ValidateJSON(raw)
	report(w, "rc-6", err)

	c := v.Counts()
	fmt.Fprintf(w, "accepted=%d", c.Accepted)
	for _, reason := range receipts.Reasons() {
		fmt.Fprintf(w, " %s=%d", reason, c.Rejected[reason])
	}
	fmt.Fprintln(w)

	// A node exports the counts under the wire contract's metric names, with
	// its own labels: serve reg with promhttp.HandlerFor on /metrics.
	reg := prometheus.NewRegistry()
	if err := reg.Register(v.Collector(prometheus.Labels{"node": "example"})); err != nil {
		return err
	}
	families, err := reg.Gather()
	if err != nil {
		return err
	}
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func report(w io.Writer, id string, err error) {
	var rej *receipts.RejectError
	switch {
	case err == nil:
		fmt.Fprintf(w, "%-5s accepted\n", id)
	case errors.As(err, &rej):
		// Reason is the receipt_validation_errors_total label; Field and
		// Detail say what to fix.
		fmt.Fprintf(w, "%-5s rejected %-19s field=%q %s\n", id, rej.Reason, rej.Field, rej.Detail)
	default:
		fmt.Fprintf(w, "%-5s error: %v\n", id, err)
	}
}
