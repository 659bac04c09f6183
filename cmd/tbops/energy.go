package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/energy"
	tbruntime "github.com/theblock/tbops/runtime"
)

// energyClient is the energy client of url: --timeout, and the token from
// --token or else TB_ENERGY_RPC_TOKEN (the library reads no environment).
func (a *app) energyClient(url string) (*energy.Client, error) {
	rc, err := a.rpcClient(url, energy.TokenEnv)
	if err != nil {
		return nil, &exitError{code: 3, err: fmt.Errorf("%v; pass --rpc URL", err)}
	}
	return energy.NewClientFromRPC(rc), nil
}

func (a *app) energyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "energy", Short: "Energy Stalled runbook, RPC guard, reading signatures"}
	cmd.AddCommand(a.energyDiagnoseCmd(), a.energyMarketCmd(), a.energyCreditsCmd(), a.energyDisputesCmd(),
		a.energySignCmd(), a.energyVerifyCmd(), a.energyGuardCmd())
	return cmd
}

func (a *app) energyDiagnoseCmd() *cobra.Command {
	var slo bool
	var globs []string
	cmd := &cobra.Command{Use: "diagnose", Short: "Run the Energy Stalled runbook against a node", Args: cobra.NoArgs,
		Long: `diagnose runs the Energy Stalled runbook against the node and prints what fires, why,
and what to do. It changes nothing. Windowed symptoms are decided from the node's
exact RPC evidence (settlement times, credit ages, dispute times) where the runbook
allows, else from metrics that cover the window: without --prom, a first look is
unknown where a window is not yet observed.

It also greps the node's logs (--log-glob, on the node's host) for signature
failures and timestamp_skew, and reads this host's clock-sync state, shown apart:
tbops's machine is not the node.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, g := range globs {
				if _, err := filepath.Match(g, ""); err != nil {
					return &exitError{code: 3, err: fmt.Errorf("--log-glob %q: %v; quote the pattern as a shell glob, e.g. '/var/log/node/*.log'", g, err)}
				}
			}
			ctx := cmd.Context()
			t := &target{rpcURL: a.rpcURL(), metricsURL: a.metricsURLFor(a.rpcURL()), now: time.Now, slo: slo}
			src, closeSrc, srcErr := a.metricsSource(ctx, t.metricsURL)
			defer closeSrc()
			t.src = src
			r, err := a.energyRunbookWith(t, globs).Diagnose(ctx)
			if err != nil {
				return rpcErr(err)
			}
			if srcErr != nil {
				r.Warnf("no metrics source: %v", srcErr)
			}
			return a.printReport(r)
		}}
	cmd.Flags().BoolVar(&slo, "slo", false, "also evaluate the Energy SLO table")
	cmd.Flags().StringArrayVar(&globs, "log-glob", []string{energy.DefaultLogGlob}, "node log files to grep for signature failures and timestamp_skew (repeatable)")
	return cmd
}

// energyRunbook is doctor's entry for the runbook (until doctor iterates
// tbops.Runbook values).
func (a *app) energyRunbook() *runbook {
	return &runbook{id: energy.RunbookID, usesMetrics: true, diagnose: func(ctx context.Context, t *target) (tbops.Report, error) {
		return a.energyRunbookFor(t).Diagnose(ctx)
	}}
}

// energyRunbookFor is the Energy Stalled runbook for one of doctor's targets:
// the node's logs at the runbook's path are grepped and this host's clock is
// read, as energy diagnose does by default.
func (a *app) energyRunbookFor(t *target) tbops.Runbook {
	return a.energyRunbookWith(t, []string{energy.DefaultLogGlob})
}

// energyRunbookWith is the runbook for t grepping the log files of globs.
func (a *app) energyRunbookWith(t *target, globs []string) tbops.Runbook {
	c, err := a.energyClient(t.rpcURL)
	if err != nil {
		return tbops.Func(energy.RunbookID, func(context.Context) (tbops.Report, error) { return tbops.Report{}, err })
	}
	return energy.NewRunbook(c, t.src, energy.Options{Now: t.now, SLO: t.slo, LogGlobs: globs, HostClock: energy.HostClockSync})
}

func (a *app) energyMarketCmd() *cobra.Command {
	return &cobra.Command{Use: "market", Short: "List providers (energy.market)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.energyClient(a.rpcURL())
			if err != nil {
				return err
			}
			m, err := c.Market(cmd.Context())
			if err != nil {
				return rpcErr(err)
			}
			if a.output == "json" {
				if m.Providers == nil {
					m.Providers = []energy.Provider{}
				}
				return a.printJSON(m)
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROVIDER\tSTATUS\tREPUTATION\tCAPACITY_KWH\tPRICE_PER_KWH")
			for _, p := range m.Providers {
				score := "-"
				if v, ok := p.Score(); ok {
					score = fmt.Sprintf("%.2f", v)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ProviderID, dashIfBlank(p.Status), score, orDash(p.CapacityKWh, "%g"), orDash(p.PricePerKWh, "%s"))
			}
			return tw.Flush()
		}}
}

func dashIfBlank(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// orDash formats *p, or "-" when the node did not send it.
func orDash[T any](p *T, format string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(format, *p)
}

func (a *app) energyCreditsCmd() *cobra.Command {
	var status, provider string
	var limit int
	cmd := &cobra.Command{Use: "credits", Short: "List credits (energy.credits), following cursors up to --limit", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.energyClient(a.rpcURL())
			if err != nil {
				return err
			}
			if limit <= 0 {
				return &exitError{code: 3, err: fmt.Errorf("--limit %d: want a positive number", limit)}
			}
			var list []energy.Credit
			for cr, err := range c.AllCredits(cmd.Context(), energy.CreditFilter{Status: status, ProviderID: provider, Limit: min(limit, 500)}, limit) {
				if err != nil {
					return rpcErr(err)
				}
				list = append(list, cr)
			}
			total := creditsKWh(list)
			if a.output == "json" {
				return a.printJSON(map[string]any{"credits": nonNilCredits(list), "count": len(list), "total_kwh": total})
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CREDIT\tPROVIDER\tMETER\tKWH\tSTATUS\tCREATED")
			for _, cr := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cr.CreditID, cr.ProviderID, cr.Meter, orDash(cr.AmountKWh, "%g"),
					cr.Status, unixTime(cr.CreatedAt))
			}
			fmt.Fprintf(tw, "\n%d credits, %s kWh\n", len(list), orDash(total, "%g"))
			return tw.Flush()
		}}
	cmd.Flags().StringVar(&status, "status", "", "pending or settled")
	cmd.Flags().StringVar(&provider, "provider", "", "only this provider_id")
	cmd.Flags().IntVar(&limit, "limit", 50, "most credits to list")
	return cmd
}

// creditsKWh is the credits' total kWh, nil when a credit's amount is missing
// (a partial sum would read as the total).
func creditsKWh(list []energy.Credit) *float64 {
	total := 0.0
	for _, cr := range list {
		if cr.AmountKWh == nil {
			return nil
		}
		total += *cr.AmountKWh
	}
	return &total
}

func nonNilCredits(l []energy.Credit) []energy.Credit {
	if l == nil {
		return []energy.Credit{}
	}
	return l
}

// unixTime prints a time the node sent, "-" for none.
func unixTime(t *int64) string {
	if t == nil || *t <= 0 {
		return "-"
	}
	return time.Unix(*t, 0).UTC().Format(time.RFC3339)
}

func (a *app) energyDisputesCmd() *cobra.Command {
	var status, id string
	var limit int
	cmd := &cobra.Command{Use: "disputes", Short: "List disputes (energy.disputes), or show one with --id (energy.dispute)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.energyClient(a.rpcURL())
			if err != nil {
				return err
			}
			if id != "" {
				d, err := c.Dispute(cmd.Context(), id)
				if err != nil {
					return rpcErr(err)
				}
				if a.output == "json" {
					return a.printJSON(d)
				}
				fmt.Fprintf(a.stdout, "dispute %s: %s, provider %s, meter %s, reason %s\nopened %s, resolved %s\nevidence: %s\n",
					d.DisputeID, d.Status, d.ProviderID, d.Meter, d.Reason, unixTime(d.OpenedAt), unixTime(d.ResolvedAt), string(d.Evidence))
				return nil
			}
			ds, err := c.Disputes(cmd.Context(), status, limit)
			if err != nil {
				return rpcErr(err)
			}
			if a.output == "json" {
				if ds == nil {
					ds = []energy.Dispute{}
				}
				return a.printJSON(map[string]any{"disputes": ds})
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DISPUTE\tPROVIDER\tSTATUS\tREASON\tOPENED\tRESOLVED")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.DisputeID, d.ProviderID, d.Status, d.Reason, unixTime(d.OpenedAt), unixTime(d.ResolvedAt))
			}
			return tw.Flush()
		}}
	cmd.Flags().StringVar(&status, "status", "", "open or resolved")
	cmd.Flags().IntVar(&limit, "limit", 50, "most disputes to list (max 500)")
	cmd.Flags().StringVar(&id, "id", "", "show one dispute with its evidence")
	return cmd
}

// readSecret reads a key from a file (or "-" for stdin), else an env variable.
func (a *app) readSecret(file, env, what string) (string, error) {
	switch {
	case file == "-":
		b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<16))
		return string(b), err
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s file: %w", what, err)
		}
		return string(b), nil
	case env != "" && a.getenv(env) != "":
		return a.getenv(env), nil
	}
	return "", fmt.Errorf("no %s: pass --%s-file FILE or set %s", what, strings.Fields(what)[0], env)
}

func (a *app) energySignCmd() *cobra.Command {
	var r energy.Reading
	var keyFile, keyEnv, ts string
	cmd := &cobra.Command{Use: "sign-reading", Short: "Sign a meter reading (replaces the runbook's Python snippet, Path B)",
		Long: `sign-reading builds the signed message exactly as the runbook does
(provider_id ‖ meter ‖ total_kwh u64 LE ‖ timestamp u64 LE ‖ nonce u64 LE), signs it
with the provider's Ed25519 key (a 32-byte seed or 64-byte key, hex or base64, or
a PKCS #8 PEM file) under --scheme, and prints the reading as JSON for
verify-reading or energy.submit_reading.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			secret, err := a.readSecret(keyFile, keyEnv, "key")
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			key, err := energy.DecodePrivateKey(secret)
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			switch ts {
			case "", "now":
				r.Timestamp = uint64(time.Now().Unix())
			default:
				var v uint64
				if _, err := fmt.Sscan(ts, &v); err != nil {
					return &exitError{code: 3, err: fmt.Errorf("--timestamp %q: want Unix seconds or now", ts)}
				}
				r.Timestamp = v
			}
			if err := validateSignFlags(r); err != nil {
				return &exitError{code: 3, err: err}
			}
			signed, err := energy.Sign(r, key)
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			out := map[string]any{"reading": signed, "public_key": base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)),
				"message_hex": fmt.Sprintf("%x", signed.Message())}
			if a.output == "json" {
				return a.printJSON(out)
			}
			return a.printJSON(signed)
		}}
	f := cmd.Flags()
	f.StringVar(&r.ProviderID, "provider", "", "provider_id")
	f.StringVar(&r.Meter, "meter", "", "meter id")
	f.Uint64Var(&r.TotalKWh, "total-kwh", 0, "total_kwh (integer)")
	f.StringVar(&ts, "timestamp", "now", "Unix seconds, or now")
	f.Uint64Var(&r.Nonce, "nonce", 0, "nonce (must exceed the provider's last)")
	f.StringVar(&r.Scheme, "scheme", energy.SchemeEd25519, "ed25519 or ed25519-blake3")
	f.StringVar(&keyFile, "key-file", "", "private key file (- for stdin)")
	f.StringVar(&keyEnv, "key-env", "TB_ENERGY_SIGNING_KEY", "environment variable holding the private key when no --key-file")
	return cmd
}

