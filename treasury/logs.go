package treasury

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// DefaultLogGlob is where the runbook greps the node's logs (on the node's own
// host): the command line's default, never the library's.
const DefaultLogGlob = "/var/log/node/*.log"

// DefaultLogTail is how many matching lines step 4 keeps (the runbook's tail -50).
const DefaultLogTail = 50

// DefaultLogMaxBytes is how much of the end of each log file is read.
const DefaultLogMaxBytes = 16 << 20

var (
	logKeys   = [][]byte{[]byte("treasury_executor"), []byte("DisbursementError")}
	logLevels = [][]byte{[]byte("ERROR"), []byte("WARN")}
)

// MatchLogLine is the runbook's step 4 filter, `grep "treasury_executor\|DisbursementError" | grep -E "ERROR|WARN"`:
// the line mentions the executor or a DisbursementError, and says ERROR or WARN
// (substring matches, case-sensitive, as grep does).
func MatchLogLine(line []byte) bool {
	return IsExecutorLine(line) && (bytes.Contains(line, logLevels[0]) || bytes.Contains(line, logLevels[1]))
}

// IsExecutorLine is the first half of MatchLogLine: the line mentions the
// treasury executor or a DisbursementError, at any level (Path D's bundle keeps these).
func IsExecutorLine(line []byte) bool {
	return bytes.Contains(line, logKeys[0]) || bytes.Contains(line, logKeys[1])
}

// LogLine is one matching line with where it came from.
type LogLine struct {
	File string `json:"file"`
	Line string `json:"line"`
}

// LogScan is the result of scanning log files.
type LogScan struct {
	// Files are the files read, in order.
	Files []string `json:"files"`
	// Lines are the last matching lines (oldest first), at most the tail asked.
	Lines []LogLine `json:"lines"`
	// Matched counts every matching line read.
	Matched int `json:"matched"`
	// Problems are the findings about the files: globs that matched nothing,
	// files that could not be read, files read only in part.
	Problems []string `json:"problems,omitempty"`
}

// NoLogGlob is the problem ScanLogs reports when it is given no glob: nothing
// was read (the library reads no file unless asked).
const NoLogGlob = "logs not read: no log glob given"

// ScanLogs reads the files matching the globs (each file's last maxBytes at most)
// and keeps the last tail lines that match. Missing files are problems in the
// result, not errors; the only error is a malformed glob pattern. With no glob
// nothing is read and the problem is NoLogGlob.
func ScanLogs(globs []string, match func([]byte) bool, tail int, maxBytes int64) (LogScan, error) {
	var s LogScan
	if len(globs) == 0 {
		s.Problems = []string{NoLogGlob}
		return s, nil
	}
	if tail <= 0 {
		tail = DefaultLogTail
	}
	if maxBytes <= 0 {
		maxBytes = DefaultLogMaxBytes
	}
	seen := map[string]bool{}
	ring := make([]LogLine, 0, tail)
	head := 0
	for _, g := range globs {
		files, err := filepath.Glob(g)
		if err != nil {
			return s, fmt.Errorf("treasury: log glob %q: %w", g, err)
		}
		sort.Strings(files)
		if len(files) == 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("no log files match %s", g))
			continue
		}
		for _, f := range files {
			if seen[f] {
				continue
			}
			seen[f] = true
			err := scanFile(f, maxBytes, func(line []byte) {
				if !match(line) {
					return
				}
				s.Matched++
				l := LogLine{File: f, Line: string(line)}
				if len(ring) < tail {
					ring = append(ring, l)
				} else {
					ring[head] = l
					head = (head + 1) % tail
				}
			}, &s)
			if err != nil {
				s.Problems = append(s.Problems, fmt.Sprintf("%s: %v", f, err))
				continue
			}
			s.Files = append(s.Files, f)
		}
	}
	s.Lines = append(ring[head:], ring[:head]...)
	return s, nil
}

func scanFile(path string, maxBytes int64, each func([]byte), s *LogScan) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("vanished while reading")
		}
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	var r io.Reader = f
	skipFirst := false
	if st.Size() > maxBytes {
		if _, err := f.Seek(st.Size()-maxBytes, io.SeekStart); err != nil {
			return err
		}
		skipFirst = true // the first line read is probably cut
		s.Problems = append(s.Problems, fmt.Sprintf("%s: read only the last %d bytes of %d", path, maxBytes, st.Size()))
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if skipFirst {
			skipFirst = false
			continue
		}
		each(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	return nil
}
