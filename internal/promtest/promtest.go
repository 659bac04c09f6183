// Package promtest starts a real Prometheus server for tests (internal: test
// infrastructure, not SDK surface): the `prometheus` binary on PATH (Debian's
// package in CI; PROMTEST_PROMETHEUS names another) on a free loopback port,
// with a temporary storage directory and a configuration that scrapes the
// given targets every second. It is killed at the test's cleanup.
//
// When the binary is missing the test is skipped, except with CI=true in the
// environment, where it fails: CI must run the real thing.
package promtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is what StartWith starts.
type Config struct {
	// Targets are the URLs to scrape ("http://127.0.0.1:1234/metrics"); the
	// path becomes metrics_path. All share the job "tbops".
	Targets []string
	// ScrapeInterval defaults to 1s.
	ScrapeInterval time.Duration
	// EvaluationInterval (for rules) defaults to 1s.
	EvaluationInterval time.Duration
	// RuleFiles are rule files to load (paths; copy them into t.TempDir first
	// if they are generated).
	RuleFiles []string
	// StartTimeout bounds waiting for the server to be ready (default 20s).
	StartTimeout time.Duration
	// Raw, when set, is the whole configuration file, used instead of the one
	// built from the fields above (a documented sample config under test).
	Raw string
}

// Server is a running Prometheus.
type Server struct {
	// URL is the API base URL, "http://127.0.0.1:port".
	URL string
	// Dir holds the configuration, the storage and the server's log.
	Dir string
	// Version is what `prometheus --version` printed first.
	Version string
	cmd     *exec.Cmd
	waitCh  chan error
}

// TB is the part of testing.TB this package uses.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
}

// Binary returns the prometheus binary's path, or "" when there is none.
func Binary() string {
	if p := os.Getenv("PROMTEST_PROMETHEUS"); p != "" {
		return p
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		return ""
	}
	return p
}

// Start starts Prometheus scraping the targets every second and returns its
// URL.
func Start(t TB, targets ...string) string {
	t.Helper()
	return StartWith(t, Config{Targets: targets}).URL
}

// StartWith starts Prometheus with cfg.
func StartWith(t TB, cfg Config) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtest: no prometheus binary on PATH (CI=true: install the prometheus package)")
		}
		t.Skipf("promtest: no prometheus binary on PATH; install it (apt-get install prometheus) to run this test")
	}
	if cfg.ScrapeInterval <= 0 {
		cfg.ScrapeInterval = time.Second
	}
	if cfg.EvaluationInterval <= 0 {
		cfg.EvaluationInterval = time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 20 * time.Second
	}
	dir := t.TempDir()
	conf := cfg.Raw
	if conf == "" {
		var err error
		if conf, err = ConfigYAML(cfg); err != nil {
			t.Fatalf("promtest: %v", err)
		}
	}
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	var version string
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err == nil {
		version, _, _ = strings.Cut(string(out), "\n")
	}
	var lastErr error
	for try := 0; try < 3; try++ { // a free port can be taken between probe and use
		s, err := start(bin, dir, confPath, cfg.StartTimeout)
		if err == nil {
			s.Version = version
			t.Cleanup(s.stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("promtest: %v", lastErr)
	return nil
}

func start(bin, dir, confPath string, timeout time.Duration) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin,
		"--config.file="+confPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &Server{URL: "http://" + addr, Dir: dir}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("prometheus exited at start (%v): %s", err, tail(logPath))
		default:
		}
		resp, err := hc.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.cmd = cmd
				s.waitCh = exited
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return nil, fmt.Errorf("prometheus not ready after %s: %s", timeout, tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop kills the server and waits for it.
func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	if s.waitCh != nil {
		<-s.waitCh
	}
}

// Log returns the end of the server's log, for failure messages.
func (s *Server) Log() string { return tail(filepath.Join(s.Dir, "prometheus.log")) }

// ConfigYAML renders the Prometheus configuration for cfg.
func ConfigYAML(cfg Config) (string, error) {
	if cfg.ScrapeInterval <= 0 {
		cfg.ScrapeInterval = time.Second
	}
	if cfg.EvaluationInterval <= 0 {
		cfg.EvaluationInterval = time.Second
	}
	type job struct {
		scheme, path string
		hosts        []string
	}
	jobs := map[string]*job{}
	for _, raw := range cfg.Targets {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return "", fmt.Errorf("target %q: want a URL such as http://127.0.0.1:1234/metrics", raw)
		}
		path := u.Path
		if path == "" {
			path = "/metrics"
		}
		k := u.Scheme + " " + path
		if jobs[k] == nil {
			jobs[k] = &job{scheme: u.Scheme, path: path}
		}
		jobs[k].hosts = append(jobs[k].hosts, u.Host)
	}
	keys := make([]string, 0, len(jobs))
	for k := range jobs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n",
		promDur(cfg.ScrapeInterval), promDur(cfg.ScrapeInterval), promDur(cfg.EvaluationInterval))
	if len(cfg.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range cfg.RuleFiles {
			fmt.Fprintf(&b, "  - %s\n", strconv.Quote(f))
		}
	}
	b.WriteString("scrape_configs:\n")
	for i, k := range keys {
		j := jobs[k]
		name := "tbops"
		if i > 0 {
			name = "tbops-" + strconv.Itoa(i)
		}
		fmt.Fprintf(&b, "  - job_name: %s\n    scheme: %s\n    metrics_path: %s\n    static_configs:\n      - targets: [", name, j.scheme, strconv.Quote(j.path))
		for n, h := range j.hosts {
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(h))
		}
		b.WriteString("]\n")
	}
	return b.String(), nil
}

// promDur renders a duration in Prometheus' format (whole milliseconds at least).
func promDur(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// WaitFor polls cond every 100ms until it is true or timeout passes, and fails
// the test with what (and the server's log) when it does not come true.
func (s *Server) WaitFor(t TB, timeout time.Duration, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ok := cond(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("promtest: %s: not true after %s; prometheus log: %s", what, timeout, s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