func validateSignFlags(r energy.Reading) error {
	switch {
	case r.ProviderID == "":
		return errors.New("--provider is required")
	case r.Meter == "":
		return errors.New("--meter is required")
	}
	_, err := energy.SignedBytes(r.Scheme, nil)
	return err
}

func (a *app) energyVerifyCmd() *cobra.Command {
	var pubKey, pubFile, pubEnv string
	var skew time.Duration
	var checkTime bool
	cmd := &cobra.Command{Use: "verify-reading [FILE|-]", Short: "Verify a signed reading and say what failed and why",
		Long: `verify-reading checks one reading (JSON, as sign-reading prints or a node logs it;
the reference node's meter_address/kwh_reading are accepted) against the provider's
public key: from --public-key, --public-key-file, $TB_ENERGY_PUBLIC_KEY, or else the
node (energy.provider). It prints the failure reason the node would count
(invalid_format, verification_failed, key_not_found, scheme_unsupported) and, with
--check-time, timestamp skew against this host's clock. Exit 0 valid, 2 invalid,
3 error.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw []byte
			var err error
			switch {
			case len(args) == 0 || args[0] == "-":
				raw, err = io.ReadAll(io.LimitReader(a.stdin, 1<<20))
			default:
				raw, err = os.ReadFile(args[0])
			}
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("reading the reading: %w", err)}
			}
			r, perr := energy.ParseReading(unwrapReading(raw))
			res := verifyResult{Valid: false}
			if perr != nil {
				res.fail(perr)
				return a.printVerify(res)
			}
			res.ProviderID, res.Scheme = r.ProviderID, schemeOr(r.Scheme)
			key := pubKey
			if key == "" && pubFile != "" {
				b, err := os.ReadFile(pubFile)
				if err != nil {
					return &exitError{code: 3, err: fmt.Errorf("--public-key-file: %w", err)}
				}
				key = string(b)
			}
			if key == "" {
				key = a.getenv(pubEnv)
			}
			keyScheme := ""
			if key == "" {
				c, err := a.energyClient(a.rpcURL())
				if err != nil {
					return err
				}
				p, err := c.Provider(cmd.Context(), r.ProviderID)
				if errors.Is(err, energy.ErrNotFound) {
					res.fail(&energy.VerifyError{Reason: energy.ReasonKeyNotFound, ProviderID: r.ProviderID, Detail: "the node knows no such provider"})
					return a.printVerify(res)
				}
				if err != nil {
					return rpcErr(fmt.Errorf("%w (or pass --public-key)", err))
				}
				if p.PublicKey == "" {
					res.fail(&energy.VerifyError{Reason: energy.ReasonKeyNotFound, ProviderID: r.ProviderID, Detail: "the provider has no public key on the node"})
					return a.printVerify(res)
				}
				key, keyScheme = p.PublicKey, p.Scheme
				res.KeySource = "node energy.provider"
			} else {
				res.KeySource = "flag/file/env"
			}
			reg := energy.NewKeyRegistry()
			if err := reg.Add(r.ProviderID, keyScheme, key); err != nil {
				res.fail(err)
				return a.printVerify(res)
			}
			if checkTime {
				chk := energy.NewChecker(reg)
				chk.MaxSkew = skew
				err = chk.Check(r)
			} else {
				err = energy.VerifyWith(reg, r)
			}
			if err != nil {
				res.fail(err)
			} else {
				res.Valid = true
			}
			return a.printVerify(res)
		}}
	f := cmd.Flags()
	f.StringVar(&pubKey, "public-key", "", "provider public key (hex or base64)")
	f.StringVar(&pubFile, "public-key-file", "", "file holding the provider public key")
	f.StringVar(&pubEnv, "public-key-env", "TB_ENERGY_PUBLIC_KEY", "environment variable holding the public key")
	f.BoolVar(&checkTime, "check-time", false, "also check timestamp skew against this host's clock")
	f.DurationVar(&skew, "max-skew", energy.DefaultMaxSkew, "timestamp tolerance with --check-time")
	return cmd
}

// unwrapReading accepts sign-reading -o json output ({"reading": {...}}) too.
func unwrapReading(raw []byte) []byte {
	s := strings.TrimSpace(string(raw))
	if i := strings.Index(s, `"reading"`); strings.HasPrefix(s, "{") && i >= 0 && i < 16 {
		var w struct {
			Reading *json.RawMessage `json:"reading"`
		}
		if json.Unmarshal([]byte(s), &w) == nil && w.Reading != nil {
			return *w.Reading
		}
	}
	return raw
}

func schemeOr(s string) string {
	if s == "" {
		return energy.SchemeEd25519
	}
	return s
}

type verifyResult struct {
	Valid      bool   `json:"valid"`
	ProviderID string `json:"provider_id,omitempty"`
	Scheme     string `json:"scheme,omitempty"`
	KeySource  string `json:"key_source,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Error      string `json:"error,omitempty"`
}

func (v *verifyResult) fail(err error) {
	v.Valid = false
	v.Error = err.Error()
	var ve *energy.VerifyError
	switch {
	case errors.As(err, &ve):
		v.Reason = ve.Reason
	case errors.Is(err, energy.ErrTimestampSkew):
		v.Reason = "timestamp_skew"
	case errors.Is(err, energy.ErrNonceReplay):
		v.Reason = "nonce_replay"
	}
}

func (a *app) printVerify(v verifyResult) error {
	if a.output == "json" {
		if err := a.printJSON(v); err != nil {
			return err
		}
	} else if v.Valid {
		fmt.Fprintf(a.stdout, "VALID: reading from %s verifies under %s (key from %s)\n", v.ProviderID, v.Scheme, v.KeySource)
	} else {
		fmt.Fprintf(a.stdout, "INVALID: %s\n  reason: %s\n", v.Error, dashIfBlank(v.Reason))
		fmt.Fprintln(a.stdout, "  next: "+verifyHint(v.Reason))
	}
	if v.Valid {
		return nil
	}
	return exitCode(2)
}

func verifyHint(reason string) string {
	switch reason {
	case energy.ReasonInvalidFormat:
		return "fix the reading's fields or encoding (signature: 64 bytes base64 or hex; keys: 32 bytes)"
	case energy.ReasonVerificationFailed:
		return "the signature does not match: check the provider's signing key against its registered public key, and the scheme (ed25519 vs ed25519-blake3)"
	case energy.ReasonKeyNotFound:
		return "register the provider's public key with the oracle (contract-cli energy oracle keys status)"
	case energy.ReasonSchemeUnsupported:
		return "sign with ed25519 or ed25519-blake3, matching the scheme the key is registered for"
	case "timestamp_skew":
		return "sync the provider's clock with NTP (runbook Path C)"
	}
	return "see the error above"
}

func (a *app) energyGuardCmd() *cobra.Command {
	var listen, upstream, envFile string
	var hops, maxClients, rps int
	var maxBody, maxBuffered int64
	var so energy.GuardServerOptions
	cmd := &cobra.Command{Use: "guard --listen ADDR --upstream URL", Short: "Run the energy RPC guard as a reverse proxy in front of a node",
		Long: `guard puts energy.Guard in front of a node: energy.* JSON-RPC calls need the bearer
token TB_ENERGY_RPC_TOKEN (auth off, with a warning, when unset) and are limited to
TB_ENERGY_RPC_RPS requests per second per client (default 50) before any parameter
is parsed; everything else passes through. The guard decides on the whole body
and forwards exactly what it checked: a batch, a non-object, a "method" key given
twice (in any letter case) or invalid JSON is refused, never forwarded. It serves
its own metrics (energy_rpc_rejected_total, energy_rpc_rate_limit_rps,
energy_rpc_guard_connections) at /guard/metrics. --token and --rps override the
environment.

Every wait is bounded: --header-timeout, --body-timeout (counted from the end of
the headers), --idle-timeout, --upstream-timeout (the node's whole answer) and
--max-conns (more connections wait in the accept queue; each may also hold a
connection to the node, so keep 2 x --max-conns under ulimit -n). Failures the
guard answers itself are JSON-RPC errors with the request's id (null when the id
is not a valid string, number or null):

  -33009 unauthorized            HTTP 200
  -33010 rate limited            HTTP 429, Retry-After, error.data.retry_after_ms
  -32600 / -32700 bad request    HTTP 200 (also a body over --max-body)
  -32600 body not in time        HTTP 408, connection closed
  -32001 guard busy              HTTP 503, Retry-After (over --max-buffered bytes held)
  -32603 node unreachable        HTTP 502
  -32603 node not in time        HTTP 504

With --env-file FILE (KEY=VALUE lines, as a systemd EnvironmentFile) the token and
limit come from the file instead, and every change to it applies without a restart;
a file with a bad value changes nothing and is logged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if upstream == "" {
				return &exitError{code: 3, err: errors.New("--upstream URL is required (the node's RPC URL)")}
			}
			if err := checkGuardFlags(cmd, rps, hops, maxClients, maxBody, maxBuffered, so); err != nil {
				return &exitError{code: 3, err: err}
			}
			getenv := a.getenv
			var watcher *tbruntime.Watcher[envFileVars]
			if envFile != "" {
				if a.token != "" || rps > 0 {
					return &exitError{code: 3, err: errors.New("--env-file holds the token and limit: drop --token and --rps")}
				}
				w, err := tbruntime.NewWatcher(envFile, loadGuardEnvFile, tbruntime.WithLogger(slog.New(slog.NewTextHandler(a.stderr, nil))))
				if err != nil {
					return &exitError{code: 3, err: err}
				}
				defer w.Close()
				watcher, getenv = w, w.Current().getenv
			}
			o, err := energy.GuardOptionsFromEnv(getenv)
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			if a.token != "" {
				o.Token = a.token
			}
			if rps > 0 {
				o.RPS = rps
			}
			logger := slog.New(slog.NewTextHandler(a.stderr, nil))
			o.TrustedProxyHops, o.MaxClients, o.MaxBody, o.MaxBuffered, o.Logger = hops, maxClients, maxBody, maxBuffered, logger
			g, err := energy.NewGuard(o)
			if err != nil {
				return &exitError{code: 3, err: err}
			}
			so.MetricsPath, so.Logger = "/guard/metrics", logger
			srv, err := energy.NewGuardServer(g, upstream, so)
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("%w; pass --upstream http://HOST:PORT/", err)}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("--listen %s: %w", listen, err)}
			}
			fmt.Fprintf(a.stderr, "tbops: energy guard on http://%s -> %s (limit %d rps per client, auth %s; body %s, node %s, at most %d connections)\n",
				ln.Addr(), tbops.RedactURL(upstream), g.RPS(), onOff(g.AuthEnabled()), so.BodyTimeout, so.UpstreamTimeout, so.MaxConns)
			if watcher != nil {
				go func() {
					for ch := range watcher.Subscribe() {
						if ch.Err != nil {
							fmt.Fprintf(a.stderr, "tbops: %v; the guard keeps its running token and limit\n", ch.Err)
							continue
						}
						if err := g.Reload(ch.New.getenv); err != nil {
							fmt.Fprintf(a.stderr, "tbops: reload %s: %v; the guard keeps its running token and limit\n", envFile, err)
							continue
						}
						fmt.Fprintf(a.stderr, "tbops: reloaded %s: limit %d rps per client, auth %s\n", envFile, g.RPS(), onOff(g.AuthEnabled()))
					}
				}()
			}
			if err := srv.Serve(cmd.Context(), ln); err != nil {
				return &exitError{code: 3, err: err}
			}
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:3031", "address to listen on")
	f.StringVar(&upstream, "upstream", "", "node JSON-RPC URL to forward to")
	f.IntVar(&rps, "rps", 0, "requests per second per client (default $TB_ENERGY_RPC_RPS or 50)")
	f.IntVar(&hops, "trusted-proxy-hops", 0, "take the client IP from this X-Forwarded-For hop (from the right); 0 = the connection's address")
	f.IntVar(&maxClients, "max-clients", energy.DefaultMaxClients, "clients tracked at most (memory bound)")
	f.Int64Var(&maxBody, "max-body", energy.DefaultMaxBody, "request body limit in bytes (-32600 beyond)")
	f.Int64Var(&maxBuffered, "max-buffered", energy.DefaultMaxBuffered, "request bytes held at once over all connections (-32001, HTTP 503 beyond): bounds memory")
	f.DurationVar(&so.HeaderTimeout, "header-timeout", energy.DefaultHeaderTimeout, "time a client has to send its request headers")
	f.DurationVar(&so.BodyTimeout, "body-timeout", energy.DefaultBodyTimeout, "time a client has to send its request body, after the headers")
	f.DurationVar(&so.IdleTimeout, "idle-timeout", energy.DefaultIdleTimeout, "close a keep-alive connection idle this long")
	f.DurationVar(&so.UpstreamTimeout, "upstream-timeout", energy.DefaultUpstreamTimeout, "time the node has to answer a forwarded request")
	f.IntVar(&so.MaxConns, "max-conns", energy.DefaultMaxConns, "client connections open at once; more wait in the accept queue")
	f.StringVar(&envFile, "env-file", "", "KEY=VALUE file with TB_ENERGY_RPC_TOKEN and TB_ENERGY_RPC_RPS, reloaded when it changes")
	return cmd
}

// checkGuardFlags refuses the values the guard would not take, naming the flag
// (a zero in the library means "the default", which a flag should not hide).
func checkGuardFlags(cmd *cobra.Command, rps, hops, maxClients int, maxBody, maxBuffered int64, so energy.GuardServerOptions) error {
	for _, c := range []struct {
		flag string
		bad  bool
		want string
	}{
		{"rps", rps < 0, "a positive number (0 = $TB_ENERGY_RPC_RPS or 50)"},
		{"trusted-proxy-hops", hops < 0, "0 or more"},
		{"max-clients", maxClients <= 0, "a positive number"},
		{"max-body", maxBody <= 0, "a positive number of bytes"},
		{"max-buffered", maxBuffered <= 0, "a positive number of bytes"},
		{"max-conns", so.MaxConns <= 0, "a positive number"},
		{"header-timeout", so.HeaderTimeout <= 0, "a positive duration such as 5s"},
		{"body-timeout", so.BodyTimeout <= 0, "a positive duration such as 10s"},
		{"idle-timeout", so.IdleTimeout <= 0, "a positive duration such as 60s"},
		{"upstream-timeout", so.UpstreamTimeout <= 0, "a positive duration such as 10s"},
	} {
		if c.bad {
			return fmt.Errorf("--%s %s: want %s", c.flag, cmd.Flags().Lookup(c.flag).Value, c.want)
		}
	}
	return nil
}

// envFileVars are the variables of an environment file.
type envFileVars map[string]string

func (v envFileVars) getenv(k string) string { return v[k] }

// loadGuardEnvFile reads a systemd-style environment file (KEY=VALUE lines,
// # comments, optional quotes) and checks that the guard accepts its values,
// so a bad file is refused before it replaces the running one.
func loadGuardEnvFile(path string) (envFileVars, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vars := envFileVars{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%s line %d: want KEY=VALUE", path, i+1)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[strings.TrimSpace(k)] = v
	}
	if _, err := energy.GuardOptionsFromEnv(vars.getenv); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vars, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "OFF"
}
