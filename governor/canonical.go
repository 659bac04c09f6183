package governor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Number is a JSON number kept as its literal, so that re-encoding a parsed
// decision file writes each number exactly as the file did (PROTOCOL.md section 6).
type Number string

// Float returns the number as a float64.
func (n Number) Float() (float64, error) { return strconv.ParseFloat(string(n), 64) }

// Int returns the number as an int64; it fails for a literal with a fraction or
// exponent, or out of range.
func (n Number) Int() (int64, error) { return strconv.ParseInt(string(n), 10, 64) }

// String returns the literal.
func (n Number) String() string { return string(n) }

// SyntaxError is invalid JSON: what is wrong and the byte offset where it was found.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 512

// Parse reads exactly one JSON value strictly: RFC 8259 grammar, valid UTF-8,
// no duplicate object keys (at any level), no lone surrogate escapes, nothing
// but whitespace after the value, nesting at most 512 deep. Objects become
// map[string]any, arrays []any, numbers [Number] (literal kept), strings string,
// and true/false/null bool/nil.
func Parse(data []byte) (any, error) {
	p := parser{data: data}
	p.skipWS()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipWS()
	if p.pos != len(p.data) {
		return nil, p.errorf("trailing data after the JSON value")
	}
	return v, nil
}

type parser struct {
	data []byte
	pos  int
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipWS() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d", maxDepth)
	}
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case bytes.HasPrefix(p.data[p.pos:], []byte("true")):
		p.pos += 4
		return true, nil
	case bytes.HasPrefix(p.data[p.pos:], []byte("false")):
		p.pos += 5
		return false, nil
	case bytes.HasPrefix(p.data[p.pos:], []byte("null")):
		p.pos += 4
		return nil, nil
	default:
		return nil, p.errorf("unexpected character %q", rune(c))
	}
}

func (p *parser) object(depth int) (any, error) {
	p.pos++ // {
	obj := map[string]any{}
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return obj, nil
	}
	for {
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("expected an object key string")
		}
		keyAt := p.pos
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[k]; dup {
			return nil, &SyntaxError{Offset: keyAt, Msg: fmt.Sprintf("duplicate object key %q", k)}
		}
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("expected ':' after object key %q", k)
		}
		p.pos++
		p.skipWS()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj[k] = v
		p.skipWS()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return obj, nil
		default:
			return nil, p.errorf("expected ',' or '}' in an object")
		}
	}
}

func (p *parser) array(depth int) (any, error) {
	p.pos++ // [
	arr := []any{}
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return arr, nil
	}
	for {
		p.skipWS()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.skipWS()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return arr, nil
		default:
			return nil, p.errorf("expected ',' or ']' in an array")
		}
	}
}

func (p *parser) number() (any, error) {
	start := p.pos
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return nil, p.errorf("invalid number: expected a digit")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return nil, p.errorf("invalid number: expected a digit after '.'")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return nil, p.errorf("invalid number: expected a digit in the exponent")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	p.pos = i
	return Number(d[start:i]), nil
}

func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	d := p.data
	// Fast path: no escapes.
	start := p.pos
	for i := start; i < len(d); i++ {
		c := d[i]
		if c == '"' {
			if !utf8.Valid(d[start:i]) {
				p.pos = start
				return "", p.errorf("string is not valid UTF-8")
			}
			p.pos = i + 1
			return string(d[start:i]), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	var b strings.Builder
	for {
		if p.pos >= len(d) {
			return "", p.errorf("unterminated string")
		}
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c < 0x20:
			return "", p.errorf("unescaped control character %#02x in a string", c)
		case c == '\\':
			if p.pos+1 >= len(d) {
				return "", p.errorf("unterminated escape")
			}
			e := d[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xDC00 || p.pos+1 >= len(d) || d[p.pos] != '\\' || d[p.pos+1] != 'u' {
						return "", p.errorf("lone surrogate \\u%04X", r)
					}
					p.pos += 2
					r2, err := p.hex4()
					if err != nil {
						return "", err
					}
					pair := utf16.DecodeRune(r, r2)
					if pair == utf8.RuneError {
						return "", p.errorf("invalid surrogate pair \\u%04X\\u%04X", r, r2)
					}
					r = pair
				}
				b.WriteRune(r)
			default:
				return "", p.errorf("invalid escape \\%c", e)
			}
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(d[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.errorf("string is not valid UTF-8")
			}
			b.Write(d[p.pos : p.pos+size])
			p.pos += size
		}
	}
}

func (p *parser) hex4() (rune, error) {
	if p.pos+4 > len(p.data) {
		return 0, p.errorf("short \\u escape")
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, p.errorf("invalid hex digit %q in a \\u escape", rune(c))
		}
	}
	p.pos += 4
	return r, nil
}

