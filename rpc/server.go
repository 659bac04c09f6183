package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DefaultMaxRequestBytes caps a request body read by the server helpers.
const DefaultMaxRequestBytes = 1 << 20

// Request is a decoded request envelope.
type Request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// HandlerFunc answers one method. Returning an *Error sends it as is; any other
// error is sent as -32603 internal error.
type HandlerFunc func(ctx context.Context, params json.RawMessage) (any, error)

// Mux dispatches requests by method name.
type Mux struct {
	methods map[string]HandlerFunc
	// MaxBody caps the request body; 0 means DefaultMaxRequestBytes.
	MaxBody int64
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{methods: map[string]HandlerFunc{}} }

// Handle registers h for method, replacing any earlier handler.
func (m *Mux) Handle(method string, h HandlerFunc) { m.methods[method] = h }

// Has says whether method is registered.
func (m *Mux) Has(method string) bool { _, ok := m.methods[method]; return ok }

// Dispatch runs the handler of req.Method.
func (m *Mux) Dispatch(ctx context.Context, req *Request) (any, *Error) {
	h, ok := m.methods[req.Method]
	if !ok {
		return nil, &Error{Code: CodeMethodNotFound, Message: "method not found: " + req.Method}
	}
	res, err := h(ctx, req.Params)
	if err != nil {
		var je *Error
		if errors.As(err, &je) {
			return nil, je
		}
		return nil, &Error{Code: CodeInternal, Message: err.Error()}
	}
	return res, nil
}

// ServeHTTP reads one request, dispatches it and writes the answer.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, jerr := ReadRequest(w, r, m.MaxBody)
	if jerr != nil {
		WriteError(w, nil, jerr, http.StatusOK)
		return
	}
	res, jerr := m.Dispatch(r.Context(), req)
	if jerr != nil {
		WriteError(w, req.ID, jerr, http.StatusOK)
		return
	}
	WriteResult(w, req.ID, res)
}

// ReadRequest reads and decodes a request body of at most max bytes (0 means
// DefaultMaxRequestBytes). An over-long body is -32600, as the contract says.
func ReadRequest(w http.ResponseWriter, r *http.Request, max int64) (*Request, *Error) {
	if r.Method != http.MethodPost {
		return nil, &Error{Code: CodeInvalidRequest, Message: "JSON-RPC requests are HTTP POST"}
	}
	if max <= 0 {
		max = DefaultMaxRequestBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("request body over %d bytes", max)}
		}
		return nil, &Error{Code: CodeParseError, Message: "reading the request body: " + err.Error()}
	}
	return DecodeRequest(body)
}

// DecodeRequest parses a request envelope strictly: an object with jsonrpc "2.0",
// a non-empty string method, and params that are absent, null or an object.
func DecodeRequest(body []byte) (*Request, *Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &Error{Code: CodeInvalidRequest, Message: "empty request body"}
	}
	if body[0] == '[' {
		return nil, &Error{Code: CodeInvalidRequest, Message: "batch requests are not supported"}
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &Error{Code: CodeParseError, Message: "parse error: " + err.Error()}
	}
	switch {
	case req.JSONRPC != "2.0":
		return nil, &Error{Code: CodeInvalidRequest, Message: `field "jsonrpc" must be "2.0"`}
	case req.Method == "":
		return nil, &Error{Code: CodeInvalidRequest, Message: `field "method" is missing or empty`}
	}
	p := bytes.TrimSpace(req.Params)
	switch {
	case len(p) == 0 || string(p) == "null":
		req.Params = json.RawMessage("{}")
	case p[0] != '{':
		return nil, &Error{Code: CodeInvalidParams, Message: `field "params" must be an object`}
	}
	return &req, nil
}

// BindParams decodes params into v, rejecting unknown fields, and names the
// offending field in the -32602 error.
func BindParams(params json.RawMessage, v any) *Error {
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		msg := err.Error()
		if errors.As(err, &ute) {
			msg = fmt.Sprintf("param %q: want %s, got %s", ute.Field, ute.Type, ute.Value)
		} else if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			msg = "unknown param " + f
		}
		return &Error{Code: CodeInvalidParams, Message: "invalid params: " + msg}
	}
	return nil
}

// WriteResult writes a success envelope.
func WriteResult(w http.ResponseWriter, id json.RawMessage, result any) {
	raw, err := json.Marshal(result)
	if err != nil {
		WriteError(w, id, &Error{Code: CodeInternal, Message: "encoding result: " + err.Error()}, http.StatusOK)
		return
	}
	writeEnvelope(w, http.StatusOK, id, `"result":`, raw)
}

// WriteError writes an error envelope with the given HTTP status (200 for all
// but rate limits, which may use 429).
func WriteError(w http.ResponseWriter, id json.RawMessage, e *Error, status int) {
	raw, err := json.Marshal(e)
	if err != nil { // data that is not valid JSON: send the error without it
		raw, _ = json.Marshal(&Error{Code: e.Code, Message: e.Message})
	}
	writeEnvelope(w, status, id, `"error":`, raw)
}

func writeEnvelope(w http.ResponseWriter, status int, id json.RawMessage, key string, payload []byte) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	var b bytes.Buffer
	b.Grow(len(payload) + len(id) + 40)
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(id)
	b.WriteByte(',')
	b.WriteString(key)
	b.Write(payload)
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
