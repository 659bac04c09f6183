package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/theblock/tbops"
)

// Notification formats (NotifyTarget.Format).
const (
	// NotifyJSON sends a Notification document.
	NotifyJSON = "json"
	// NotifySlack sends a Slack incoming-webhook body: {"text", "blocks"}.
	NotifySlack = "slack"
)

// Defaults of the notification sender.
const (
	// DefaultRepeatInterval is how long a notification of a firing alert holds
	// before the same verdict is sent again: Alertmanager's default
	// repeat_interval.
	DefaultRepeatInterval = 4 * time.Hour
	// DefaultNotifyTimeout bounds the sending of one notification, every
	// attempt and backoff included.
	DefaultNotifyTimeout = 2 * time.Minute
	// DefaultNotifyBackoff is the wait before the first retry; it doubles up
	// to maxNotifyBackoff.
	DefaultNotifyBackoff = time.Second
	maxNotifyBackoff     = 30 * time.Second
	// notifyAttemptTimeout bounds one attempt.
	notifyAttemptTimeout = 10 * time.Second
	// maxNotifyAnswer is how much of a target's answer is read.
	maxNotifyAnswer = 64 << 10
)

// NotifyTarget is where serve sends a notification for each alert it
// diagnoses.
type NotifyTarget struct {
	// URL receives a POST. It is treated as a secret (a Slack webhook URL
	// carries one in its path): shown and kept as scheme://host only.
	URL string
	// Format is NotifyJSON (the default when "") or NotifySlack.
	Format string
}

// String is the target as shown: its scheme://host.
func (t NotifyTarget) String() string { return RedactNotifyURL(t.URL) }

// RedactNotifyURL is a notify URL as serve shows and keeps it: scheme://host,
// without user, path or query.
func RedactNotifyURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

// key is the dedupe key of the target: a digest of the whole URL, so two
// webhooks on one host are two targets, and the secret is not kept.
func (t NotifyTarget) key() string {
	sum := sha256.Sum256([]byte(t.URL))
	return hex.EncodeToString(sum[:16])
}

func (t *NotifyTarget) check() error {
	if t.Format == "" {
		t.Format = NotifyJSON
	}
	if t.Format != NotifyJSON && t.Format != NotifySlack {
		return fmt.Errorf("%w: notify format %q: want %q or %q", ErrInvalidConfig, t.Format, NotifyJSON, NotifySlack)
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: notify URL %s: want an http or https URL with a host", ErrInvalidConfig, t)
	}
	return nil
}

// Notification is the JSON document a NotifyJSON target receives for one
// alert.
type Notification struct {
	// Alert is the alert as Alertmanager sent it.
	Alert WebhookAlert `json:"alert"`
	// Status is the alert's: AlertFiring or AlertResolved.
	Status string `json:"status"`
	// Node is the node's Label.
	Node    string `json:"node"`
	Runbook string `json:"runbook"`
	// Report is the runbook's report on the node, made when the alert arrived.
	Report tbops.Report `json:"report"`
	// Summary is the report in a few lines: the verdict, the firing symptoms,
	// the matched paths with their planned commands.
	Summary string `json:"summary"`
}

// newNotification is the notification of an alert and its report.
func newNotification(a WebhookAlert, node, runbook string, r tbops.Report) Notification {
	return Notification{Alert: a, Status: a.Status, Node: node, Runbook: runbook, Report: r, Summary: summarize(a, node, r)}
}

// headline is the notification's first line.
func headline(a WebhookAlert, node string, r tbops.Report) string {
	h := fmt.Sprintf("[%s] %s on %s: alert %s %s", strings.ToUpper(string(r.Status)), r.Runbook, node, a.Name(), a.Status)
	if a.Status == AlertResolved && r.Status != tbops.StatusOK {
		h += ", but the runbook still finds " + strings.ToUpper(string(r.Status))
	}
	return h
}

// summarize is the report in a few lines of text.
func summarize(a WebhookAlert, node string, r tbops.Report) string {
	var b strings.Builder
	b.WriteString(headline(a, node, r))
	for _, sy := range r.Firing() {
		fmt.Fprintf(&b, "\nfiring %s: %s", sy.ID, sy.Summary)
	}
	for _, p := range r.Matched() {
		fmt.Fprintf(&b, "\npath %s: %s", p.ID, p.Title)
		for _, c := range commands(p) {
			b.WriteString("\n  $ " + c)
		}
	}
	if len(r.Firing()) == 0 {
		b.WriteString("\nno symptom fires")
	}
	return b.String()
}

// commands are a path's planned commands.
func commands(p tbops.Path) []string {
	var out []string
	for _, act := range p.Actions {
		if act.Command != "" {
			out = append(out, act.Command)
		}
	}
	return out
}

