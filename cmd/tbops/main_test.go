package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

// runCLI runs the command line in-process and returns the exit code and output.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, getenv)
	return code, stdout.String(), stderr.String()
}

func TestDoctorOnTheSimulatedNodeIsHealthy(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "doctor")
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "RUNBOOK")
	assert.Contains(t, out, "node-health")
	assert.Contains(t, out, "Overall: OK")
	assert.Contains(t, errOut, "diagnosing the simulated node")
}

func TestDoctorJSONIsReportsInDesignShape(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "doctor", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var res struct {
		Status  string           `json:"status"`
		Reports []map[string]any `json:"reports"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, "ok", res.Status)
	require.NotEmpty(t, res.Reports)
	for _, r := range res.Reports {
		for _, k := range []string{"runbook", "status", "checked_at", "symptoms", "steps", "paths", "alerts", "warnings"} {
			assert.Contains(t, r, k, "report %v", r["runbook"])
		}
		assert.Equal(t, "ok", r["status"], "runbook %v on the healthy scenario: %v", r["runbook"], r["warnings"])
	}
}

func TestDoctorFailingScenarioExitsCritical(t *testing.T) {
	code, out, _ := runCLI(t, nil, "doctor", "--scenario", "chain-stalled", "--summary")
	assert.Equal(t, 2, code, out)
	assert.Regexp(t, `node-health\s+CRITICAL\s+consensus-unhealthy`, out)
}

func TestDoctorAgainstAGivenNode(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenarioName("node-syncing"))
	code, out, _ := runCLI(t, nil, "doctor", "--rpc", n.URL(), "--summary")
	assert.Equal(t, 1, code, out)
	assert.Regexp(t, `node-health\s+WARNING\s+syncing,consensus-unhealthy`, out)

	// TB_RPC_URL names the node too.
	code, out, errOut := runCLI(t, map[string]string{"TB_RPC_URL": n.URL()}, "doctor", "--summary")
	assert.Equal(t, 1, code, out)
	assert.NotContains(t, errOut, "simulated node")
}

func TestDoctorUnreachableNodeIsCritical(t *testing.T) {
	n := nodetest.Start(t)
	url := n.URL()
	require.NoError(t, n.Close())
	code, out, _ := runCLI(t, nil, "doctor", "--rpc", url, "--timeout", "300ms", "-o", "json")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "rpc-unreachable")
	assert.Contains(t, out, "is the node running")
}

func TestDoctorFleet(t *testing.T) {
	a := nodetest.Start(t)
	b := nodetest.Start(t, nodetest.WithScenarioName("chain-stalled"))
	file := filepath.Join(t.TempDir(), "nodes")
	require.NoError(t, os.WriteFile(file, []byte("# fleet\n"+b.URL()+"  # the bad one\n\n"), 0o600))
	code, out, _ := runCLI(t, nil, "doctor", "--rpc", a.URL(), "--nodes", file, "--summary", "--workers", "2")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "NODE")
	assert.Regexp(t, regexpQuote(a.URL())+`\s+node-health\s+OK`, out)
	assert.Regexp(t, regexpQuote(b.URL())+`\s+node-health\s+CRITICAL`, out)
}

func regexpQuote(s string) string {
	r := strings.NewReplacer(".", `\.`, "/", `/`, ":", `:`)
	return r.Replace(s)
}

func TestBadFlagsExitThreeWithOneLine(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "doctor", "-o", "yaml")
	assert.Equal(t, 3, code)
	assert.Equal(t, "tbops: -o \"yaml\": want table or json\n", errOut)

	code, _, errOut = runCLI(t, nil, "doctor", "--nodes", "/no/such/file")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "--nodes")

	bad := filepath.Join(t.TempDir(), "nodes")
	require.NoError(t, os.WriteFile(bad, []byte("127.0.0.1:3030\n"), 0o600))
	code, _, errOut = runCLI(t, nil, "doctor", "--nodes", bad)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "line 1")

	code, _, errOut = runCLI(t, nil, "no-such-command")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "unknown command")
}

func TestSimServesTheContract(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"sim", "--listen", "127.0.0.1:0"}, strings.NewReader(""), pw, io.Discard, func(string) string { return "" })
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var rpcURL string
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "rpc:"); ok {
			rpcURL = strings.TrimSpace(u)
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	require.NotEmpty(t, rpcURL)
	resp, err := http.Post(rpcURL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"node.status"}`))
	require.NoError(t, err)
	var env struct {
		Result map[string]any `json:"result"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	resp.Body.Close()
	assert.Contains(t, env.Result, "current_block_height")
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code)
	case <-time.After(5 * time.Second):
		t.Fatal("sim did not stop on cancel")
	}
}

func TestSimList(t *testing.T) {
	code, out, _ := runCLI(t, nil, "sim", "--list")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "healthy\n")
	assert.Contains(t, out, "chain-stalled\n")
}

func TestRPCErrorsGetTheCLIHint(t *testing.T) {
	callErr := func(cause error) error { return &rpc.CallError{Method: "m", URL: "http://n/", Err: cause} }
	timedOut := fmt.Errorf("%w: no answer within 2s: %w", rpc.ErrUnavailable, context.DeadlineExceeded)
	for cause, hint := range map[error]string{
		rpc.ErrUnauthorized:                      "check the bearer token (--token",
		&rpc.Error{Code: rpc.CodeMethodNotFound}: "does not serve this method: check its version or --rpc",
		rpc.ErrUnavailable:                       "is the node running and is --rpc (TB_RPC_URL) right?",
		timedOut:                                 "raise --timeout",
		&rpc.Error{Code: rpc.CodeRateLimited}:    "run again after the delay it asked for",
		rpc.ErrRedirect:                          "give --rpc the URL the node serves JSON-RPC on",
	} {
		err := rpcErr(callErr(cause))
		var ex *exitError
		require.ErrorAs(t, err, &ex)
		assert.Equal(t, 3, ex.code)
		assert.Contains(t, err.Error(), hint)
		assert.Equal(t, 1, strings.Count(err.Error(), "; "), "one hint: %s", err)
		assert.ErrorIs(t, ex.err, cause, "the hint keeps the error's identity")
	}
	assert.Equal(t, "m at http://n/: context canceled", rpcErr(callErr(context.Canceled)).Error(), "nothing to advise on an interrupt")
	passed := &exitError{code: 2, err: errors.New("x")}
	assert.Same(t, passed, rpcErr(passed))
}

// waitingNode counts requests and never answers until the client goes away.
func waitingNode(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // the server notices the client leaving only once the body is read
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/", &count
}

// --timeout is the deadline of each call, retries included: a node that never
// answers gets one request (a read used to take 3 × --timeout).
func TestTimeoutIsTheDeadlineOfEachCall(t *testing.T) {
	url, count := waitingNode(t)
	code, _, errOut := runCLI(t, nil, "treasury", "balance", "--rpc", url, "--timeout", "200ms")
	assert.Equal(t, 3, code)
	assert.EqualValues(t, 1, count.Load())
	assert.Contains(t, errOut, "gov.treasury.balance at "+url+": node unavailable: no answer within 200ms")
	assert.Contains(t, errOut, "raise --timeout")
}

// The case: a Retry-After of an hour does not hold a 2 s command for an
// hour; it ends at once, saying how long the node asked to wait.
func TestRateLimitLongerThanTheTimeoutEndsAtOnce(t *testing.T) {
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		w.Header().Set("Retry-After", "3600")
		rpc.WriteError(w, nil, &rpc.Error{Code: rpc.CodeEnergyRateLimited, Message: "rate limited"}, http.StatusTooManyRequests)
	}))
	defer srv.Close()
	code, _, errOut := runCLI(t, nil, "energy", "market", "--rpc", srv.URL+"/", "--timeout", "2s")
	assert.Equal(t, 3, code)
	assert.EqualValues(t, 1, count.Load())
	assert.Contains(t, errOut, "(HTTP 429, retry after 1h0m0s)")
	assert.Contains(t, errOut, "run again after the delay it asked for")
}

// A rollback answered by a redirect is not sent on: the other host sees nothing.
func TestRollbackRedirectIsNotFollowed(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenarioName("treasury-dependency-rolled-back"))
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	// front passes reads to the node and redirects the rollback to other.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"gov.treasury.rollback_disbursement"`) {
			http.Redirect(w, r, strings.Replace(other.URL, "http://", "http://ops:hunter2@", 1)+"/rpc", http.StatusTemporaryRedirect)
			return
		}
		resp, err := http.Post(n.URL(), "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer front.Close()

	code, _, errOut := runCLI(t, nil, "treasury", "rollback", "--id", "4541", "--reason", "dependency rolled back", "--apply", "--rpc", front.URL+"/")
	assert.Equal(t, 3, code)
	assert.EqualValues(t, 0, elsewhere.Load(), "the rollback never reached the redirect's target")
	assert.Empty(t, n.Calls("gov.treasury.rollback_disbursement"))
	assert.Contains(t, errOut, "redirect not followed: Location http://ops:xxxxx@")
	assert.Contains(t, errOut, "the write was not sent on")
	assert.Contains(t, errOut, "(HTTP 307)")
	assert.NotContains(t, errOut, "hunter2")
}

// Without its replayed history the simulated node is judged as a real node
// without --prom: what one second cannot decide is unknown, never a page.
func TestDoctorOnAOneSecondLookNeverPages(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "doctor", "--history", "0", "--summary")
	assert.Contains(t, []int{0, 3}, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.NotContains(t, out, "WARNING")
	assert.NotContains(t, out, "CRITICAL")
	assert.Contains(t, errOut, "a one-second look")
	code, _, errOut = runCLI(t, nil, "doctor", "--history", "-1m")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "--history -1m0s: want 0 or a positive duration")
}
