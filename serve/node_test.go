package serve_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/serve"
)

func TestNodeLabelRemovesCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"http://admin:hunter2@node-a:3030/": "http://node-a:3030/",
		"https://token@node-b/rpc#frag":     "https://node-b/rpc",
		"http://node-c:3030/":               "http://node-c:3030/",
		"not a url with a:secret@ inside":   "not a url with a:secret@ inside",
		"x http://u:secret@h/ y":            "x http://u:xxxxx@h/ y",
	} {
		assert.Equal(t, want, serve.NodeLabel(in), in)
	}
	assert.Equal(t, "http://node-a:3030/", serve.Node{URL: "http://admin:hunter2@node-a:3030/"}.Label())
}

func TestParseShard(t *testing.T) {
	for _, s := range []string{"0/1", "0/2", "1/2", " 2/3 "} {
		_, _, err := serve.ParseShard(s)
		assert.NoError(t, err, s)
	}
	i, n, _ := serve.ParseShard("1/2")
	assert.Equal(t, [2]int{1, 2}, [2]int{i, n})
	for _, s := range []string{"", "1", "2/2", "-1/2", "0/0", "a/b", "1/2/3", "0x1/2"} {
		_, _, err := serve.ParseShard(s)
		assert.ErrorIs(t, err, serve.ErrInvalidConfig, s)
		assert.ErrorContains(t, err, "0 ≤ I < N")
	}
}

// N instances given the same list and shards 0..N-1 serve every node exactly
// once, and a node's shard is a pure function of its label (stable across
// restarts and instances; the README's two-instance example relies on it).
func TestShardsSplitAFleet(t *testing.T) {
	var nodes []serve.Node
	for i := 0; i < 200; i++ {
		nodes = append(nodes, serve.Node{URL: fmt.Sprintf("http://node-%03d:3030/", i)})
	}
	for _, n := range []int{1, 2, 3, 7} {
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			part := serve.Shard(nodes, i, n)
			if n > 1 {
				assert.Greater(t, len(part), 200/n/2, "shard %d/%d is not starved", i, n)
			}
			for _, nd := range part {
				seen[nd.URL]++
			}
		}
		require.Len(t, seen, len(nodes), "every node is served with %d shards", n)
		for u, c := range seen {
			assert.Equal(t, 1, c, "%s served %d times", u, c)
		}
	}
	// Pinned: Prometheus' hashmod of the label (checked against a real
	// Prometheus in cmd/tbops). Credentials do not move a node.
	assert.True(t, serve.InShard(serve.Node{URL: "http://node-a:3030/"}, 0, 2))
	assert.True(t, serve.InShard(serve.Node{URL: "http://admin:pw@node-a:3030/"}, 0, 2))
	assert.True(t, serve.InShard(serve.Node{URL: "http://node-b:3030/"}, 1, 2))
}

func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/2", "1/2", "9/10", "", "/", "-0/1", "99999999999999999999/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		i, n, err := serve.ParseShard(s)
		if err != nil {
			return
		}
		if i < 0 || n < 1 || i >= n {
			t.Fatalf("ParseShard(%q) = %d/%d", s, i, n)
		}
	})
}

func FuzzNodeLabel(f *testing.F) {
	for _, s := range []string{"http://admin:hunter2@node-a:3030/", "https://u@h/p?q=1#f", "http://[::1]:80/", "%zz", "http://a b@c/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		label := serve.NodeLabel(s)
		u, err := url.Parse(s)
		if err != nil || u.User == nil || u.Host == "" {
			return
		}
		if pw, ok := u.User.Password(); ok && len(pw) >= 4 && !strings.Contains(s[strings.Index(s, "@")+1:], pw) && strings.Contains(label, pw) {
			t.Fatalf("NodeLabel(%q) = %q shows the password", s, label)
		}
		if lu, err := url.Parse(label); err == nil && lu.User != nil {
			t.Fatalf("NodeLabel(%q) = %q keeps the user", s, label)
		}
	})
}
