package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var b bytes.Buffer
	if err := run(context.Background(), &b); err != nil {
		t.Fatalf("run: %v\n%s", err, b.String())
	}
	out := b.String()
	for _, want := range []string{
		"own node: height 42",
		"own node: gov.treasury.balance answers -32601 (method not found) after 1 attempt(s)",
		"node-health          ok",
		"treasury-stuck       ok",
		"receipts-flatlining  ok",
		"governor-audit       ok",
		"energy-stalled       ok",
		"runtime-reactor      ok",
		"exit code 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
