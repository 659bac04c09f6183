package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/rpc"
)

func energyKeyFile(t *testing.T, provider string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(p, []byte(hex.EncodeToString(nodetest.EnergyProviderKey(provider).Seed())+"\n"), 0o600))
	return p
}

func TestEnergySignVerifyAgainstTheNode(t *testing.T) {
	n := nodetest.Start(t)
	keyFile := energyKeyFile(t, "provider_eu_002")
	code, out, errOut := runCLI(t, nil, "energy", "sign-reading", "--provider", "provider_eu_002", "--meter", "meter_002",
		"--total-kwh", "1500000", "--nonce", "5000", "--scheme", "ed25519-blake3", "--key-file", keyFile)
	require.Equal(t, 0, code, errOut)
	reading := filepath.Join(t.TempDir(), "reading.json")
	require.NoError(t, os.WriteFile(reading, []byte(out), 0o600))

	code, out, errOut = runCLI(t, nil, "energy", "verify-reading", "--rpc", n.URL(), reading)
	assert.Equal(t, 0, code, out+errOut)
	assert.Contains(t, out, "VALID")

	// the simulated node accepts it too (an independent verifier)
	var r map[string]any
	require.NoError(t, json.Unmarshal([]byte(out2(t, reading)), &r))
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "energy.submit_reading", "params": r})
	resp, err := http.Post(n.URL(), "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(b), "credit_id", string(b))

	// tampered: exit 2 with the reason
	tampered := strings.Replace(out2(t, reading), "1500000", "1500001", 1)
	require.NoError(t, os.WriteFile(reading, []byte(tampered), 0o600))
	code, out, _ = runCLI(t, nil, "energy", "verify-reading", "--rpc", n.URL(), reading)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "verification_failed")

	code, out, _ = runCLI(t, nil, "energy", "verify-reading", "-o", "json", "--rpc", n.URL(), reading)
	assert.Equal(t, 2, code)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, "verification_failed", res["reason"])

	// wrong scheme against the provider's registered blake3 key
	code, out, _ = runCLI(t, nil, "energy", "sign-reading", "--provider", "provider_eu_002", "--meter", "m", "--key-file", keyFile)
	require.Equal(t, 0, code)
	require.NoError(t, os.WriteFile(reading, []byte(out), 0o600))
	code, out, _ = runCLI(t, nil, "energy", "verify-reading", "--rpc", n.URL(), reading)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "scheme_unsupported")

	// unknown provider
	code, out, _ = runCLI(t, nil, "energy", "sign-reading", "--provider", "nobody", "--meter", "m", "--key-file", keyFile)
	require.Equal(t, 0, code)
	require.NoError(t, os.WriteFile(reading, []byte(out), 0o600))
	code, out, _ = runCLI(t, nil, "energy", "verify-reading", "--rpc", n.URL(), reading)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "key_not_found")
}

func out2(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func TestEnergyVerifyBadInput(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"provider_id":"p","meter":"m","total_kwh":-1}`), 0o600))
	code, out, _ := runCLI(t, nil, "energy", "verify-reading", "--public-key", strings.Repeat("ab", 32), p)
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "invalid_format")
	code, _, errOut := runCLI(t, nil, "energy", "sign-reading", "--provider", "p", "--meter", "m")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "TB_ENERGY_SIGNING_KEY")
	code, _, errOut = runCLI(t, map[string]string{"TB_ENERGY_SIGNING_KEY": "zz"}, "energy", "sign-reading", "--provider", "p", "--meter", "m")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "private key")
	code, _, errOut = runCLI(t, nil, "energy", "verify-reading", filepath.Join(t.TempDir(), "missing.json"))
	assert.Equal(t, 3, code)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, errOut)
}

func TestEnergyListCommands(t *testing.T) {
	n := nodetest.Start(t)
	code, out, errOut := runCLI(t, nil, "energy", "market", "--rpc", n.URL())
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "provider_usa_001")
	code, out, _ = runCLI(t, nil, "energy", "credits", "--status", "pending", "-o", "json", "--rpc", n.URL())
	require.Equal(t, 0, code)
	var cr struct {
		Count    int     `json:"count"`
		TotalKWh float64 `json:"total_kwh"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &cr))
	assert.Equal(t, 5, cr.Count)
	code, out, _ = runCLI(t, nil, "energy", "disputes", "--status", "open", "--rpc", n.URL())
	require.Equal(t, 0, code)
	assert.Contains(t, out, "d-103")
	code, out, _ = runCLI(t, nil, "energy", "disputes", "--id", "d-101", "--rpc", n.URL())
	require.Equal(t, 0, code)
	assert.Contains(t, out, "recalibration")
	code, _, errOut = runCLI(t, nil, "energy", "disputes", "--id", "nope", "--rpc", n.URL())
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "-32004")
	code, _, errOut = runCLI(t, nil, "energy", "credits", "--status", "weird", "--rpc", n.URL())
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "pending or settled")
}

