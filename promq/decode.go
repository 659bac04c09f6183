package promq

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/prometheus/common/model"
	"github.com/tidwall/gjson"
)

// Annotations are what a Prometheus-compatible server says besides the data:
// "warnings" (partial data, ignored matchers, …) and "infos" (Prometheus 2.46+
// PromQL info annotations). Both are kept verbatim.
type Annotations struct {
	Warnings []string `json:"warnings,omitempty"`
	Infos    []string `json:"infos,omitempty"`
}

// QueryResult is a decoded /api/v1/query or /api/v1/query_range answer.
type QueryResult struct {
	// Type is the resultType: vector, matrix, scalar or string.
	Type model.ValueType `json:"resultType"`
	// Value is a model.Vector, model.Matrix, *model.Scalar or *model.String.
	Value model.Value `json:"result"`
	Annotations
}

// Vector returns the result as a vector (nil when it is not one).
func (r *QueryResult) Vector() model.Vector {
	v, _ := r.Value.(model.Vector)
	return v
}

// Matrix returns the result as a matrix (nil when it is not one).
func (r *QueryResult) Matrix() model.Matrix {
	m, _ := r.Value.(model.Matrix)
	return m
}

// HasHistograms says whether any sample of the result is a native histogram.
func (r *QueryResult) HasHistograms() bool {
	switch v := r.Value.(type) {
	case model.Vector:
		for _, s := range v {
			if s.Histogram != nil {
				return true
			}
		}
	case model.Matrix:
		for _, s := range v {
			if len(s.Histograms) > 0 {
				return true
			}
		}
	}
	return false
}

// envelope is the decoded common part of every API answer.
type envelope struct {
	data gjson.Result
	Annotations
	errType, errMsg string
	failed          bool
}

// decodeEnvelope checks that body is the API's JSON and splits it. body must
// not change while the returned gjson values are in use; every string that
// outlives the call is copied.
func decodeEnvelope(body []byte) (envelope, error) {
	if len(body) == 0 {
		return envelope{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if looksLikeHTML(body) {
		return envelope{}, fmt.Errorf("%w: got an HTML page, not the Prometheus API's JSON (a proxy or login page? check the URL): %s", ErrMalformed, snippet(body))
	}
	if !gjson.ValidBytes(body) {
		return envelope{}, fmt.Errorf("%w: not valid JSON (truncated?): %s", ErrMalformed, snippet(body))
	}
	// The body is only read and every string kept is cloned, so viewing it as a
	// string without a copy is safe.
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	if !root.IsObject() {
		return envelope{}, fmt.Errorf("%w: want a JSON object, got %s", ErrMalformed, snippet(body))
	}
	var env envelope
	var status gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "status":
			status = v
		case "data":
			env.data = v
		case "warnings":
			env.Warnings = stringsOf(v)
		case "infos":
			env.Infos = stringsOf(v)
		case "errorType":
			env.errType = strings.Clone(v.String())
		case "error":
			env.errMsg = strings.Clone(v.String())
		}
		return true
	})
	switch status.Str {
	case "success":
		if !env.data.Exists() {
			return env, fmt.Errorf("%w: status success without data", ErrMalformed)
		}
	case "error":
		env.failed = true
	default:
		return env, fmt.Errorf("%w: missing or unknown status %q", ErrMalformed, status.Raw)
	}
	return env, nil
}

func stringsOf(v gjson.Result) []string {
	if !v.IsArray() {
		return nil
	}
	var out []string
	v.ForEach(func(_, s gjson.Result) bool {
		out = append(out, strings.Clone(s.String()))
		return true
	})
	return out
}

// DecodeQueryResponse decodes the body of a /api/v1/query or
// /api/v1/query_range answer. An API error ("status":"error") is an *APIError
// without URL and query (the client adds them); anything that is not the API's
// JSON wraps ErrMalformed; an unknown result type wraps ErrUnsupported. Native
// histogram samples are decoded into Sample.Histogram and
// SampleStream.Histograms.
func DecodeQueryResponse(body []byte) (*QueryResult, error) {
	env, err := decodeEnvelope(body)
	if err != nil {
		return nil, err
	}
	if env.failed {
		return nil, &APIError{Type: env.errType, Message: env.errMsg, Kind: kindOf(env.errType, 0), Warnings: env.Warnings}
	}
	return decodeQueryData(env.data, env.Annotations)
}

