package governor

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"lukechampine.com/blake3"
)

const protocolVector = `{"action":"enter","epoch":7,"gate":"operational","intent_id":"op-1","metrics_raw":null,"metrics_summary":"ok","params_patch":{},"reason":"tests"}`

func TestProtocolTestVector(t *testing.T) {
	require.Len(t, protocolVector, 145)
	h, err := HashBytes([]byte(protocolVector))
	require.NoError(t, err)
	assert.Equal(t, "4ea8dc130a2256e030f460c604a77f1a76a96a144a1d92ccd51038543cf997b0", h)
	// A canonical file without snapshot_hash hashes to BLAKE3 of its own bytes.
	sum := blake3.Sum256([]byte(protocolVector))
	assert.Equal(t, hex.EncodeToString(sum[:]), h)
	// The same object from Go values, with the keys that are left out.
	h2, err := SnapshotHash(map[string]any{"action": "enter", "epoch": 7, "gate": "operational", "intent_id": "op-1",
		"metrics_raw": nil, "metrics_summary": "ok", "params_patch": map[string]any{}, "reason": "tests",
		"snapshot_hash": "ignored", "attestation": map[string]any{"sig": "x"}})
	require.NoError(t, err)
	assert.Equal(t, h, h2)
	// Whitespace and key order in the file do not change the hash.
	messy := "{\n  \"reason\": \"tests\", \"params_patch\": { },\n \"metrics_summary\":\"ok\",\"metrics_raw\":null,\"intent_id\":\"op-1\",\"gate\":\"operational\",\"epoch\":7,\"action\":\"enter\",\"snapshot_hash\":\"" + h + "\"}\n"
	h3, err := HashBytes([]byte(messy))
	require.NoError(t, err)
	assert.Equal(t, h, h3)
}

// From Go values: the canonical bytes, written by hand from PROTOCOL.md section 6.
func TestCanonicalGoValues(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want string
	}{
		{"whole float", 3.0, `3.0`},
		{"float 0.1", 0.1, `0.1`},
		{"float 1e21 no exponent", 1e21, `1000000000000000000000.0`},
		{"float 1.5e21", 1.5e21, `1500000000000000000000.0`},
		{"float 1e-7 no exponent", 1e-7, `0.0000001`},
		{"float shortest round trip", 123.456, `123.456`},
		{"float 2/3", 2.0 / 3.0, `0.6666666666666666`},
		{"negative zero", math.Copysign(0, -1), `-0.0`},
		{"negative float", -2.5, `-2.5`},
		{"float32", float32(0.1), `0.1`},
		{"max uint64", uint64(math.MaxUint64), `18446744073709551615`},
		{"min int64", int64(math.MinInt64), `-9223372036854775808`},
		{"int8", int8(-7), `-7`},
		{"number literal kept", Number("1.50"), `1.50`},
		{"json.Number literal kept", json.Number("1E2"), `1E2`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"n r t", "\n\r\t", `"\n\r\t"`},
		{"other C0 upper hex", "\x00\x01\b\f\x1f", `"\u0000\u0001\u0008\u000C\u001F"`},
		{"DEL", "\x7f", `"\u007F"`},
		{"C1 controls", "\u0080\u008a\u009f", `"\u0080\u008A\u009F"`},
		{"just past C1 stays raw", "\u00a0\u00ff", "\"\u00a0\u00ff\""},
		{"html and slash raw", "</script>&", `"</script>&"`},
		{"non-ASCII raw", "größe ✓ 😀 \u2028", "\"größe ✓ 😀 \u2028\""},
		{"key order by bytes", map[string]any{"b": 1, "a": 2, "B": 3, "é": 4, "aa": 5, "": 6, "a\x00": 7},
			"{\"\":6,\"B\":3,\"a\":2,\"a\\u0000\":7,\"aa\":5,\"b\":1,\"é\":4}"},
		{"nested", map[string]any{"z": []any{map[string]any{"y": 1.0, "x": nil}, true, "s"}, "a": map[string]any{"d": map[string]any{}, "c": []any{}}},
			`{"a":{"c":[],"d":{}},"z":[{"x":null,"y":1.0},true,"s"]}`},
		{"typed map and slice", map[string][]int{"k": {1, 2}}, `{"k":[1,2]}`},
		{"nil slice and map", struct {
			S []int          `json:"s"`
			M map[string]int `json:"m"`
		}{}, `{"m":null,"s":null}`},
		{"struct tags", struct {
			B     float64 `json:"b"`
			A     string  `json:"a,omitempty"`
			Skip  int     `json:"-"`
			Plain int
			low   int
		}{B: 2, Plain: 1, low: 9}, `{"Plain":1,"b":2.0}`},
		{"pointer", func() *int { v := 5; return &v }(), `5`},
		{"raw message re-encoded", json.RawMessage(`{ "b" : 1.0, "a" : "\u00e9" }`), `{"a":"é","b":1.0}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Canonical(c.in)
			require.NoError(t, err)
			assert.Equal(t, c.want, string(got))
			// The canonical bytes re-encode to themselves.
			again, err := Recanonicalize(got)
			require.NoError(t, err)
			assert.Equal(t, c.want, string(again))
		})
	}
}

func TestCanonicalRejects(t *testing.T) {
	for name, v := range map[string]any{
		"NaN":          math.NaN(),
		"+Inf":         math.Inf(1),
		"bad utf8":     "\xff",
		"bad utf8 key": map[string]any{"\xfe": 1},
		"chan":         make(chan int),
		"int key map":  map[int]int{1: 1},
		"bad number":   Number("01"),
		"empty number": Number(""),
		"bad raw":      json.RawMessage(`{"a":1,"a":2}`),
		"nested NaN":   map[string]any{"x": []any{math.NaN()}},
	} {
		_, err := Canonical(v)
		var ue *UnsupportedValueError
		assert.True(t, errors.As(err, &ue), "%s: %v", name, err)
	}
	_, err := Canonical(map[string]any{"x": []any{1, math.Inf(-1)}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), ".x[1]")
}

// Re-encoding parsed files keeps literals and normalises everything else.
func TestRecanonicalize(t *testing.T) {
	cases := map[string]string{
		`{"x":1.50,"y":1E2,"z":-0,"w":1e-7,"v":100000000000000000000000}`: `{"v":100000000000000000000000,"w":1e-7,"x":1.50,"y":1E2,"z":-0}`,
		`"\u0041\/\u00e9\ud83d\ude00"`:                                    `"A/é😀"`,
		`"\u007f\u0085\u001b"`:                                            `"\u007F\u0085\u001B"`,
		`"\b\f\n\r\t\"\\"`:                                                `"\u0008\u000C\n\r\t\"\\"`,
		" \t\r\n[ 1 , 2 ] \n":                                             `[1,2]`,
		`{"b":{"d":[],"c":{}},"a":[{"z":1,"y":2}]}`:                       `{"a":[{"y":2,"z":1}],"b":{"c":{},"d":[]}}`,
		`"\u2028 <>&"`:                                                    "\"\u2028 <>&\"",
	}
	for in, want := range cases {
		got, err := Recanonicalize([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, want, string(got), in)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a" 1}`, `{a:1}`, `{'a':1}`,
		`{"a":1,"a":2}`, `{"x":{"a":1,"a":1}}`, `[{"k":1,"k":1}]`,
		`{} x`, `{}{}`, `1 2`, `null,`, "\ufeff{}",
		`01`, `1.`, `.5`, `+1`, `-`, `1e`, `1e+`, `0x10`, `NaN`, `Infinity`, `-Infinity`,
		`tru`, `nul`, `True`, `undefined`,
		`"abc`, `"\x"`, `"\u12"`, `"\u12G4"`, `"` + "\x01" + `"`, "\"\t\"", `"\ud800"`, `"\udc00"`, `"\ud800\u0041"`,
		"\"\xff\"", "\"a\xc3\"", "{\"\xff\":1}",
		`/* c */ {}`, `{} // c`,
		strings.Repeat("[", 600) + strings.Repeat("]", 600),
	} {
		_, err := Parse([]byte(in))
		var se *SyntaxError
		assert.True(t, errors.As(err, &se), "%q parsed: %v", in, err)
	}
	_, err := Parse([]byte(`{"a":1,"a":2}`))
	assert.ErrorContains(t, err, `duplicate object key "a"`)
	_, err = Parse([]byte(`{} x`))
	assert.ErrorContains(t, err, "trailing data")
	_, err = Parse([]byte(strings.Repeat("[", 500) + strings.Repeat("]", 500)))
	assert.NoError(t, err, "500 levels is within the limit")
}

