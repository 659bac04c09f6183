// Package nodetest is a simulated Fast-Mainnet node for tests and demos. It serves
// the wire contract (PROTOCOL.md) over real HTTP on loopback: JSON-RPC at "/" and
// Prometheus text metrics at "/metrics".
//
// A node runs a Scenario: the state behind every RPC method and the metric series
// it exposes. Counters grow linearly with the node's clock (Series.PerSecond), so
// a real Prometheus scraping the node sees real rates, and a test with a FakeClock
// sees exact ones. Scenarios exist for every runbook symptom (see Scenarios); faults
// (latency, error codes, dropped connections) can be injected per method at any time.
package nodetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/theblock/tbops/rpc"
)

// Node is a running simulated node. All methods are safe for concurrent use.
type Node struct {
	now   func() time.Time
	start time.Time

	mu     sync.Mutex
	sc     Scenario
	faults map[string]Fault // by method; "" applies to every method
	calls  map[string][]json.RawMessage

	mux         *rpc.Mux
	middlewares []func(http.Handler) http.Handler
	ln          net.Listener
	srv         *http.Server
	done        chan struct{}
	cleanups    []func()
	gov         *governorFiles // decision files, written on first use (governor.go)
}

// Option configures New.
type Option func(*config)

type config struct {
	addr     string
	now      func() time.Time
	scenario *Scenario
	name     string
}

// WithAddr sets the listen address (default "127.0.0.1:0", a free loopback port).
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithClock injects the node's clock. Block height, counters and timestamps all
// follow it.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithScenario runs the given scenario (default: "healthy").
func WithScenario(s Scenario) Option { return func(c *config) { c.scenario = &s } }

// WithScenarioName runs a built-in or embedded scenario by name.
func WithScenarioName(name string) Option { return func(c *config) { c.name = name } }

// New starts a simulated node. Close it when done.
func New(opts ...Option) (*Node, error) {
	cfg := config{addr: "127.0.0.1:0", now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	n := &Node{now: cfg.now, start: cfg.now(), faults: map[string]Fault{}, calls: map[string][]json.RawMessage{},
		mux: rpc.NewMux(), done: make(chan struct{})}
	switch {
	case cfg.scenario != nil:
		n.sc = *cfg.scenario
	case cfg.name != "":
		sc, err := LookupScenario(cfg.name, n.start)
		if err != nil {
			return nil, err
		}
		n.sc = sc
	default:
		n.sc = Healthy(n.start)
	}
	for _, f := range n.sc.Faults {
		n.faults[f.Method] = f
	}
	n.registerNode()
	n.registerTreasury()
	n.registerEnergy()
	n.registerReceipts()
	n.registerGovernor()
	n.registerRuntime()

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		for _, f := range n.cleanups {
			f()
		}
		return nil, fmt.Errorf("nodetest: listen on %s: %w", cfg.addr, err)
	}
	n.ln = ln
	var rpc http.Handler = n.mux
	for _, m := range n.middlewares {
		rpc = m(rpc)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", n.withFaults("/metrics", nil, http.HandlerFunc(n.serveMetrics)))
	mux.Handle("GET "+explorerPath, n.withFaults(explorerPath, nil, http.HandlerFunc(n.serveExplorer)))
	mux.Handle("/", n.recordAndFault(rpc))
	n.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(n.done)
		_ = n.srv.Serve(ln)
	}()
	return n, nil
}

// TB is the part of testing.TB that Start uses.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// Start is New for tests: it fails the test on error and closes the node at cleanup.
func Start(t TB, opts ...Option) *Node {
	t.Helper()
	n, err := New(opts...)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// URL is the JSON-RPC endpoint, with a trailing slash as the node's default.
func (n *Node) URL() string { return "http://" + n.ln.Addr().String() + "/" }

// ExplorerURL is the simulated explorer's endpoint for the receipts runbook's
// "explorer receipt tables not updating" check: GET answers
// {"latest_receipt_height": N}, ReceiptsState.ExplorerLag blocks behind the
// node's newest receipt.
func (n *Node) ExplorerURL() string { return "http://" + n.ln.Addr().String() + explorerPath }

// MetricsURL is the Prometheus metrics endpoint.
func (n *Node) MetricsURL() string { return "http://" + n.ln.Addr().String() + "/metrics" }

// Addr is the host:port the node listens on.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Now is the node's clock.
func (n *Node) Now() time.Time { return n.now() }

// Started is the instant the node started; metric series are measured from it.
func (n *Node) Started() time.Time { return n.start }

// Close stops the server and waits for it.
func (n *Node) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := n.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = n.srv.Close()
	}
	<-n.done
	for i := len(n.cleanups) - 1; i >= 0; i-- {
		n.cleanups[i]()
	}
	return err
}

// onClose registers f to run when the node closes (removing files an area wrote).
func (n *Node) onClose(f func()) { n.cleanups = append(n.cleanups, f) }

// Scenario returns a copy of the running scenario's top level. Nested slices and
// maps are shared: change state through Update.
func (n *Node) Scenario() Scenario {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sc
}

// Update changes the running scenario under the node's lock.
func (n *Node) Update(f func(s *Scenario)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(&n.sc)
}

// view runs f with the scenario and the node's current time under the lock;
// handlers use it to read (and change) state.
func (n *Node) view(f func(s *Scenario, now time.Time)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(&n.sc, n.now())
}

// elapsed is the node-clock time since start, in seconds (never negative).
func (n *Node) elapsed(now time.Time) float64 {
	d := now.Sub(n.start).Seconds()
	if d < 0 {
		return 0
	}
	return d
}

// Calls returns the params of each call of method received so far, in order.
func (n *Node) Calls(method string) []json.RawMessage {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]json.RawMessage(nil), n.calls[method]...)
}

// handle registers a JSON-RPC method.
func (n *Node) handle(method string, h rpc.HandlerFunc) { n.mux.Handle(method, h) }

// use adds a middleware in front of the JSON-RPC handler (the energy guard, say).
func (n *Node) use(m func(http.Handler) http.Handler) { n.middlewares = append(n.middlewares, m) }
