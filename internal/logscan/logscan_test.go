package logscan_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/internal/logscan"
)

func contains(s string) func([]byte) bool {
	return func(l []byte) bool { return bytes.Contains(l, []byte(s)) }
}

func write(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return p
}

// Every filter sees every line of every file once, in glob then name order,
// and keeps its last Tail lines, oldest first.
func TestScanFiltersAndTails(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.log", "x 1", "skew 1", "x 2")
	b := write(t, dir, "b.log", "skew 2", "x 3", "skew 3")
	res, err := logscan.Scan([]string{filepath.Join(dir, "*.log"), a}, 0,
		logscan.Filter{Match: contains("x"), Tail: 2}, logscan.Filter{Match: contains("skew"), Tail: 10}, logscan.Filter{Match: contains("none")})
	require.NoError(t, err)
	assert.Equal(t, []string{a, b}, res.Files, "a file two globs match is read once")
	assert.True(t, res.Read())
	assert.Equal(t, 3, res.Found[0].Matched)
	assert.Equal(t, []logscan.Line{{File: a, Line: "x 2"}, {File: b, Line: "x 3"}}, res.Found[0].Lines)
	assert.Equal(t, 3, res.Found[1].Matched)
	assert.Len(t, res.Found[1].Lines, 3)
	assert.Equal(t, "skew 1", res.Found[1].Lines[0].Line)
	assert.Zero(t, res.Found[2].Matched)
	assert.Empty(t, res.Found[2].Lines)
	assert.Empty(t, res.Problems)
}

// Only the end of a large file is read, its cut first line dropped, and the
// result says so.
func TestScanReadsTheEnd(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := range 1000 {
		lines = append(lines, fmt.Sprintf("line %04d skew", i))
	}
	p := write(t, dir, "big.log", lines...)
	res, err := logscan.Scan([]string{p}, 150, logscan.Filter{Match: contains("skew"), Tail: 100})
	require.NoError(t, err)
	require.NotEmpty(t, res.Found[0].Lines)
	assert.Equal(t, "line 0999 skew", res.Found[0].Lines[len(res.Found[0].Lines)-1].Line)
	assert.Less(t, res.Found[0].Matched, 11, "at most 150 bytes read")
	for _, l := range res.Found[0].Lines {
		assert.Regexp(t, `^line \d{4} skew$`, l.Line, "no cut line")
	}
	assert.Contains(t, strings.Join(res.Problems, "\n"), "read only the last 150 bytes")
}

// What cannot be read is a problem of the result, not an error; a malformed
// glob is the error.
func TestScanProblems(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub.log"), 0o700))
	res, err := logscan.Scan([]string{filepath.Join(dir, "missing-*.log"), filepath.Join(dir, "*.log")}, 0, logscan.Filter{Match: contains("x")})
	require.NoError(t, err)
	assert.False(t, res.Read())
	assert.Contains(t, strings.Join(res.Problems, "\n"), "no log files match "+filepath.Join(dir, "missing-*.log"))
	assert.Contains(t, strings.Join(res.Problems, "\n"), "not a regular file")

	long := write(t, dir, "long.log", strings.Repeat("y", logscan.MaxLine+1), "x after")
	res, err = logscan.Scan([]string{long}, int64(logscan.MaxLine*2), logscan.Filter{Match: contains("x")})
	require.NoError(t, err)
	assert.Contains(t, strings.Join(res.Problems, "\n"), "token too long")

	_, err = logscan.Scan([]string{"[bad"}, 0)
	assert.ErrorContains(t, err, `log glob "[bad"`)
}

func TestScanBoundsFiles(t *testing.T) {
	dir := t.TempDir()
	for i := range logscan.MaxFiles + 3 {
		write(t, dir, fmt.Sprintf("%03d.log", i), "x")
	}
	res, err := logscan.Scan([]string{filepath.Join(dir, "*.log")}, 0, logscan.Filter{Match: contains("x")})
	require.NoError(t, err)
	assert.Len(t, res.Files, logscan.MaxFiles)
	assert.Equal(t, logscan.MaxFiles, res.Found[0].Matched)
	assert.Contains(t, strings.Join(res.Problems, "\n"), fmt.Sprintf("read only the first %d files", logscan.MaxFiles))
}
