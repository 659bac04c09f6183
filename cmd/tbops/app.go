package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/rpc"
	tbruntime "github.com/theblock/tbops/runtime"
)

const defaultRPC = "http://127.0.0.1:3030/"

// app holds the global flags and the process's streams and environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	rpcURLs    []string
	promURL    string
	metricsURL string
	token      string
	output     string
	timeout    time.Duration
	// promHeaders ("Name: value") go with every Prometheus request (tenant ids);
	// promMatch ("label=value") scopes every metrics question.
	promHeaders []string
	promMatch   []string

	// sim is doctor's simulated node, when it runs one.
	sim *sim

	httpOnce sync.Once
	http     *http.Client
	httpErr  error
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tbops",
		Short: "Fast-Mainnet operations: the runbook as a tool",
		Long: `tbops diagnoses a Fast-Mainnet node the way the operations runbook does, with
evidence: which symptom fires, which resolution path applies, what to run next.

Start with "tbops doctor". With no --rpc it runs against a simulated node.
Exit codes: 0 ok, 1 warning, 2 critical, 3 unknown or error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch a.output {
			case "table", "json":
			default:
				return fmt.Errorf("-o %q: want table or json", a.output)
			}
			if _, err := a.promMatchers(); err != nil {
				return err
			}
			if _, err := a.promRequestOptions(); err != nil {
				return err
			}
			if a.timeout <= 0 {
				return fmt.Errorf("--timeout %s: want a positive duration such as 5s", a.timeout)
			}
			return nil
		},
	}
	f := root.PersistentFlags()
	f.StringArrayVar(&a.rpcURLs, "rpc", nil, "node JSON-RPC URL (env TB_RPC_URL, default "+defaultRPC+"); repeat for many nodes in doctor")
	f.StringVar(&a.promURL, "prom", "", "Prometheus-API base URL (env PROMETHEUS_URL); without it metrics are scraped from the node")
	f.StringVar(&a.metricsURL, "metrics", "", "node /metrics URL to scrape (default: the --rpc host's /metrics)")
	f.StringVar(&a.token, "token", "", "bearer token for the node RPC (else the method's env var, e.g. TB_ENERGY_RPC_TOKEN)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&a.timeout, "timeout", rpc.DefaultTimeout, "deadline of each RPC call, its retries and their waits included, and of each metrics query")
	f.StringArrayVar(&a.promHeaders, "prom-header", nil, `header for every Prometheus request, "Name: value" (e.g. "X-Scope-OrgID: ops" for Mimir/Cortex); repeatable`)
	f.StringArrayVar(&a.promMatch, "prom-match", nil, `label matcher added to every metrics question, "label=value" (e.g. instance=node-a:3030); repeatable`)

	root.AddCommand(a.doctorCmd(), a.simCmd(), a.queryCmd(), a.rulesCmd(),
		a.treasuryCmd(), a.energyCmd(), a.receiptsCmd(), a.governorCmd(), a.runtimeCmd(),
		a.serveCmd(), a.historyCmd())
	return root
}

// rpcURL is the one node to talk to: the first --rpc, else TB_RPC_URL, else the default.
func (a *app) rpcURL() string {
	if len(a.rpcURLs) > 0 {
		return a.rpcURLs[0]
	}
	if v := a.getenv("TB_RPC_URL"); v != "" {
		return v
	}
	return defaultRPC
}

// rpcGiven says whether the user named a node (flag or environment).
func (a *app) rpcGiven() bool { return len(a.rpcURLs) > 0 || a.getenv("TB_RPC_URL") != "" }

// rpcClient builds a JSON-RPC client for url with the global token and
// --timeout as the deadline of each call, retries included.
// tokenEnv names the environment variable that holds the token when --token is
// not given ("" for none).
func (a *app) rpcClient(url, tokenEnv string) (*rpc.Client, error) {
	token := a.token
	if token == "" && tokenEnv != "" {
		token = a.getenv(tokenEnv)
	}
	hc, err := a.httpClient()
	if err != nil {
		return nil, err
	}
	return rpc.NewClient(url, rpc.WithTimeout(a.timeout), rpc.WithToken(token),
		rpc.WithUserAgent("tbops"), rpc.WithHTTPClient(hc))
}

// httpClient is the one HTTP client every RPC client of this run shares (one
// connection pool), with the runbook's client-side TLS handshake bound from
// TB_TLS_HANDSHAKE_TIMEOUT_MS.
func (a *app) httpClient() (*http.Client, error) {
	a.httpOnce.Do(func() {
		cfg, err := tbruntime.ClientConfig{}.ApplyEnv(a.getenv)
		if err != nil {
			a.httpErr = err
			return
		}
		a.http = &http.Client{Transport: cfg.NewTransport()}
	})
	return a.http, a.httpErr
}

// metricsURLFor is the /metrics URL of the node at rpcURL, unless --metrics names one.
func (a *app) metricsURLFor(rpcURL string) string {
	if a.metricsURL != "" {
		return a.metricsURL
	}
	return strings.TrimRight(rpcURL, "/") + "/metrics"
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printReport prints one report in the chosen format and returns the exit code
// its status calls for.
func (a *app) printReport(r tbops.Report) error {
	var err error
	if a.output == "json" {
		err = a.printJSON(r)
	} else {
		err = r.WriteText(a.stdout)
	}
	if err != nil {
		return err
	}
	return exitCode(r.Status.ExitCode())
}

// isTerminal says whether w is a terminal, to decide whether to show progress.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress prints a transient progress line on stderr when it is a terminal.
func (a *app) progress(format string, args ...any) {
	if isTerminal(a.stderr) {
		fmt.Fprintf(a.stderr, "\r\033[K"+format, args...)
	}
}

// progressDone clears the progress line.
func (a *app) progressDone() {
	if isTerminal(a.stderr) {
		fmt.Fprint(a.stderr, "\r\033[K")
	}
}
