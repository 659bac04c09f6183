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

func TestEnergyGuardProxy(t *testing.T) {
	n := nodetest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"energy", "guard", "--listen", addr, "--upstream", n.URL(), "--rps", "2"}, strings.NewReader(""), io.Discard, &stderr,
			func(k string) string { return map[string]string{"TB_ENERGY_RPC_TOKEN": "tok"}[k] })
	}()
	call := func(method, token string) (int, string) {
		body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{}}`
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { c, _ := call("node.status", ""); return c == 200 }, 5*time.Second, 20*time.Millisecond)
	_, body := call("energy.market", "")
	assert.Contains(t, body, "-33009")
	_, body = call("energy.market", "tok")
	assert.Contains(t, body, "providers")
	status, body := call("energy.market", "tok")
	assert.Equal(t, 429, status, body)
	assert.Contains(t, body, "retry_after_ms")
	resp, err := http.Get("http://" + addr + "/guard/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(b), `energy_rpc_rejected_total{reason="rate_limited"}`)
	cancel()
	assert.Equal(t, 0, <-done)
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	stderr := &syncBuffer{}
	go func() {
		done <- run(ctx, []string{"energy", "guard", "--listen", addr, "--upstream", n.URL(), "--env-file", envFile},
			strings.NewReader(""), io.Discard, stderr, func(string) string { return "" })
	}()
	call := func(token string) string {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"energy.market","params":{}}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
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
	cancel()
	assert.Equal(t, 0, <-done)
}
