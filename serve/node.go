package serve

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/theblock/tbops"
)

// Node is one node serve watches.
type Node struct {
	// URL is the node's JSON-RPC URL. It may carry credentials
	// (https://user:pass@host/); they are used to reach the node and never shown.
	URL string
	// MetricsURL is the node's /metrics, which serve scrapes for its own history
	// (default: URL's host with the path /metrics).
	MetricsURL string
}

// Label is how the node is named in every output — the node label of the
// metrics, the reports' target, the page, the history: its URL with any
// credentials removed.
func (n Node) Label() string { return NodeLabel(n.URL) }

// metricsURL is MetricsURL, or the RPC URL's /metrics.
func (n Node) metricsURL() string {
	if n.MetricsURL != "" {
		return n.MetricsURL
	}
	return strings.TrimRight(n.URL, "/") + "/metrics"
}

// NodeLabel is a node URL with its user and password removed (not masked:
// a metric label must not carry a user name either) and no fragment. Text that
// is not a URL is returned with any embedded password redacted.
func NodeLabel(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return tbops.RedactText(rawURL)
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// checkNodeURL says what is wrong with a node URL, if anything: serve reaches
// nodes over http or https only, and needs a host.
func checkNodeURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", tbops.RedactText(raw))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want an http or https URL", NodeLabel(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("%q: the URL has no host", NodeLabel(raw))
	}
	return nil
}

// ParseShard parses "I/N", shard I (0 ≤ I < N) of N.
func ParseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	if ok {
		i, err = strconv.Atoi(a)
		if err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("%w: shard %q: want I/N with 0 ≤ I < N, such as 0/2", ErrInvalidConfig, s)
	}
	return i, n, nil
}

// InShard says whether node belongs to shard i of n. The shard is
// Prometheus' hashmod of the node's Label — the last 8 bytes of its MD5, big
// endian, modulo n — so a Prometheus relabel rule `action: hashmod` on the
// same URL routes a /probe to the instance that serves the node. It depends
// only on the label: instances given the same node list and different shards
// split it without coordination, and a node keeps its shard across restarts.
func InShard(node Node, i, n int) bool {
	if n <= 1 {
		return true
	}
	sum := md5.Sum([]byte(node.Label()))
	return binary.BigEndian.Uint64(sum[8:])%uint64(n) == uint64(i)
}

// Shard returns the nodes of shard i of n, in their order.
func Shard(nodes []Node, i, n int) []Node {
	var out []Node
	for _, nd := range nodes {
		if InShard(nd, i, n) {
			out = append(out, nd)
		}
	}
	return out
}
