package main

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/internal/promtest"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// The secrets the password test hands tbops: URL passwords for the node and for
// Prometheus, the node's bearer token and a Prometheus header value. None of
// them may show in anything tbops prints or writes (issue #14.6).
const (
	rpcPassword  = "rpc-pw-5e1d9"
	promPassword = "prom-pw-a8c4f"
	rpcToken     = "rpc-token-77b20"
	promHeader   = "prom-header-3f6e1"
)

// withPassword puts admin:password@ into a URL.
func withPassword(t *testing.T, raw, password string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.User = url.UserPassword("admin", password)
	return u.String()
}

// closedURL is the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr + "/"
}

// leakedLines are the lines of text that hold any of the secrets.
func leakedLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, s := range []string{rpcPassword, promPassword, rpcToken, promHeader} {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// filesUnder is the content of every file below dir, by path.
func filesUnder(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	require.NoError(t, err)
	return out
}

// Every command that talks to the node or to Prometheus, in table and json
// output, with the node up or down and Prometheus reachable, unreachable,
// misspelt or absent (then the node's /metrics, whose URL comes from --rpc, is
// scraped): no secret shows in stdout, stderr or the files written (the
// incident bundle).
func TestNoOutputShowsAPasswordOrToken(t *testing.T) {
	node := nodetest.Start(t, nodetest.WithScenarioName("energy-signature-failures"))
	other := nodetest.Start(t)
	prom := promtest.StartWith(t, promtest.Config{Targets: []string{node.MetricsURL()}})
	p, err := promq.NewPrometheus(prom.URL)
	require.NoError(t, err)
	prom.WaitFor(t, 30*time.Second, "Prometheus scraped the node", func(ctx context.Context) bool {
		r, err := p.Instant(ctx, promq.Select("up"))
		return err == nil && len(r.Vector) > 0
	})

	setup := t.TempDir()
	keyFile := energyKeyFile(t, "provider_eu_002")
	code, signed, errOut := runCLI(t, nil, "energy", "sign-reading", "--provider", "provider_eu_002", "--meter", "meter_002",
		"--total-kwh", "1500000", "--nonce", "5000", "--key-file", keyFile)
	require.Equal(t, 0, code, errOut)
	reading := filepath.Join(setup, "reading.json")
	require.NoError(t, os.WriteFile(reading, []byte(signed), 0o600))
	// An executor log line that quotes a URL with a password: the bundle copies
	// such lines, and must redact them.
	logLine := "2026-01-02T03:04:05Z INFO treasury_executor: lease store " + withPassword(t, "http://127.0.0.1:1/", rpcPassword) + " connected\n"
	require.NoError(t, os.WriteFile(filepath.Join(setup, "node.log"), []byte(logLine), 0o600))
	logGlob := filepath.Join(setup, "*.log")
	otherRPC := withPassword(t, other.URL(), rpcPassword)
	nodesFile := filepath.Join(setup, "nodes")
	require.NoError(t, os.WriteFile(nodesFile, []byte(otherRPC+"\n"), 0o600))

	nodes := map[string]string{"node-up": withPassword(t, node.URL(), rpcPassword), "node-down": withPassword(t, closedURL(t), rpcPassword)}
	proms := map[string][]string{
		"scrape":           nil,
		"prom-up":          {"--prom", withPassword(t, prom.URL, promPassword)},
		"prom-unreachable": {"--prom", withPassword(t, closedURL(t), promPassword)},
		"prom-bad-url":     {"--prom", "http://admin:" + promPassword + "@127.0.0.1:no-port/"},
	}
	commands := [][]string{
		{"doctor"},
		{"doctor", "--rpc", otherRPC}, // a fleet: the summary has a NODE column
		{"doctor", "--nodes", nodesFile},
		{"query", "up"},
		{"rules"},
		{"treasury", "diagnose", "--log-glob", logGlob},
		{"treasury", "diagnose", "--log-glob", logGlob, "--bundle", "BUNDLE"},
		{"treasury", "balance"},
		{"treasury", "list", "--all"},
		{"treasury", "show", "--id", "4516"},
		{"treasury", "rollback", "--id", "4516", "--reason", "test"},
		{"treasury", "audit"},
		{"energy", "diagnose"},
		{"energy", "market"},
		{"energy", "credits"},
		{"energy", "disputes"},
		{"energy", "verify-reading", reading},
		{"receipts", "diagnose"},
		{"receipts", "stats", "--market", "all"},
		{"receipts", "validate", "--last", "10"},
		{"governor", "status"},
		{"governor", "intents"},
		{"governor", "audit"},
		{"governor", "rollback"},
		{"runtime", "diagnose"},
	}
	// The runs mostly wait (on scrapes, retries, refused connections): run them
	// all at once, then check each in its own subtest.
	type run struct {
		name, node, prom string
		args             []string
		dir              string // where the run may write
		bundle           bool   // it writes the incident bundle into dir
		code             int
		stdout, stderr   string
	}
	var runs []*run
	for nodeName, rpcURL := range nodes {
		for promName, promArgs := range proms {
			for _, output := range []string{"table", "json"} {
				for _, cmd := range commands {
					r := &run{node: nodeName, prom: promName, dir: t.TempDir(),
						name: strings.Join([]string{nodeName, promName, output, strings.Join(cmd[:min(2, len(cmd))], " ")}, "/")}
					for _, a := range cmd {
						if a == "BUNDLE" {
							a, r.bundle = filepath.Join(r.dir, "bundle"), true
						}
						r.args = append(r.args, a)
					}
					r.args = append(r.args, "--rpc", rpcURL, "--token", rpcToken, "--prom-header", "X-Api-Key: "+promHeader,
						"--timeout", "10s", "-o", output) // every unreachable URL refuses at once; 10s only bounds a loaded machine
					r.args = append(r.args, promArgs...)
					runs = append(runs, r)
				}
			}
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r.code, r.stdout, r.stderr = runCLI(t, nil, r.args...)
		}()
	}
	wg.Wait()

	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			line := "tbops " + strings.Join(r.args, " ")
			assert.Empty(t, leakedLines(r.stdout), "stdout of %s", line)
			assert.Empty(t, leakedLines(r.stderr), "stderr of %s", line)
			files := filesUnder(t, r.dir)
			for path, content := range files {
				assert.Empty(t, leakedLines(content), "%s written by %s", path, line)
			}
			if r.bundle {
				assert.Contains(t, files, filepath.Join(r.dir, "bundle", "summary.txt"), "%s wrote no bundle: %s", line, r.stderr)
			}
			assert.NotEmpty(t, r.stdout+r.stderr, "%s said nothing", line)
			if r.node == "node-up" && (r.args[0] != "query" || r.prom == "prom-up") {
				assert.NotEmpty(t, r.stdout, "%s printed no result (exit %d): %s", line, r.code, r.stderr)
			}
		})
	}
}

// Reports name the node by its URL with the password replaced, as net/url's
// Redacted does, and so does the scrape source's evidence.
func TestReportsShowTheRedactedURL(t *testing.T) {
	node := nodetest.Start(t)
	rpcURL := withPassword(t, node.URL(), rpcPassword)
	want := strings.Replace(rpcURL, rpcPassword, "xxxxx", 1)
	_, out, errOut := runCLI(t, nil, "doctor", "--rpc", rpcURL, "-o", "json")
	var res doctorResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), errOut)
	require.NotEmpty(t, res.Reports)
	assert.Equal(t, []string{want}, res.Nodes)
	scraped := 0
	for _, r := range res.Reports {
		assert.Equal(t, want, r.Target, r.Runbook)
		for _, s := range r.Symptoms {
			for _, e := range s.Evidence {
				if strings.HasSuffix(e.Query, " (scrape "+want+"metrics)") {
					scraped++
				}
			}
		}
	}
	assert.Positive(t, scraped, "evidence names the scraped /metrics URL, redacted")
}
