package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/internal/promtest"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/serve"
)

// alertmanagerBinary is Debian's prometheus-alertmanager (or alertmanager);
// with CI=true a missing binary fails the test.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("prometheus-alertmanager is not installed (CI installs Debian's prometheus-alertmanager package)")
	}
	t.Skip("prometheus-alertmanager is not installed")
	return ""
}

// startAlertmanager runs a real Alertmanager with config on a free loopback
// port (clustering off) until the test ends, and returns its address.
func startAlertmanager(t *testing.T, config string) string {
	t.Helper()
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(conf, []byte(config), 0o600))
	addr := freeAddr(t)
	var log syncBuffer
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &log, &log
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", log.String())
		}
	})
	waitFor(t, "alertmanager ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("alertmanager exited: %s", log.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// notifications collects what serve sends to a --notify URL.
type notifications struct {
	mu  sync.Mutex
	got []serve.Notification
}

func (n *notifications) of(alert, status string) []serve.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []serve.Notification
	for _, x := range n.got {
		if x.Alert.Name() == alert && x.Status == status {
			out = append(out, x)
		}
	}
	return out
}

// readmeAlertmanagerConfig is the README's alertmanager.yml example with the
// replacements made (each must be found).
func readmeAlertmanagerConfig(t *testing.T, replace map[string]string) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "```yaml\n# alertmanager.yml\n")
	require.True(t, ok, "README: the alertmanager.yml example is gone; update this test")
	conf, _, _ := strings.Cut(rest, "```")
	for from, to := range replace {
		require.Contains(t, conf, from, "README's alertmanager.yml changed: update this test")
		conf = strings.ReplaceAll(conf, from, to)
	}
	return conf
}