func TestEnergyTokenFromEnv(t *testing.T) {
	sc := nodetest.Healthy(time.Now())
	sc.Energy.Guard = &nodetest.EnergyGuard{Token: "s3cret", RPS: 50}
	n := nodetest.Start(t, nodetest.WithScenario(sc))
	code, _, errOut := runCLI(t, nil, "energy", "market", "--rpc", n.URL())
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "unauthorized")
	code, _, errOut = runCLI(t, map[string]string{"TB_ENERGY_RPC_TOKEN": "s3cret"}, "energy", "market", "--rpc", n.URL())
	assert.Equal(t, 0, code, errOut)
	code, _, errOut = runCLI(t, nil, "energy", "market", "--token", "s3cret", "--rpc", n.URL())
	assert.Equal(t, 0, code, errOut)
}

// A first look (no --prom) decides what the node's records decide and leaves
// the 5m and 10m metric windows unknown: a healthy node is unknown, never a
// warning; a broken one says so at once.
func TestEnergyDiagnoseExitCodes(t *testing.T) {
	for sc, want := range map[string]int{"healthy": 3, "energy-signature-failures": 2, "energy-reputation-degraded": 1, "energy-timestamp-skew": 2} {
		n := nodetest.Start(t, nodetest.WithScenarioName(sc))
		code, out, errOut := runCLI(t, nil, "energy", "diagnose", "--rpc", n.URL())
		assert.Equal(t, want, code, "%s\n%s\n%s", sc, out, errOut)
		assert.Contains(t, out, "energy-stalled")
	}
}

// diagnose greps --log-glob for timestamp_skew (Path C) and shows this host's
// clock as a finding about this host, never a symptom of the node.
func TestEnergyDiagnoseLogsAndHostClock(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenarioName("energy-healthy"))
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "node.log"), []byte("WARN reading refused: timestamp_skew provider=provider_eu_002\n"), 0o600))
	code, out, errOut := runCLI(t, nil, "energy", "diagnose", "-o", "json", "--rpc", n.URL(), "--log-glob", filepath.Join(dir, "*.log"))
	require.Equal(t, 3, code, errOut)
	var r tbops.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	reportcheck.Valid(t, r)
	c, _ := r.Path(energy.PathTimestampSkew)
	assert.True(t, c.Matched, c.Why)
	assert.Contains(t, c.Why, "1 timestamp_skew lines")
	var host []tbops.Evidence
	for _, st := range r.Steps {
		for _, e := range st.Evidence {
			if e.Source == tbops.SourceHost {
				host = append(host, e)
			}
		}
	}
	require.Len(t, host, 1, "the command line asks for this host's clock")
	assert.Contains(t, host[0].Query, "this host's clock")
	for _, s := range r.Symptoms {
		for _, e := range s.Evidence {
			assert.NotEqual(t, tbops.SourceHost, e.Source, s.ID)
		}
	}

	code, _, errOut = runCLI(t, nil, "energy", "diagnose", "--rpc", n.URL(), "--log-glob", "/var/log/[node")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, `--log-glob "/var/log/[node"`)
}