func decodeQueryData(data gjson.Result, ann Annotations) (*QueryResult, error) {
	if !data.IsObject() {
		return nil, fmt.Errorf("%w: data is not an object", ErrMalformed)
	}
	var typ, result gjson.Result
	data.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "resultType":
			typ = v
		case "result":
			result = v
		}
		return true
	})
	res := &QueryResult{Annotations: ann}
	var err error
	switch typ.Str {
	case "vector":
		res.Type = model.ValVector
		res.Value, err = decodeVector(result)
	case "matrix":
		res.Type = model.ValMatrix
		res.Value, err = decodeMatrix(result)
	case "scalar":
		res.Type = model.ValScalar
		var p model.SamplePair
		p, err = decodePair(result)
		if err == nil {
			res.Value = &model.Scalar{Timestamp: p.Timestamp, Value: p.Value}
		}
	case "string":
		res.Type = model.ValString
		var t model.Time
		var s string
		t, s, err = decodeRawPair(result)
		if err == nil {
			res.Value = &model.String{Timestamp: t, Value: strings.Clone(s)}
		}
	case "":
		return nil, fmt.Errorf("%w: data.resultType missing", ErrMalformed)
	default:
		return nil, fmt.Errorf("%w: result type %q", ErrUnsupported, typ.Str)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func decodeVector(result gjson.Result) (model.Vector, error) {
	if !result.IsArray() {
		return nil, fmt.Errorf("%w: vector result is not an array", ErrMalformed)
	}
	vec := model.Vector{}
	var err error
	result.ForEach(func(_, e gjson.Result) bool {
		s := &model.Sample{Metric: model.Metric{}} // see decodeMetric: no metric is no labels
		var value, hist gjson.Result
		e.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "metric":
				s.Metric, err = decodeMetric(v)
			case "value":
				value = v
			case "histogram":
				hist = v
			}
			return err == nil
		})
		if err != nil {
			return false
		}
		switch {
		case value.Exists():
			var p model.SamplePair
			if p, err = decodePair(value); err != nil {
				return false
			}
			s.Timestamp, s.Value = p.Timestamp, p.Value
		case hist.Exists():
			var hp model.SampleHistogramPair
			if hp, err = decodeHistogramPair(hist); err != nil {
				return false
			}
			s.Timestamp, s.Histogram = hp.Timestamp, hp.Histogram
		default:
			err = fmt.Errorf("%w: vector sample without value or histogram", ErrMalformed)
			return false
		}
		vec = append(vec, s)
		return true
	})
	return vec, err
}

func decodeMatrix(result gjson.Result) (model.Matrix, error) {
	if !result.IsArray() {
		return nil, fmt.Errorf("%w: matrix result is not an array", ErrMalformed)
	}
	mat := model.Matrix{}
	var err error
	result.ForEach(func(_, e gjson.Result) bool {
		ss := &model.SampleStream{Metric: model.Metric{}} // see decodeMetric: no metric is no labels
		e.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "metric":
				ss.Metric, err = decodeMetric(v)
			case "values":
				ss.Values, err = decodePairs(v)
			case "histograms":
				if !v.IsArray() {
					err = fmt.Errorf("%w: histograms is not an array", ErrMalformed)
					break
				}
				v.ForEach(func(_, h gjson.Result) bool {
					var hp model.SampleHistogramPair
					if hp, err = decodeHistogramPair(h); err != nil {
						return false
					}
					ss.Histograms = append(ss.Histograms, hp)
					return true
				})
			}
			return err == nil
		})
		if err != nil {
			return false
		}
		mat = append(mat, ss)
		return true
	})
	return mat, err
}

// decodeMetric decodes a sample's label set. A missing or null "metric" is the
// empty label set, as Prometheus' own API client (prometheus/common/model)
// decodes it: it accepts such an entry, leaving a nil Metric, which reads as no
// labels. The result is never nil, so callers may add labels to it.
func decodeMetric(v gjson.Result) (model.Metric, error) {
	if v.Type == gjson.Null {
		return model.Metric{}, nil
	}
	if !v.IsObject() {
		return nil, fmt.Errorf("%w: metric is not an object", ErrMalformed)
	}
	m := model.Metric{}
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		if val.Type != gjson.String {
			err = fmt.Errorf("%w: label %q is not a string", ErrMalformed, k.Str)
			return false
		}
		m[model.LabelName(strings.Clone(k.Str))] = model.LabelValue(strings.Clone(val.Str))
		return true
	})
	return m, err
}

// decodePairs decodes [[ts,"v"],…] with a hand-written scanner over the
// already-validated JSON: no allocation besides the result slice.
func decodePairs(v gjson.Result) ([]model.SamplePair, error) {
	if !v.IsArray() {
		return nil, fmt.Errorf("%w: values is not an array", ErrMalformed)
	}
	raw := v.Raw
	// Each pair opens one '['; the outer array one more. Strings with '[' in
	// them only make this an overestimate.
	out := make([]model.SamplePair, 0, max(strings.Count(raw, "[")-1, 0))
	i := skipWS(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return out, nil
	}
	for i < len(raw) {
		if raw[i] != '[' {
			return nil, errBadPair
		}
		i = skipWS(raw, i+1)
		j := i
		for j < len(raw) && raw[j] != ',' && raw[j] != ' ' && raw[j] != '\t' && raw[j] != '\n' && raw[j] != '\r' {
			j++
		}
		t, err := parseTime(raw[i:j])
		if err != nil {
			return nil, err
		}
		i = skipWS(raw, j)
		if i >= len(raw) || raw[i] != ',' {
			return nil, errBadPair
		}
		i = skipWS(raw, i+1)
		if i >= len(raw) || raw[i] != '"' {
			return nil, errBadPair
		}
		j = i + 1
		for j < len(raw) && raw[j] != '"' && raw[j] != '\\' {
			j++
		}
		if j >= len(raw) || raw[j] == '\\' {
			return nil, errBadPair // sample values never need escapes
		}
		f, err := parseValue(raw[i+1 : j])
		if err != nil {
			return nil, err
		}
		out = append(out, model.SamplePair{Timestamp: t, Value: model.SampleValue(f)})
		i = skipWS(raw, j+1)
		if i >= len(raw) || raw[i] != ']' {
			return nil, errBadPair
		}
		i = skipWS(raw, i+1)
		if i >= len(raw) {
			return nil, errBadPair
		}
		if raw[i] == ']' {
			return out, nil
		}
		if raw[i] != ',' {
			return nil, errBadPair
		}
		i = skipWS(raw, i+1)
	}
	return nil, errBadPair
}

