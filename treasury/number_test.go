package treasury

import "testing"

// decodeNumber's shortcut for bare literals must read every input exactly as
// the token decoder does: the same number, or an error where it errs.
func checkNumberAsToken(t *testing.T, raw []byte) {
	t.Helper()
	got, gotErr := decodeNumber(raw)
	want, wantErr := decodeNumberToken(raw)
	if got != want || (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("decodeNumber(%q) = %q, %v; the token decoder reads %q, %v", raw, got, gotErr, want, wantErr)
	}
}

func TestDecodeNumberAsToken(t *testing.T) {
	for _, s := range []string{`12`, ` -3.5e2 `, `0`, `-0`, `1e30`, `"12"`, `" 7 "`, `"1e3"`, `"x"`, `null`,
		`true`, `12 34`, `12,`, "\v0", "3\n", "3\v", `012`, `-`, `1.`, `.5`, `[1]`, `{}`, ``, `  `, `9223372036854775808`} {
		checkNumberAsToken(t, []byte(s))
	}
}

func FuzzDecodeNumber(f *testing.F) {
	for _, s := range []string{`12`, `-3.5e2`, `"12"`, `12 34`, `012`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkNumberAsToken)
}