func TestParseValues(t *testing.T) {
	v, err := Parse([]byte(`{"a":[true,false,null,"s",-1.5e3],"b":{}}`))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": []any{true, false, nil, "s", Number("-1.5e3")}, "b": map[string]any{}}, v)
	f, err := Number("-1.5e3").Float()
	require.NoError(t, err)
	assert.Equal(t, -1500.0, f)
	_, err = Number("1.5").Int()
	assert.Error(t, err)
}

func TestDigest(t *testing.T) {
	_, err := ParseDigest("abc")
	assert.ErrorContains(t, err, "want 64 hex digits")
	_, err = ParseDigest(strings.Repeat("g", 64))
	assert.Error(t, err)
	d, err := ParseDigest(strings.Repeat("AB", 32))
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("ab", 32), d.Hex())
	assert.True(t, SameHash(strings.Repeat("ab", 32), strings.Repeat("AB", 32)))
	assert.False(t, SameHash("", ""))
	_, err = HashBytes([]byte(`[1]`))
	assert.ErrorIs(t, err, errNotObject)
}

// FuzzCanonical: whatever parses re-encodes canonically, and the canonical form
// is a fixed point: canonical(parse(canonical(x))) == canonical(x). The parser
// never accepts what encoding/json rejects.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{protocolVector, `{"x":1.50,"y":1E2}`, `"\u007f\u0085"`, `[1,2,{"a":null}]`, `{"a":1,"a":2}`, `"\ud83d\ude00"`, `-0.0e-0`, `{"é":"✓"}`, "\"\\u00e9\\/\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Parse accepted what encoding/json rejects: %q", data)
		}
		c1, err := Canonical(v)
		if err != nil {
			t.Fatalf("canonical of parsed %q: %v", data, err)
		}
		v2, err := Parse(c1)
		if err != nil {
			t.Fatalf("canonical output %q does not parse: %v", c1, err)
		}
		c2, err := Canonical(v2)
		if err != nil || string(c1) != string(c2) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", c1, c2, err)
		}
		if !json.Valid(c1) {
			t.Fatalf("canonical output is not valid JSON: %q", c1)
		}
	})
}

// FuzzCanonicalFloat: floats encode without exponent and round-trip exactly.
func FuzzCanonicalFloat(f *testing.F) {
	for _, x := range []float64{0, 3, 0.1, 1e21, 1e-7, 5e-324, math.MaxFloat64, -2.5} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		b, err := Canonical(x)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			if err == nil {
				t.Fatalf("%v encoded", x)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if strings.ContainsAny(s, "eE") || !strings.Contains(s, ".") {
			t.Fatalf("%v encoded as %s", x, s)
		}
		var back float64
		if err := json.Unmarshal(b, &back); err != nil || back != x {
			t.Fatalf("%v -> %s -> %v (%v)", x, s, back, err)
		}
	})
}