// The whole chain, real, configured as the README says: Prometheus loads `tbops rules` and scrapes a
// simulated node whose oracle p95 is 27 s; EnergyOracleLatencyHigh fires;
// Alertmanager (repeat_interval 1s, so it re-delivers the alert) posts it to
// `tbops serve`'s webhook with the bearer token; serve diagnoses
// energy-stalled for that node and notifies a test receiver exactly once with
// the alert, the report and its planned actions. Then the node recovers, the
// alert resolves, and exactly one resolved notification follows. The state
// file and `tbops history --alerts` keep it all.
func TestAlertFlowsFromPrometheusThroughAlertmanagerToServeOnce(t *testing.T) {
	const alert, token = "EnergyOracleLatencyHigh", "webhook-s3cret"
	node := nodetest.Start(t, nodetest.WithScenarioName("energy-oracle-latency"))

	got := &notifications{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n serve.Notification
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got.mu.Lock()
		got.got = append(got.got, n)
		got.mu.Unlock()
	}))
	defer receiver.Close()

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token), 0o600))
	serveAddr := freeAddr(t)
	amAddr := startAlertmanager(t, readmeAlertmanagerConfig(t, map[string]string{
		"http://tbops-a.internal:9847/api/v1/alertmanager": "http://" + serveAddr + serve.WebhookPath,
		"/etc/alertmanager/tbops-token":                    tokenFile,
		// Alertmanager re-delivers the firing alert every second: serve dedupes.
		"group_by: [alertname, instance]": "group_by: [alertname, instance]\n      group_wait: 0s\n      group_interval: 1s\n      repeat_interval: 1s",
	}))

	code, rules, errOut := runCLI(t, nil, "rules")
	require.Equal(t, 0, code, errOut)
	rulesFile := filepath.Join(dir, "tbops-rules.yml")
	require.NoError(t, os.WriteFile(rulesFile, []byte(rules), 0o600))
	conf, err := promtest.ConfigYAML(promtest.Config{Targets: []string{node.URL() + "metrics"}, RuleFiles: []string{rulesFile}})
	require.NoError(t, err)
	conf += "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [" + strconv.Quote(amAddr) + "]\n"
	prom := promtest.StartWith(t, promtest.Config{Raw: conf})

	state := filepath.Join(dir, "state.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", serveAddr, "--rpc", node.URL(), "--scrape-interval", "500ms",
			"--state", state, "--notify", receiver.URL + "/hooks/secret-path"},
			strings.NewReader(""), io.Discard, &stderr, func(k string) string {
				return map[string]string{webhookTokenEnv: token}[k]
			})
	}()
	base := "http://" + serveAddr
	alertsOf := func() []serve.AlertRecord {
		resp, err := http.Get(base + "/api/v1/alerts")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var log serve.AlertLog
		_ = json.NewDecoder(resp.Body).Decode(&log)
		var out []serve.AlertRecord
		for _, a := range log.Alerts {
			if a.Alertname == alert {
				out = append(out, a)
			}
		}
		return out
	}
	failed := func() string { return "prometheus:\n" + prom.Log() + "\nserve:\n" + stderr.String() }

	// Alertmanager delivers the firing alert again and again; one notification.
	waitFor(t, "three deliveries of the firing alert, the later ones suppressed", func() bool {
		as := alertsOf()
		return len(as) >= 3 && len(as[2].Notifications) == 1 && as[2].Notifications[0].Result == serve.ResultSuppressed
	})
	firing := got.of(alert, serve.AlertFiring)
	require.Len(t, firing, 1, "exactly one notification for the firing alert; %s", failed())
	n := firing[0]
	assert.Equal(t, node.URL(), n.Node)
	assert.Equal(t, "energy-stalled", n.Runbook)
	nu, err := url.Parse(node.URL())
	require.NoError(t, err)
	assert.Equal(t, nu.Host, n.Alert.Labels["instance"], "matched by Prometheus' instance label")
	assert.Equal(t, "warning", n.Alert.Labels["severity"])
	assert.Equal(t, tbops.StatusWarning, n.Report.Status)
	require.NotEmpty(t, n.Report.Matched(), "the report's matched paths")
	assert.Contains(t, n.Summary, "[WARNING] energy-stalled on "+node.URL()+": alert "+alert+" firing")
	assert.Contains(t, n.Summary, "firing oracle-latency-high")
	assert.Contains(t, n.Summary, "path "+n.Report.Matched()[0].ID)
	assert.Contains(t, n.Summary, "\n  $ ", "the planned commands")

	// The node recovers: Prometheus resolves the alert, one resolved
	// notification with a fresh diagnosis follows.
	node.Update(func(s *nodetest.Scenario) {
		p95 := 2.0
		s.Energy.OracleP95 = &p95
	})
	waitFor(t, "the resolved notification", func() bool { return len(got.of(alert, serve.AlertResolved)) > 0 })
	resolved := got.of(alert, serve.AlertResolved)
	require.Len(t, resolved, 1, failed())
	assert.False(t, resolved[0].Alert.EndsAt.IsZero())
	assert.Equal(t, n.Alert.Fingerprint, resolved[0].Alert.Fingerprint)
	assert.NotContains(t, fmt.Sprint(resolved[0].Report.Firing()), "oracle-latency-high", "the fresh diagnosis agrees the latency is over")
	assert.Len(t, got.of(alert, serve.AlertFiring), 1, "still one firing notification")

	cancel()
	require.Equal(t, 0, <-exit, stderr.String())
	assert.NotContains(t, stderr.String(), "secret-path", "notify URLs are shown as scheme://host")
	assert.NotContains(t, stderr.String(), token)
	assert.Contains(t, stderr.String(), "tbops serve: notifying "+receiver.URL+" (json)")

	code, out, errOut := runCLI(t, nil, "history", "--state", state, "--alerts", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var log serve.AlertLog
	require.NoError(t, json.Unmarshal([]byte(out), &log))
	results := map[string]int{}
	for _, a := range log.Alerts {
		if a.Alertname != alert {
			continue
		}
		assert.Equal(t, node.URL(), a.Node)
		assert.Equal(t, "tbops", a.Receiver)
		for _, nt := range a.Notifications {
			results[nt.Kind+" "+nt.Result]++
			assert.Equal(t, receiver.URL, nt.Target)
		}
	}
	assert.Equal(t, 1, results["firing sent"], "%v", results)
	assert.Equal(t, 1, results["resolved sent"], "%v", results)
	assert.GreaterOrEqual(t, results["firing suppressed"], 2, "%v", results)
	assert.NotContains(t, out, "secret-path")
	code, table, _ := runCLI(t, nil, "history", "--state", state, "--alerts", "--runbook", "energy-stalled")
	require.Equal(t, 0, code)
	assert.Regexp(t, `RECEIVED\s+ALERT\s+STATUS\s+FINGERPRINT\s+NODE\s+OUTCOME\s+NOTIFICATIONS`, table)
	assert.Regexp(t, alert+`\s+firing\s+`+n.Alert.Fingerprint+`\s+`+node.URL()+`\s+diagnosed: warning.*sent firing → `+receiver.URL, table)
}
