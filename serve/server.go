package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// Server is the continuous doctor: it runs every runbook against every node
// each interval, keeps the metrics history the runbooks' windows need, and
// answers /metrics, /probe, the JSON API and the status page (Handler). It is
// safe for concurrent use.
type Server struct {
	cfg      config
	runbooks Runbooks
	nodes    []*nodeState
	byLabel  map[string]*nodeState
	columns  []string // runbook ids in the order the page shows them

	workers  chan struct{}
	scrapes  chan struct{}
	probes   chan struct{}
	durs     *runDurations
	handler  http.Handler
	pages    pages
	running  atomic.Bool
	closed   atomic.Bool
	closeSrc sync.Once

	mu    sync.Mutex
	cells map[cellKey]*cell

	book *alertBook // the Alertmanager webhook's state; nil when it is off
}

// nodeState is one node, its metrics source and its runbooks.
type nodeState struct {
	node     Node
	label    string
	scrape   *promq.Scrape // serve's own history; nil with WithSource
	src      promq.Source
	runbooks []tbops.Runbook
	running  atomic.Bool // a run is in flight
	scraping atomic.Bool // a scrape is in flight

	// Under Server.mu: whether the node is up, when known.
	up, upKnown bool
}

type cellKey struct{ node, runbook string }

// cell is what serve knows of one runbook on one node.
type cell struct {
	report tbops.Report
	has    bool // a report exists, from a run or restored from the state file
	fresh  bool // the report is from a run of this process
	// lastRun is when this process last finished a run of it.
	lastRun time.Time
	recent  []Transition // newest last, at most recentPerCell, without reports
}