// Slack's limits (https://api.slack.com/reference/block-kit/blocks).
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackBlocksMax  = 50
)

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type string     `json:"type"`
	Text *slackText `json:"text,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackBody is a Slack incoming-webhook message of the notification: a
// header, the status, the firing symptoms and each matched path with its
// commands in a code block, within Slack's limits.
func slackBody(n Notification) slackMessage {
	section := func(s string) slackBlock {
		return slackBlock{Type: "section", Text: &slackText{"mrkdwn", truncate(s, slackSectionMax)}}
	}
	r := n.Report
	m := slackMessage{Text: truncate(headline(n.Alert, n.Node, r), slackSectionMax)}
	m.Blocks = append(m.Blocks,
		slackBlock{Type: "header", Text: &slackText{"plain_text", truncate(fmt.Sprintf("%s %s: %s", strings.ToUpper(string(r.Status)), r.Runbook, n.Alert.Name()), slackHeaderMax)}},
		section(fmt.Sprintf("*Status:* %s · alert *%s* %s on `%s`", strings.ToUpper(string(r.Status)), n.Alert.Name(), n.Status, n.Node)))
	if f := r.Firing(); len(f) > 0 {
		var b strings.Builder
		b.WriteString("*Firing*")
		for _, sy := range f {
			fmt.Fprintf(&b, "\n• `%s`: %s", sy.ID, sy.Summary)
		}
		m.Blocks = append(m.Blocks, section(b.String()))
	} else {
		m.Blocks = append(m.Blocks, section("No symptom fires."))
	}
	for _, p := range r.Matched() {
		if len(m.Blocks) == slackBlocksMax-1 {
			m.Blocks = append(m.Blocks, section("… more paths: see the report"))
			break
		}
		s := fmt.Sprintf("*Path %s: %s*", p.ID, p.Title)
		if cs := commands(p); len(cs) > 0 {
			// The code block is closed even when the commands are cut.
			s += "\n```\n" + truncate(strings.Join(cs, "\n"), slackSectionMax-len(s)-16) + "\n```"
		}
		m.Blocks = append(m.Blocks, section(s))
	}
	return m
}

// truncate cuts s to at most n bytes, on a rune boundary, ending in "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len("…"), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// body is what a target receives for the notification.
func (t NotifyTarget) body(n Notification) ([]byte, error) {
	if t.Format == NotifySlack {
		return json.Marshal(slackBody(n))
	}
	return json.Marshal(n)
}

// sender posts notifications: bounded attempts, retried with exponential
// backoff on network errors, 429 and 5xx only, never again after a 2xx.
type sender struct {
	client         *http.Client
	backoff, total time.Duration
}

// newSender copies hc (default: a client of its own) so that it follows no
// redirect: a POST is never resent elsewhere.
func newSender(hc *http.Client, backoff, total time.Duration) *sender {
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	cp := *hc
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &sender{client: &cp, backoff: backoff, total: total}
}

// send posts body to t until it is accepted, refused or the total time is
// spent, and returns how many attempts it made.
func (s *sender) send(ctx context.Context, t NotifyTarget, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.total)
	defer cancel()
	wait := s.backoff
	var last error
	for attempts := 1; ; attempts++ {
		retry, err := s.post(ctx, t, body)
		if err == nil || !retry {
			return attempts, err
		}
		if ctx.Err() == nil || last == nil {
			last = err // an attempt the bound cut short says less than the answer before it
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return attempts, fmt.Errorf("%w; gave up after %d attempts within %s", last, attempts, s.total)
		case <-timer.C:
		}
		wait = min(wait*2, maxNotifyBackoff)
	}
}

// post makes one attempt; retry says whether another may succeed. Errors
// name the target by its scheme://host only.
func (s *sender) post(ctx context.Context, t NotifyTarget, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, notifyAttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%s: cannot build the request", t)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tbops-serve")
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message holds the whole URL
		}
		return true, fmt.Errorf("%s: %s", t, tbops.RedactText(err.Error()))
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxNotifyAnswer))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 300 && c < 400:
		return false, fmt.Errorf("%s: HTTP %d redirect not followed (a notification is POSTed to the URL given only)", t, c)
	default:
		err := fmt.Errorf("%s: HTTP %d", t, c)
		if text := strings.TrimSpace(tbops.RedactText(string(head))); text != "" {
			err = fmt.Errorf("%w: %s", err, text)
		}
		return c == http.StatusTooManyRequests || c >= 500, err
	}
}

// verdictOf is what a notification's dedupe compares: the status, the firing
// symptoms and the matched paths, in a stable order.
func verdictOf(r tbops.Report) string {
	f, p := firingIDs(r), matchedIDs(r)
	sort.Strings(f)
	sort.Strings(p)
	return string(r.Status) + "|" + strings.Join(f, ",") + "|" + strings.Join(p, ",")
}

// verdictStatus is the status part of a verdict.
func verdictStatus(v string) tbops.Status {
	s, _, _ := strings.Cut(v, "|")
	return tbops.Status(s)
}

// describeVerdict is a verdict as a person reads it.
func describeVerdict(v string) string {
	parts := strings.SplitN(v, "|", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	s := parts[0]
	if parts[1] != "" {
		s += ", firing " + parts[1]
	}
	if parts[2] != "" {
		s += ", path " + parts[2]
	}
	return s
}
