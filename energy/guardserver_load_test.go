//go:build unix

package energy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/energy"
)

// The design target: normal clients are served while 5 000 slow-body
// connections are open, and the body-read timeout cuts the slow ones. The
// timeout runs on manual timers, so the test decides when it passes: nothing
// here depends on how fast the machine is.
func TestGuardServerServesWhileSlowBodiesWait(t *testing.T) {
	const slow = 5000
	requireOpenFiles(t, 2*slow+512) // both ends of every connection live in this process
	timers := newManualTimers()
	g := mustGuard(t, energy.GuardOptions{Token: "t", RPS: 1_000_000})
	s, addr := startGuardServer(t, g, rpcUpstream(t).URL, energy.GuardServerOptions{MaxConns: slow + 16, AfterFunc: timers.AfterFunc})

	conns := make([]net.Conn, 0, slow)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range slow {
		conns = append(conns, dialSlowBody(t, addr, `{"jsonrpc":"2.0","id":`+strconv.Itoa(i)+`,`))
	}
	require.Eventually(t, func() bool { return timers.armed() == slow }, 60*time.Second, 10*time.Millisecond,
		"every slow client's body is being waited for")

	client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	for i := range 20 {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(marketReq))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer t")
		resp, err := client.Do(req)
		require.NoError(t, err, "normal request %d while %d slow bodies are open", i, slow)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.Contains(t, string(b), `"providers"`)
	}
	assert.Equal(t, slow, timers.armed(), "the slow clients are still open while the normal ones are served")
	assert.GreaterOrEqual(t, s.OpenConns(), slow)
	for _, c := range conns { // the drip: the slow clients are still sending
		_, err := io.WriteString(c, " ")
		require.NoError(t, err)
	}

	require.Equal(t, slow, timers.fireAll(), "the body-read timeout passes")
	// Each slow client is cut: its read ends at EOF or a reset (the kernel
	// resets a connection closed with unread input, such as a drip byte that
	// came after the deadline), never at the test's deadline. Most see the
	// -32600 answer (HTTP 408) first; its form is TestGuardServerBodyTimeout's.
	var cut, answered atomic.Int64
	var wg sync.WaitGroup
	const readers = 4
	for r := range readers {
		wg.Go(func() {
			for i := r; i < slow; i += readers {
				c := conns[i]
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound, not a measurement
				raw, err := io.ReadAll(c)
				if err == nil || errors.Is(err, syscall.ECONNRESET) {
					cut.Add(1)
				}
				if strings.HasPrefix(string(raw), "HTTP/1.1 408 ") && strings.HasSuffix(string(raw),
					`{"jsonrpc":"2.0","id":`+strconv.Itoa(i)+`,"error":{"code":-32600,"message":"request body not received in time"}}`+"\n") {
					answered.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(slow), cut.Load(), "every slow client is cut by the body-read timeout")
	assert.Positive(t, answered.Load(), "the slow clients are answered -32600 (HTTP 408)")
	t.Logf("%d of %d slow clients read the 408 answer before the connection closed", answered.Load(), slow)
	client.CloseIdleConnections()
	require.Eventually(t, func() bool { return s.OpenConns() == 0 }, 30*time.Second, 10*time.Millisecond, "connections left open")
}

// requireOpenFiles skips (or, under CI=true, fails) when the process may not
// open n files. Go raises the soft limit to the hard limit at start, so the
// limit seen here is the hard one.
func requireOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur >= n {
		return
	}
	msg := fmt.Sprintf("needs %d open files, RLIMIT_NOFILE is %d: raise it (ulimit -n %d, or LimitNOFILE in the CI runner)", n, lim.Cur, n)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