// -o json of the node's records: a field the node left out is null, never 0.
func TestEnergyJSONMissingIsNull(t *testing.T) {
	mux := rpc.NewMux()
	mux.Handle(energy.MethodMarket, func(context.Context, json.RawMessage) (any, error) {
		return map[string]any{"providers": []map[string]any{{"provider_id": "p1", "status": "active"}}}, nil
	})
	mux.Handle(energy.MethodCredits, func(context.Context, json.RawMessage) (any, error) {
		return map[string]any{"credits": []map[string]any{{"credit_id": "c1", "provider_id": "p1", "status": "pending"}}, "next_cursor": nil}, nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code, out, errOut := runCLI(t, nil, "energy", "market", "-o", "json", "--rpc", srv.URL+"/")
	require.Equal(t, 0, code, errOut)
	var m struct {
		Providers []map[string]any `json:"providers"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	require.Len(t, m.Providers, 1)
	for _, k := range []string{"reputation_score", "capacity_kwh", "price_per_kwh"} {
		v, ok := m.Providers[0][k]
		assert.True(t, ok, k)
		assert.Nil(t, v, k)
	}
	code, out, _ = runCLI(t, nil, "energy", "market", "--rpc", srv.URL+"/")
	require.Equal(t, 0, code)
	assert.Regexp(t, `p1\s+active\s+-\s+-\s+-`, out)

	code, out, errOut = runCLI(t, nil, "energy", "credits", "-o", "json", "--rpc", srv.URL+"/")
	require.Equal(t, 0, code, errOut)
	var cr map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &cr))
	assert.Nil(t, cr["total_kwh"], "a sum over a missing amount is unknown")
	assert.EqualValues(t, 1, cr["count"])
	c0 := cr["credits"].([]any)[0].(map[string]any)
	for _, k := range []string{"amount_kwh", "created_at", "reading_timestamp"} {
		v, ok := c0[k]
		assert.True(t, ok, k)
		assert.Nil(t, v, k)
	}
}

// startGuardCLI runs tbops energy guard with args until the test ends and
// returns its URL once it answers.
func startGuardCLI(t *testing.T, env map[string]string, args ...string) (string, *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	stderr := &syncBuffer{}
	go func() {
		done <- run(ctx, append([]string{"energy", "guard", "--listen", addr}, args...), strings.NewReader(""), io.Discard, stderr,
			func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		assert.Equal(t, 0, <-done, stderr.String())
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/guard/metrics")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, stderr.String())
	return "http://" + addr + "/", stderr
}

// postRPC posts body to url and returns the HTTP status and the answer.
func postRPC(t *testing.T, url, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestEnergyGuardProxy(t *testing.T) {
	n := nodetest.Start(t)
	url, _ := startGuardCLI(t, map[string]string{"TB_ENERGY_RPC_TOKEN": "tok"}, "--upstream", n.URL(), "--rps", "2")
	call := func(method, token string) (int, string) {
		return postRPC(t, url, `{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":{}}`, token)
	}
	_, body := call("node.status", "")
	assert.Contains(t, body, "current_block_height")
	_, body = call("energy.market", "")
	assert.Contains(t, body, "-33009")
	_, body = call("energy.market", "tok")
	assert.Contains(t, body, "providers")
	status, body := call("energy.market", "tok")
	assert.Equal(t, 429, status, body)
	assert.Contains(t, body, "retry_after_ms")
	resp, err := http.Get(url + "guard/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(b), `energy_rpc_rejected_total{reason="rate_limited"}`)
	assert.Contains(t, string(b), `energy_rpc_guard_connections`)
}

// Issue #14 item 1, end to end: a non-energy method, 64 KiB of whitespace and an
// energy method got the provider list with no token and no limit, through tbops
// energy guard and through the simulated node's own guard. Fails on main.
func TestEnergyGuardLongBodyBypass(t *testing.T) {
	pad := strings.Repeat(" ", 64<<10)
	bypass := `{"jsonrpc":"2.0","id":1,"method":"node.status",` + pad + `"method":"energy.market","params":{}}`
	n := nodetest.Start(t)
	n.Update(func(s *nodetest.Scenario) { s.Energy.Guard = nil }) // the CLI's guard is the only one
	url, _ := startGuardCLI(t, map[string]string{"TB_ENERGY_RPC_TOKEN": "s3cret"}, "--upstream", n.URL())
	for i := 0; i < 60; i++ {
		_, body := postRPC(t, url, bypass, "")
		require.Contains(t, body, "-32600", "request %d", i)
		require.NotContains(t, body, "providers")
	}
	assert.Empty(t, n.Calls("energy.market"), "the node never saw the ambiguous body")
	// One method after the same padding is guarded like any other (the limit on
	// such bodies is tested with a fake clock in package energy).
	long := `{"jsonrpc":"2.0","id":1,` + pad + `"method":"energy.market","params":{}}`
	_, body := postRPC(t, url, long, "")
	assert.Contains(t, body, "-33009")
	_, body = postRPC(t, url, long, "s3cret")
	assert.Contains(t, body, "providers")

	sc := nodetest.Healthy(time.Now())
	sc.Energy.Guard = &nodetest.EnergyGuard{Token: "s3cret", RPS: 50}
	sim := nodetest.Start(t, nodetest.WithScenario(sc))
	_, body = postRPC(t, sim.URL(), bypass, "")
	assert.Contains(t, body, "-32600", "the simulated node's own guard")
	assert.NotContains(t, body, "providers")
}

// Issue #14 item 3, end to end: a node that is down or does not answer gets a
// JSON-RPC error with the request's id, within --upstream-timeout.
func TestEnergyGuardUpstreamFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + ln.Addr().String() + "/"
	require.NoError(t, ln.Close())
	url, _ := startGuardCLI(t, nil, "--upstream", down)
	status, body := postRPC(t, url, `{"jsonrpc":"2.0","id":"a","method":"node.status"}`, "")
	assert.Equal(t, 502, status)
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":"a","error":{"code":-32603,"message":"the node is unreachable"}}`, body)
	_, body = postRPC(t, url, `{"jsonrpc":"2.0","id":tru,"method":"node.status"}`, "")
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error: the request is not valid JSON"}}`, body)

	hole, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	require.NoError(t, err)
	defer hole.Close()
	url, _ = startGuardCLI(t, nil, "--upstream", "http://"+hole.Addr().String()+"/", "--upstream-timeout", "300ms")
	status, body = postRPC(t, url, `{"jsonrpc":"2.0","id":3,"method":"node.status"}`, "")
	assert.Equal(t, 504, status)
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"the node did not answer within 300ms"}}`, body)
}

func TestEnergyGuardFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--body-timeout", "0s"}, "--body-timeout 0s: want a positive duration"},
		{[]string{"--upstream-timeout", "-1s"}, "--upstream-timeout -1s: want a positive duration"},
		{[]string{"--max-conns", "0"}, "--max-conns 0: want a positive number"},
		{[]string{"--max-body", "-5"}, "--max-body -5: want a positive number of bytes"},
		{[]string{"--rps", "-1"}, "--rps -1: want a positive number"},
		{[]string{"--trusted-proxy-hops", "-1"}, "--trusted-proxy-hops -1: want 0 or more"},
	} {
		code, _, errOut := runCLI(t, nil, append([]string{"energy", "guard", "--upstream", "http://127.0.0.1:1/"}, tc.args...)...)
		assert.Equal(t, 3, code, tc.args)
		assert.Contains(t, errOut, tc.want)
	}
	code, _, errOut := runCLI(t, nil, "energy", "guard", "--upstream", "ftp://admin:hunter2@node/")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "want an http(s) URL")
	assert.NotContains(t, errOut, "hunter2")
}

// The guard's token and limit follow --env-file without a restart; a bad file
// changes nothing.
func TestEnergyGuardEnvFileReloads(t *testing.T) {
	n := nodetest.Start(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "guard.env")
	write := func(content string) {
		tmp := filepath.Join(dir, "guard.env.tmp")
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
		require.NoError(t, os.Rename(tmp, envFile)) // an atomic replace, as config tools do
	}
	write("# guard\nTB_ENERGY_RPC_TOKEN=\"first\"\nTB_ENERGY_RPC_RPS=100\n")
	url, stderr := startGuardCLI(t, nil, "--upstream", n.URL(), "--env-file", envFile)
	call := func(token string) string {
		_, body := postRPC(t, url, `{"jsonrpc":"2.0","id":1,"method":"energy.market","params":{}}`, token)
		return body
	}
	require.Eventually(t, func() bool { return strings.Contains(call("first"), "providers") }, 5*time.Second, 20*time.Millisecond)

	write("TB_ENERGY_RPC_TOKEN=second\nTB_ENERGY_RPC_RPS=100\n")
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "reloaded "+envFile) }, 10*time.Second, 20*time.Millisecond, stderr.String())
	assert.Contains(t, call("first"), "-33009", "the old token no longer works")
	assert.Contains(t, call("second"), "providers")

	write("TB_ENERGY_RPC_TOKEN=third\nTB_ENERGY_RPC_RPS=lots\n")
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "keeps its running token and limit") }, 10*time.Second, 20*time.Millisecond, stderr.String())
	assert.Contains(t, call("second"), "providers", "a bad file changes nothing")
	assert.Contains(t, stderr.String(), "TB_ENERGY_RPC_RPS")

	code, _, errOut := runCLI(t, nil, "energy", "guard", "--upstream", n.URL(), "--env-file", envFile, "--rps", "5")
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "drop --token and --rps")
}
