package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// queryOutput is what `tbops query -o json` prints: the API's data plus what it
// said besides, and where it was asked.
type queryOutput struct {
	URL        string          `json:"url"`
	Query      string          `json:"query"`
	ResultType model.ValueType `json:"resultType"`
	Result     model.Value     `json:"result"`
	Warnings   []string        `json:"warnings,omitempty"`
	Infos      []string        `json:"infos,omitempty"`
}

func (a *app) queryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "query EXPR",
		Short: "The runbook's prometheus_query: print the first value or \"no data\"",
		Long: `query runs one PromQL instant query against Prometheus (--prom, else PROMETHEUS_URL,
else http://localhost:9090, as the runbook's prometheus_query helper) and prints the
first value — what the runbook reads with jq '.data.result[0].value[1]' — or "no data".
For a range-vector expression it prints the newest value of the first series.
With -o json it prints the whole result with the server's warnings and infos.
Server warnings go to stderr. Exit codes: 0 answered (including "no data"), 3 error.`,
		Example: `  tbops query 'rate(treasury_execution_errors_total[5m])'
  tbops query --prom https://mimir.example/prometheus 'histogram_quantile(0.95, oracle_latency_seconds_bucket)' -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			expr := strings.TrimSpace(args[0])
			if expr == "" {
				return &exitError{code: 3, err: errors.New("empty query: pass a PromQL expression such as 'up'")}
			}
			opts, _ := a.promRequestOptions() // validated before the command ran
			c, err := promq.NewClient(a.promBase(), append(opts, promq.WithTimeout(a.timeout))...)
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("%v; pass --prom URL or set PROMETHEUS_URL", err)}
			}
			res, err := c.Query(cmd.Context(), expr, time.Time{})
			if err != nil {
				return &exitError{code: 3, err: queryHint(err)}
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(a.stderr, "tbops: warning: %s\n", w)
			}
			for _, i := range res.Infos {
				fmt.Fprintf(a.stderr, "tbops: info: %s\n", i)
			}
			if a.output == "json" {
				return a.printJSON(queryOutput{URL: c.URL(), Query: expr, ResultType: res.Type, Result: res.Value,
					Warnings: res.Warnings, Infos: res.Infos})
			}
			v, ok := firstValue(res)
			if !ok {
				v = "no data"
			}
			fmt.Fprintln(a.stdout, v)
			return nil
		},
	}
}

// queryHint adds what to do next to a query error.
func queryHint(err error) error {
	switch {
	case errors.Is(err, promq.ErrUnavailable), errors.Is(err, promq.ErrNotFound), errors.Is(err, promq.ErrMalformed):
		return fmt.Errorf("%v; check --prom URL or PROMETHEUS_URL", err)
	case errors.Is(err, promq.ErrUnauthorized):
		return fmt.Errorf("%v; the server wants credentials: put them in the URL (https://user:pass@host) or use a proxy", err)
	case errors.Is(err, promq.ErrBadQuery):
		return fmt.Errorf("%v; fix the PromQL expression", err)
	case errors.Is(err, promq.ErrTimeout):
		return fmt.Errorf("%v; raise --timeout or narrow the query", err)
	}
	return err
}

// firstValue renders the first value of a result, as the runbook's jq reads it.
func firstValue(res *promq.QueryResult) (string, bool) {
	switch v := res.Value.(type) {
	case model.Vector:
		if len(v) == 0 {
			return "", false
		}
		if v[0].Histogram != nil {
			return v[0].Histogram.String(), true
		}
		return v[0].Value.String(), true
	case model.Matrix:
		if len(v) == 0 {
			return "", false
		}
		if n := len(v[0].Values); n > 0 {
			return v[0].Values[n-1].Value.String(), true
		}
		if n := len(v[0].Histograms); n > 0 {
			return v[0].Histograms[n-1].Histogram.String(), true
		}
		return "", false
	case *model.Scalar:
		return v.Value.String(), true
	case *model.String:
		return v.Value, true
	}
	return "", false
}

// promBase is the Prometheus to ask: --prom, else PROMETHEUS_URL, else the
// runbook's default.
func (a *app) promBase() string {
	if a.promURL != "" {
		return a.promURL
	}
	return promq.URLFromEnv(a.getenv)
}

// promGiven says whether the user named a Prometheus (flag or environment).
func (a *app) promGiven() bool {
	return a.promURL != "" || strings.TrimSpace(a.getenv("PROMETHEUS_URL")) != ""
}

// firstScrapeGap is the wait between the scrape source's first two samples:
// the node makes a block a second, so a second later every rate is defined.
const firstScrapeGap = time.Second

// metricsSource returns the metrics source for one node: Prometheus when --prom or
// PROMETHEUS_URL is given, else a scrape of metricsURL. close releases it.
//
// The scrape source takes a sample, waits a second, takes another (so rate and
// increase are defined for a one-shot command) and keeps scraping every second in
// the background until close.
func (a *app) metricsSource(ctx context.Context, metricsURL string) (promq.Source, func(), error) {
	noop := func() {}
	if a.promGiven() {
		p, err := a.prometheus(ctx)
		if err != nil {
			return nil, noop, err
		}
		src, err := a.scopedPrometheus(p, metricsURL)
		return src, noop, err
	}
	s, err := a.firstScrape(ctx, metricsURL)
	if err != nil {
		return nil, noop, err
	}
	t := time.NewTimer(firstScrapeGap)
	select {
	case <-ctx.Done():
		t.Stop()
		s.Close()
		return nil, noop, ctx.Err()
	case <-t.C:
	}
	_ = s.Scrape(ctx) // a failure here is recorded and shows as a warning on the results
	s.Run(ctx, time.Second)
	labels, _ := a.promMatchers()
	return promq.Scoped(s, labels), s.Close, nil
}

// prometheus is the Prometheus-API source of --prom (or PROMETHEUS_URL),
// checked with one cheap query so a wrong URL is told apart from missing
// series up front.
func (a *app) prometheus(ctx context.Context) (*promq.Prometheus, error) {
	base := a.promBase()
	opts, _ := a.promRequestOptions() // validated before the command ran
	p, err := promq.NewPrometheus(base, append(opts, promq.WithTimeout(a.timeout))...)
	if err != nil {
		return nil, fmt.Errorf("%v; pass a valid --prom URL or PROMETHEUS_URL", err)
	}
	if _, err := p.Client().Query(ctx, "1", time.Time{}); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot query Prometheus at %s: %v; check --prom URL or PROMETHEUS_URL", p.Client().URL(), shortErr(err))
	}
	return p, nil
}

// scopedPrometheus narrows p to one node. A Prometheus may scrape a whole
// fleet: every question names this node, by --prom-match when given, else by
// its metrics URL's host:port, the instance label Prometheus gives a target by
// default. A node whose instance cannot be told is refused rather than blended
// with others.
func (a *app) scopedPrometheus(p *promq.Prometheus, metricsURL string) (promq.Source, error) {
	labels, _ := a.promMatchers()
	if len(labels) == 0 {
		u, err := url.Parse(metricsURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("cannot scope Prometheus questions to this node: its metrics URL %q has no host; pass --prom-match instance=HOST:PORT", tbops.RedactURL(metricsURL))
		}
		labels = map[string]string{"instance": u.Host}
	}
	return promq.Scoped(p, labels), nil
}

// firstScrape makes the scrape source of one node's metrics and takes its
// first sample.
func (a *app) firstScrape(ctx context.Context, metricsURL string) (*promq.Scrape, error) {
	if metricsURL == "" {
		return nil, errors.New("no metrics URL; pass --metrics URL or --prom URL")
	}
	s := promq.NewScrape([]string{metricsURL}, promq.WithScrapeTimeout(a.timeout))
	if err := s.Scrape(ctx); err != nil {
		s.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%v; pass --metrics URL or --prom URL", err)
	}
	return s, nil
}

// promMatchers parses --prom-match "label=value" flags.
func (a *app) promMatchers() (map[string]string, error) {
	if len(a.promMatch) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(a.promMatch))
	for _, m := range a.promMatch {
		k, v, ok := strings.Cut(m, "=")
		k = strings.TrimSpace(k)
		if !ok || !model.LabelName(k).IsValidLegacy() {
			return nil, fmt.Errorf("--prom-match %q: want label=value, such as instance=node-a:3030", m)
		}
		out[k] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return out, nil
}

// promRequestOptions turns --prom-header "Name: value" flags into client options.
func (a *app) promRequestOptions() ([]promq.PromOption, error) {
	var opts []promq.PromOption
	for _, h := range a.promHeaders {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--prom-header %q: want \"Name: value\", such as \"X-Scope-OrgID: ops\"", h)
		}
		opts = append(opts, promq.WithHeader(strings.TrimSpace(k), strings.TrimSpace(v)))
	}
	return opts, nil
}

// shortErr drops the endpoint and query from an API error: the caller says them.
func shortErr(err error) string {
	var ae *promq.APIError
	if errors.As(err, &ae) {
		msg := ae.Kind.Error()
		if ae.Status != 0 {
			msg += fmt.Sprintf(" (HTTP %d)", ae.Status)
		}
		if ae.Message != "" {
			msg += ": " + ae.Message
		}
		return msg
	}
	return err.Error()
}