var errBadPair = fmt.Errorf("%w: a sample is not [timestamp, \"value\"]", ErrMalformed)

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// decodeRawPair decodes [ts, "s"].
func decodeRawPair(v gjson.Result) (model.Time, string, error) {
	if !v.IsArray() {
		return 0, "", errBadPair
	}
	var ts, val gjson.Result
	n := 0
	v.ForEach(func(_, e gjson.Result) bool {
		switch n {
		case 0:
			ts = e
		case 1:
			val = e
		}
		n++
		return true
	})
	if n != 2 || ts.Type != gjson.Number || val.Type != gjson.String {
		return 0, "", errBadPair
	}
	t, err := parseTime(ts.Raw)
	return t, val.Str, err
}

func decodePair(v gjson.Result) (model.SamplePair, error) {
	t, s, err := decodeRawPair(v)
	if err != nil {
		return model.SamplePair{}, err
	}
	f, err := parseValue(s)
	return model.SamplePair{Timestamp: t, Value: model.SampleValue(f)}, err
}

// parseTime parses the API's Unix time in seconds with up to millisecond
// decimals exactly (no float rounding): "1435781451.781" → 1435781451781 ms.
func parseTime(s string) (model.Time, error) {
	if s == "" {
		return 0, errBadPair
	}
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%w: bad timestamp %q", ErrMalformed, s)
		}
		return model.Time(math.Round(f * 1000)), nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
		return 0, fmt.Errorf("%w: bad timestamp %q", ErrMalformed, s)
	}
	ms := int64(0)
	for i := 0; i < 3; i++ {
		ms *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("%w: bad timestamp %q", ErrMalformed, s)
			}
			ms += int64(c - '0')
		}
	}
	for i := 3; i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return 0, fmt.Errorf("%w: bad timestamp %q", ErrMalformed, s)
		}
	}
	if strings.HasPrefix(sec, "-") {
		ms = -ms
	}
	return model.Time(n*1000 + ms), nil
}

// parseValue parses a sample value; "NaN", "+Inf" and "-Inf" included.
func parseValue(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: bad sample value %q", ErrMalformed, s)
	}
	return f, nil
}

// decodeHistogramPair decodes [ts, {"count":"…","sum":"…","buckets":[[b,"l","u","c"],…]}].
func decodeHistogramPair(v gjson.Result) (model.SampleHistogramPair, error) {
	bad := fmt.Errorf("%w: a histogram sample is not [timestamp, {count, sum, buckets}]", ErrMalformed)
	arr := v.Array()
	if len(arr) != 2 || arr[0].Type != gjson.Number || !arr[1].IsObject() {
		return model.SampleHistogramPair{}, bad
	}
	t, err := parseTime(arr[0].Raw)
	if err != nil {
		return model.SampleHistogramPair{}, err
	}
	h := &model.SampleHistogram{}
	obj := arr[1]
	for _, f := range []struct {
		key string
		dst *model.FloatString
	}{{"count", &h.Count}, {"sum", &h.Sum}} {
		r := obj.Get(f.key)
		if r.Type != gjson.String {
			return model.SampleHistogramPair{}, bad
		}
		x, err := parseValue(r.Str)
		if err != nil {
			return model.SampleHistogramPair{}, err
		}
		*f.dst = model.FloatString(x)
	}
	if b := obj.Get("buckets"); b.Exists() {
		if !b.IsArray() {
			return model.SampleHistogramPair{}, bad
		}
		for _, e := range b.Array() {
			parts := e.Array()
			if len(parts) != 4 || parts[0].Type != gjson.Number {
				return model.SampleHistogramPair{}, bad
			}
			hb := &model.HistogramBucket{Boundaries: int32(parts[0].Int())}
			for i, dst := range []*model.FloatString{&hb.Lower, &hb.Upper, &hb.Count} {
				if parts[i+1].Type != gjson.String {
					return model.SampleHistogramPair{}, bad
				}
				x, err := parseValue(parts[i+1].Str)
				if err != nil {
					return model.SampleHistogramPair{}, err
				}
				*dst = model.FloatString(x)
			}
			h.Buckets = append(h.Buckets, hb)
		}
	}
	return model.SampleHistogramPair{Timestamp: t, Histogram: h}, nil
}
