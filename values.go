package tbops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// Number is what a symptom's, alert's or SLO's value may be built from.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// Num returns a pointer to v as a float64, for Symptom.Value, Threshold and the
// like, where nil means unknown. NaN and ±Inf are not JSON numbers: they give nil.
func Num[T Number](v T) *float64 {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// Raw is a JSON value kept as its compact encoding: an evidence value or a
// symptom's detail, whatever its shape (a string, a list of ids, an object).
// Keeping the encoding rather than a Go value of mixed dynamic type makes a
// Report survive a JSON round trip unchanged. The zero Raw is JSON null.
type Raw []byte

// RawOf encodes v. A value that cannot be encoded (a channel, a NaN) becomes a
// JSON string saying so, so that building evidence never fails.
func RawOf(v any) Raw {
	if v == nil {
		return nil
	}
	if r, ok := v.(Raw); ok {
		return r
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprintf("unencodable %T: %v", v, err))
	}
	if string(b) == "null" {
		return nil
	}
	return Raw(b)
}

// MarshalJSON writes the value, or null.
func (r Raw) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// UnmarshalJSON keeps the value in compact form; null becomes the zero Raw.
func (r *Raw) UnmarshalJSON(b []byte) error {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	if buf.String() == "null" {
		*r = nil
		return nil
	}
	*r = Raw(buf.Bytes())
	return nil
}

// Decode unmarshals the value into v.
func (r Raw) Decode(v any) error {
	b, _ := r.MarshalJSON()
	return json.Unmarshal(b, v)
}

// String is the value for people: a JSON string without its quotes, anything
// else as compact JSON, "null" for none.
func (r Raw) String() string {
	if len(r) == 0 {
		return "null"
	}
	if r[0] == '"' {
		var s string
		if json.Unmarshal(r, &s) == nil {
			return s
		}
	}
	return string(r)
}
