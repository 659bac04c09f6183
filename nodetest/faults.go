package nodetest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/theblock/tbops/rpc"
)

// Fault is injected into the answers to one method ("" for every method,
// "/metrics" for the metrics endpoint).
type Fault struct {
	Method string `json:"method"`
	// Latency delays the answer (the request's context still ends it).
	Latency time.Duration `json:"latency,omitempty"`
	// ErrorCode, when not 0, answers with this JSON-RPC error instead.
	ErrorCode    int    `json:"error_code,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
	// HTTPStatus, when not 0, is the HTTP status of that error answer (429, 502…).
	HTTPStatus int `json:"http_status,omitempty"`
	// RetryAfter sets the Retry-After header (whole seconds) of that answer.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// Body, when set, is sent verbatim instead of any JSON-RPC answer (an HTML
	// page from a proxy, truncated JSON).
	Body string `json:"body,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
}

// SetFault injects f for f.Method, replacing an earlier fault for that method.
func (n *Node) SetFault(f Fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults[f.Method] = f
}

// SetLatency delays answers to method ("" for all).
func (n *Node) SetLatency(method string, d time.Duration) {
	n.SetFault(Fault{Method: method, Latency: d})
}

// FailMethod answers method with a JSON-RPC error.
func (n *Node) FailMethod(method string, code int, message string) {
	n.SetFault(Fault{Method: method, ErrorCode: code, ErrorMessage: message})
}

// DropConnections closes connections that call method without answering.
func (n *Node) DropConnections(method string) { n.SetFault(Fault{Method: method, Drop: true}) }

// ClearFaults removes every injected fault.
func (n *Node) ClearFaults() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults = map[string]Fault{}
}

func (n *Node) fault(method string) (Fault, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f, ok := n.faults[method]; ok {
		return f, true
	}
	f, ok := n.faults[""]
	return f, ok
}

// recordAndFault finds the method of a JSON-RPC request, records its params,
// and applies any fault for it before the real handler runs.
func (n *Node) recordAndFault(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rpc.DefaultMaxRequestBytes))
		if err != nil {
			rpc.WriteError(w, nil, &rpc.Error{Code: rpc.CodeInvalidRequest, Message: "request body over the limit"}, http.StatusOK)
			return
		}
		var env struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		_ = json.Unmarshal(body, &env) // a bad envelope is the real handler's to answer
		if env.Method != "" {
			n.mu.Lock()
			n.calls[env.Method] = append(n.calls[env.Method], env.Params)
			n.mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		n.withFaults(env.Method, env.ID, next).ServeHTTP(w, r)
	})
}

func (n *Node) withFaults(method string, id json.RawMessage, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := n.fault(method)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if f.Latency > 0 {
			t := time.NewTimer(f.Latency)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		switch {
		case f.Drop:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler) // closes the connection without a response
		case f.Body != "":
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", itoa(int64(f.RetryAfter/time.Second)))
			}
			status := f.HTTPStatus
			if status == 0 {
				status = http.StatusOK
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, f.Body)
		case f.ErrorCode != 0:
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", itoa(int64(f.RetryAfter/time.Second)))
			}
			status := f.HTTPStatus
			if status == 0 {
				status = http.StatusOK
			}
			msg := f.ErrorMessage
			if msg == "" {
				msg = "injected fault"
			}
			rpc.WriteError(w, id, &rpc.Error{Code: f.ErrorCode, Message: msg}, status)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