// Canonical returns the canonical encoding of v (PROTOCOL.md section 6): compact;
// object keys sorted by byte order at every level; arrays in order; strings
// escaping only `"`, `\` and control characters (\n \r \t, the rest — U+007F to
// U+009F too — as \u00XX with upper-case hex), everything else raw UTF-8;
// integers in plain decimal; a float with no fractional part as "3.0", any other
// float in the shortest round-trip decimal, never with an exponent; a [Number]
// (or json.Number) as its literal.
//
// v may be a value from [Parse]; nil, bool, string, any integer or float kind,
// [Number], json.Number, json.RawMessage (parsed strictly and re-encoded), maps
// with string keys, slices, arrays, pointers and structs (exported fields named
// by their json tags, with "-" and omitempty honoured; embedded structs are not
// flattened). NaN, infinities, invalid UTF-8 and other types are errors.
func Canonical(v any) ([]byte, error) {
	var e encoder
	if err := e.encode(v); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// Recanonicalize parses data strictly ([Parse]) and returns its canonical
// encoding with every number literal kept as written.
func Recanonicalize(data []byte) ([]byte, error) {
	v, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return Canonical(v)
}

// UnsupportedValueError is a Go value the canonical encoder cannot write.
type UnsupportedValueError struct {
	Path string
	Msg  string
}

func (e *UnsupportedValueError) Error() string {
	if e.Path == "" {
		return "canonical JSON: " + e.Msg
	}
	return fmt.Sprintf("canonical JSON: at %s: %s", e.Path, e.Msg)
}

type encoder struct {
	buf  []byte
	path []string
}

func (e *encoder) fail(format string, args ...any) error {
	return &UnsupportedValueError{Path: strings.Join(e.path, ""), Msg: fmt.Sprintf(format, args...)}
}

func (e *encoder) encode(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
		return nil
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
		return nil
	case string:
		return e.str(x)
	case Number:
		return e.number(string(x))
	case json.Number:
		return e.number(string(x))
	case json.RawMessage:
		pv, err := Parse(x)
		if err != nil {
			return e.fail("raw JSON: %v", err)
		}
		return e.encode(pv)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
		return nil
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
		return nil
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
		return nil
	case float64:
		return e.float(x, 64)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys) // Go string order is byte order
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.str(k); err != nil {
				return err
			}
			e.buf = append(e.buf, ':')
			e.path = append(e.path, "."+k)
			if err := e.encode(x[k]); err != nil {
				return err
			}
			e.path = e.path[:len(e.path)-1]
		}
		e.buf = append(e.buf, '}')
		return nil
	case []any:
		e.buf = append(e.buf, '[')
		for i, el := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.path = append(e.path, "["+strconv.Itoa(i)+"]")
			if err := e.encode(el); err != nil {
				return err
			}
			e.path = e.path[:len(e.path)-1]
		}
		e.buf = append(e.buf, ']')
		return nil
	}
	return e.reflectValue(reflect.ValueOf(v))
}

func (e *encoder) reflectValue(rv reflect.Value) error {
	switch rv.Kind() {
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, rv.Uint(), 10)
	case reflect.Float32:
		return e.float(rv.Float(), 32)
	case reflect.Float64:
		return e.float(rv.Float(), 64)
	case reflect.String:
		if rv.Type() == reflect.TypeFor[Number]() || rv.Type() == reflect.TypeFor[json.Number]() {
			return e.number(rv.String())
		}
		return e.str(rv.String())
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.encode(rv.Elem().Interface())
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return e.fail("map key type %s: only string keys are JSON", rv.Type().Key())
		}
		if rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return e.encode(m)
	case reflect.Slice:
		if rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		fallthrough
	case reflect.Array:
		arr := make([]any, rv.Len())
		for i := range arr {
			arr[i] = rv.Index(i).Interface()
		}
		return e.encode(arr)
	case reflect.Struct:
		m := map[string]any{}
		t := rv.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && opts == "" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fv := rv.Field(i)
			if strings.Contains(","+opts+",", ",omitempty,") && isEmpty(fv) {
				continue
			}
			m[name] = fv.Interface()
		}
		return e.encode(m)
	default:
		if !rv.IsValid() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.fail("unsupported type %s", rv.Type())
	}
	return nil
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	}
	return v.IsZero()
}

// float writes f: "3.0" for a whole value, else the shortest decimal that
// round-trips at the given bit size, never with an exponent.
func (e *encoder) float(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return e.fail("%v is not a JSON number", f)
	}
	start := len(e.buf)
	e.buf = strconv.AppendFloat(e.buf, f, 'f', -1, bits)
	if bytes.IndexByte(e.buf[start:], '.') < 0 {
		e.buf = append(e.buf, ".0"...)
	}
	return nil
}

func (e *encoder) number(lit string) error {
	if !validNumber(lit) {
		return e.fail("%q is not a JSON number literal", lit)
	}
	e.buf = append(e.buf, lit...)
	return nil
}

func validNumber(lit string) bool {
	if lit == "" {
		return false
	}
	p := parser{data: []byte(lit)}
	if _, err := p.number(); err != nil {
		return false
	}
	return p.pos == len(lit)
}

const hexUpper = "0123456789ABCDEF"

func (e *encoder) str(s string) error {
	if !utf8.ValidString(s) {
		return e.fail("string %q is not valid UTF-8", s)
	}
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x7F {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r > 0x9F {
				i += size
				continue
			}
			// U+0080–U+009F: C1 control characters are escaped too.
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, '\\', 'u', '0', '0', hexUpper[r>>4], hexUpper[r&0xF])
			i += size
			start = i
			continue
		}
		e.buf = append(e.buf, s[start:i]...)
		switch c {
		case '"':
			e.buf = append(e.buf, '\\', '"')
		case '\\':
			e.buf = append(e.buf, '\\', '\\')
		case '\n':
			e.buf = append(e.buf, '\\', 'n')
		case '\r':
			e.buf = append(e.buf, '\\', 'r')
		case '\t':
			e.buf = append(e.buf, '\\', 't')
		default: // other C0 controls and DEL
			e.buf = append(e.buf, '\\', 'u', '0', '0', hexUpper[c>>4], hexUpper[c&0xF])
		}
		i++
		start = i
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
	return nil
}

// errNotObject is returned when a decision is not a JSON object.
var errNotObject = errors.New("decision is not a JSON object")