// New returns a server for the nodes, running what runbooks builds for each
// (the runbooks are built here, once per node). With WithStore it reads the
// last verdicts and recent transitions back from the state file. Nothing runs
// until Run, Serve, RunOnce or Scrape; Close releases the metrics sources.
func New(ctx context.Context, nodes []Node, runbooks Runbooks, opts ...Option) (*Server, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if runbooks == nil {
		return nil, fmt.Errorf("%w: no runbooks", ErrInvalidConfig)
	}
	s := &Server{cfg: cfg, runbooks: runbooks, byLabel: map[string]*nodeState{}, cells: map[cellKey]*cell{},
		workers: make(chan struct{}, cfg.workers), scrapes: make(chan struct{}, maxConcurrentScrapes),
		probes: make(chan struct{}, cfg.probeConcurrent), durs: newRunDurations()}
	for _, n := range nodes {
		ns, err := s.newNodeState(n)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.nodes = append(s.nodes, ns)
		s.byLabel[ns.label] = ns
	}
	if err := s.restore(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.alertRunbooks != nil {
		if err := s.newAlertBook(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.pages = parsePages()
	s.handler = s.newHandler()
	return s, nil
}

// newNodeState validates a node and sets up its source and runbooks.
func (s *Server) newNodeState(n Node) (*nodeState, error) {
	if err := checkNodeURL(n.URL); err != nil {
		return nil, fmt.Errorf("%w: node %v", ErrInvalidConfig, err)
	}
	if n.MetricsURL != "" {
		if err := checkNodeURL(n.MetricsURL); err != nil {
			return nil, fmt.Errorf("%w: metrics URL of %s: %v", ErrInvalidConfig, n.Label(), err)
		}
	}
	ns := &nodeState{node: n, label: n.Label()}
	if _, dup := s.byLabel[ns.label]; dup {
		return nil, fmt.Errorf("%w: node %s is listed twice", ErrInvalidConfig, ns.label)
	}
	ns.src, ns.scrape = s.sourceFor(n)
	ns.runbooks = s.runbooks(n, ns.src)
	ids := map[string]bool{}
	for _, rb := range ns.runbooks {
		if ids[rb.ID()] {
			if ns.scrape != nil {
				ns.scrape.Close()
			}
			return nil, fmt.Errorf("%w: two runbooks of %s have the id %q", ErrInvalidConfig, ns.label, rb.ID())
		}
		ids[rb.ID()] = true
		s.addColumn(rb.ID())
	}
	return ns, nil
}

// sourceFor is a node's metrics source: WithSource's, else a scrape source
// that keeps serve's own history. A WithSource error leaves src nil.
func (s *Server) sourceFor(n Node) (promq.Source, *promq.Scrape) {
	if s.cfg.source != nil {
		src, err := s.cfg.source(n)
		if err != nil {
			s.cfg.logger.Warn("no metrics source", "node", n.Label(), "err", tbops.RedactText(err.Error()))
			return nil, nil
		}
		return src, nil
	}
	opts := []promq.ScrapeOption{promq.WithScrapeClock(s.cfg.now), promq.WithRingSize(s.cfg.ringSize()),
		promq.WithScrapeTimeout(s.cfg.scrapeTimeout), promq.WithScrapeMaxSeries(s.cfg.maxSeries)}
	if s.cfg.scrapeClient != nil {
		opts = append(opts, promq.WithScrapeClient(s.cfg.scrapeClient))
	}
	sc := promq.NewScrape([]string{n.metricsURL()}, opts...)
	return sc, sc
}

func (s *Server) addColumn(id string) {
	for _, c := range s.columns {
		if c == id {
			return
		}
	}
	s.columns = append(s.columns, id)
}

// restore reads the last verdicts and recent transitions of the configured
// nodes back from the state file.
func (s *Server) restore(ctx context.Context) error {
	st := s.cfg.store
	if st == nil {
		return nil
	}
	latest, err := st.Latest(ctx)
	if err != nil {
		return err
	}
	recent, err := st.recent(ctx, recentPerCell)
	if err != nil {
		return err
	}
	for _, t := range latest {
		if c := s.restoredCell(t); c != nil && t.Report != nil {
			c.report, c.has = *t.Report, true
		}
	}
	for _, t := range recent {
		if c := s.restoredCell(t); c != nil {
			c.recent = append(c.recent, t)
		}
	}
	return nil
}

// restoredCell is the cell of a stored transition, nil when its node or its
// runbook is not served here (another shard's node, a removed runbook).
func (s *Server) restoredCell(t Transition) *cell {
	if _, ok := s.byLabel[t.Node]; !ok || !s.hasColumn(t.Runbook) {
		return nil
	}
	return s.cellLocked(cellKey{t.Node, t.Runbook})
}

// cellLocked returns the cell, creating it; s.mu is held (or s is not shared yet).
func (s *Server) cellLocked(k cellKey) *cell {
	c, ok := s.cells[k]
	if !ok {
		c = &cell{}
		s.cells[k] = c
	}
	return c
}

// Nodes returns the configured nodes.
func (s *Server) Nodes() []Node {
	out := make([]Node, len(s.nodes))
	for i, ns := range s.nodes {
		out[i] = ns.node
	}
	return out
}

// Run runs the scrape loop (serve's own history), a run of every node each
// interval, retention and, with the webhook on, the alert workers that
// diagnose and notify queued alerts, until ctx is done. The first run
// starts once two scrapes exist (so rates are defined), at once with
// WithSource. Runs in flight when ctx is done are cancelled and their results
// dropped (a cancelled run is no verdict); Run returns when every goroutine it
// started has ended.
func (s *Server) Run(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	var wg sync.WaitGroup
	defer wg.Wait()
	async := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	scrapeC, stopScrape := s.cfg.ticker(s.cfg.scrapeInterval)
	defer stopScrape()
	runC, stopRun := s.cfg.ticker(s.cfg.interval)
	defer stopRun()
	pruneC, stopPrune := s.cfg.ticker(pruneEvery)
	defer stopPrune()

	started := s.cfg.source != nil // no history to wait for
	atOnce := started
	async(func() {
		_ = s.Scrape(ctx)
		if atOnce {
			_ = s.RunOnce(ctx)
		}
	})
	async(func() { s.prune(ctx) })
	if s.book != nil {
		for range alertWorkers {
			async(func() { s.alertWorker(ctx) })
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-scrapeC:
			first := !started
			started = true
			async(func() {
				_ = s.Scrape(ctx)
				if first {
					_ = s.RunOnce(ctx)
				}
			})
		case <-runC:
			if started {
				async(func() { _ = s.RunOnce(ctx) })
			}
		case <-pruneC:
			async(func() { s.prune(ctx) })
		}
	}
}

// Serve runs the server (Run) and answers HTTP on ln until ctx is done, then
// shuts down: runs and probes in flight are cancelled, other requests get
// ShutdownTimeout to finish, and Serve returns once every goroutine it started
// has ended. The HTTP server bounds header size and read, write and idle
// times. It returns nil after a shutdown asked by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.closed.Load() {
		return ErrClosed
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := s.httpServer(runCtx)
	done := make(chan error, 2) // Run's result and the HTTP server's
	go func() { done <- s.Run(runCtx) }()
	go func() {
		err := hs.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()

	var err error
	pending := 2
	select {
	case <-ctx.Done():
	case err = <-done: // one of them failed
		pending--
	}
	cancel() // runs and probes (their requests' base context) stop now
	sctx, stop := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer stop()
	if hs.Shutdown(sctx) != nil {
		_ = hs.Close()
	}
	for ; pending > 0; pending-- {
		if e := <-done; err == nil {
			err = e
		}
	}
	return err
}

// httpServer is the bounded HTTP server of Serve; requests' contexts derive
// from base, so cancelling it stops probes in flight.
func (s *Server) httpServer(base context.Context) *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.cfg.probeTimeout + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
}

// Scrape takes one sample of every node's /metrics for serve's own history,
// concurrently, and waits for them (a node whose last scrape is still in
// flight is skipped). Run calls it every scrape interval; tests with a fake
// clock call it between advances. It does nothing with WithSource.
func (s *Server) Scrape(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	var wg sync.WaitGroup
	for _, ns := range s.nodes {
		if ns.scrape == nil || !ns.scraping.CompareAndSwap(false, true) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ns.scraping.Store(false)
			if !acquire(ctx, s.scrapes) {
				return
			}
			defer release(s.scrapes)
			err := ns.scrape.Scrape(ctx)
			if ctx.Err() != nil {
				return // shutting down: not the node's fault
			}
			if s.cfg.up == nil {
				s.mu.Lock()
				ns.up, ns.upKnown = err == nil, true
				s.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// RunOnce runs every runbook against every node now, at most WithWorkers
// nodes at once, and waits for them. A node whose previous run is still in
// flight is skipped, so one slow node never holds up the others' next run.
// Each verdict transition is written to the state file before it is shown.
func (s *Server) RunOnce(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	var wg sync.WaitGroup
	for _, ns := range s.nodes {
		if !ns.running.CompareAndSwap(false, true) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ns.running.Store(false)
			if !acquire(ctx, s.workers) {
				return
			}
			defer release(s.workers)
			s.runNode(ctx, ns)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// runNode runs one node's runbooks (and its up check) under the run timeout
// and applies the verdicts.
func (s *Server) runNode(ctx context.Context, ns *nodeState) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.runTimeout)
	defer cancel()
	start := time.Now() // tbops's own run time, not node time
	upErr := make(chan error, 1)
	if s.cfg.up != nil {
		go func() { upErr <- s.cfg.up(rctx, ns.node) }()
	}
	reports := s.diagnose(rctx, ns.label, ns.runbooks)
	var up error
	if s.cfg.up != nil {
		up = <-upErr
	}
	if ctx.Err() != nil {
		return // shutting down: a cancelled run is no verdict
	}
	s.durs.observe(time.Since(start).Seconds())
	if s.cfg.up != nil {
		s.mu.Lock()
		ns.up, ns.upKnown = up == nil, true
		s.mu.Unlock()
	}
	for i, rb := range ns.runbooks {
		s.apply(ctx, cellKey{ns.label, rb.ID()}, reports[i])
	}
}

// diagnose runs the runbooks with tbops.Diagnose and names the node in each
// report as serve does everywhere.
func (s *Server) diagnose(ctx context.Context, label string, rbs []tbops.Runbook) []tbops.Report {
	reports := tbops.Diagnose(ctx, s.cfg.now, rbs...)
	for i := range reports {
		reports[i].Target = label
	}
	return reports
}

// apply records a verdict: a status that differs from the cell's last (or a
// first verdict) is a transition, written to the state file before the cell
// shows the new report.
func (s *Server) apply(ctx context.Context, k cellKey, r tbops.Report) {
	now := s.cfg.now().UTC()
	s.mu.Lock()
	c := s.cellLocked(k)
	prev, had := c.report.Status, c.has
	s.mu.Unlock()

	var tr *Transition
	if !had || prev != r.Status {
		t := Transition{Node: k.node, Runbook: k.runbook, To: r.Status, At: now, Firing: firingIDs(r)}
		if had {
			t.From = prev
		}
		if st := s.cfg.store; st != nil {
			// A run that finished is written even while shutting down: the
			// state is flushed, not dropped.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeWriteTimeout)
			t.Report = &r
			id, err := st.Record(wctx, t)
			cancel()
			t.Report = nil
			if err != nil {
				s.cfg.logger.Error("state file write failed; the transition is shown but not kept", "err", err)
			}
			t.ID = id
		}
		tr = &t
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c.report, c.has, c.fresh, c.lastRun = r, true, true, now
	if tr != nil {
		c.recent = append(c.recent, *tr)
		if len(c.recent) > recentPerCell {
			c.recent = append([]Transition(nil), c.recent[len(c.recent)-recentPerCell:]...)
		}
	}
}

// prune applies retention to the state file.
func (s *Server) prune(ctx context.Context) {
	s.forgetSent(s.cfg.now().Add(-s.cfg.retention))
	st := s.cfg.store
	if st == nil {
		return
	}
	if _, err := st.Prune(ctx, s.cfg.now().Add(-s.cfg.retention)); err != nil && ctx.Err() == nil {
		s.cfg.logger.Error("state file retention failed", "err", err)
	}
}

// Close releases the nodes' metrics sources. The server must not be running;
// it does not close the Store, which the caller owns.
func (s *Server) Close() {
	s.closed.Store(true)
	s.closeSrc.Do(func() {
		for _, ns := range s.nodes {
			if ns.scrape != nil {
				ns.scrape.Close()
			}
		}
	})
}

// Snapshot is the latest verdicts, in the JSON shape of `tbops doctor -o
// json`: the worst status, when it was taken, the nodes and their reports.
type Snapshot struct {
	Status    tbops.Status   `json:"status"`
	CheckedAt time.Time      `json:"checked_at"`
	Nodes     []string       `json:"nodes"`
	Reports   []tbops.Report `json:"reports"`
}

// Reports returns the latest report of every runbook on every node, in node
// then runbook order; node (a Label) and runbook narrow it when not "".
// Reports restored from the state file (before this process ran) are
// included; their checked_at says when they were made.
func (s *Server) Reports(node, runbook string) Snapshot {
	snap := Snapshot{Status: tbops.StatusUnknown, CheckedAt: s.cfg.now().UTC(), Nodes: []string{}, Reports: []tbops.Report{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	var statuses []tbops.Status
	for _, ns := range s.nodes {
		if node != "" && ns.label != node {
			continue
		}
		snap.Nodes = append(snap.Nodes, ns.label)
		for _, id := range s.columns {
			c, ok := s.cells[cellKey{ns.label, id}]
			if !ok || !c.has || (runbook != "" && id != runbook) {
				continue
			}
			snap.Reports = append(snap.Reports, c.report)
			statuses = append(statuses, c.report.Status)
		}
	}
	if len(statuses) > 0 {
		snap.Status = tbops.Worst(statuses...)
	}
	return snap
}

// History returns the transitions f selects, oldest first: from the state
// file when there is one (the whole retention), else those kept in memory
// (the newest 20 of each node and runbook).
func (s *Server) History(ctx context.Context, f Filter) ([]Transition, error) {
	if st := s.cfg.store; st != nil {
		return st.Transitions(ctx, f)
	}
	s.mu.Lock()
	var out []Transition
	for k, c := range s.cells {
		if (f.Node != "" && k.node != f.Node) || (f.Runbook != "" && k.runbook != f.Runbook) {
			continue
		}
		for _, t := range c.recent {
			if !t.At.Before(f.Since) {
				out = append(out, t)
			}
		}
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}

func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func release(sem chan struct{}) { <-sem }
