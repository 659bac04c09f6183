package treasury

import (
	"bytes"
	"fmt"

	"github.com/theblock/tbops/internal/logscan"
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

// ScanLogs reads the files matching the globs (each file's last maxBytes at most,
// at most logscan's 64 files) and keeps the last tail lines that match. Missing
// files are problems in the result, not errors; the only error is a malformed
// glob pattern. With no glob nothing is read and the problem is NoLogGlob.
func ScanLogs(globs []string, match func([]byte) bool, tail int, maxBytes int64) (LogScan, error) {
	if len(globs) == 0 {
		return LogScan{Problems: []string{NoLogGlob}}, nil
	}
	if tail <= 0 {
		tail = DefaultLogTail
	}
	if maxBytes <= 0 {
		maxBytes = DefaultLogMaxBytes
	}
	res, err := logscan.Scan(globs, maxBytes, logscan.Filter{Match: match, Tail: tail})
	if err != nil {
		return LogScan{}, fmt.Errorf("treasury: %w", err)
	}
	s := LogScan{Files: res.Files, Matched: res.Found[0].Matched, Problems: res.Problems,
		Lines: make([]LogLine, 0, len(res.Found[0].Lines))}
	for _, l := range res.Found[0].Lines {
		s.Lines = append(s.Lines, LogLine(l))
	}
	return s, nil
}
