// Package logscan greps the end of log files, boundedly: the runbooks'
// `grep PATTERN /var/log/node/*.log | tail -N` on files tbops can read.
package logscan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Bounds of one scan.
const (
	// DefaultMaxBytes is how much of the end of each file is read.
	DefaultMaxBytes = 16 << 20
	// MaxFiles is how many files one scan reads at most.
	MaxFiles = 64
	// MaxLine is the longest line read; a longer one ends that file's scan.
	MaxLine = 1 << 20
)

// Line is one matching line and the file it came from.
type Line struct {
	File string `json:"file"`
	Line string `json:"line"`
}

// Filter selects lines: Match says whether a line counts, Tail how many of the
// last matching lines to keep.
type Filter struct {
	Match func(line []byte) bool
	Tail  int
}

// Found is what one Filter found: how many lines matched and the last Tail of
// them, oldest first.
type Found struct {
	Matched int    `json:"matched"`
	Lines   []Line `json:"lines"`
}

// Result is one scan: the files read, what each filter found (in the filters'
// order), and the problems met (globs that matched nothing, files that could
// not be read or were read only in part). A glob that matched nothing is a
// problem, not an error.
type Result struct {
	Files    []string `json:"files"`
	Found    []Found  `json:"found"`
	Problems []string `json:"problems,omitempty"`
}

// Read says whether any file was read: without one, no count is known.
func (r Result) Read() bool { return len(r.Files) > 0 }

// Scan reads the last maxBytes (DefaultMaxBytes when ≤ 0) of each file the globs
// match, at most MaxFiles files in glob then name order, each once, and applies
// every filter to every line. The only error is a malformed glob.
func Scan(globs []string, maxBytes int64, filters ...Filter) (Result, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	res := Result{Found: make([]Found, len(filters))}
	tails := make([]*tail, len(filters))
	for i, f := range filters {
		tails[i] = &tail{n: max(f.Tail, 0)}
	}
	seen := map[string]bool{}
	for _, g := range globs {
		files, err := filepath.Glob(g)
		if err != nil {
			return res, fmt.Errorf("log glob %q: %w", g, err)
		}
		if len(files) == 0 {
			res.Problems = append(res.Problems, "no log files match "+g)
			continue
		}
		sort.Strings(files)
		for _, name := range files {
			if seen[name] {
				continue
			}
			if len(seen) == MaxFiles {
				res.Problems = append(res.Problems, fmt.Sprintf("read only the first %d files the globs match", MaxFiles))
				return res.finish(tails), nil
			}
			seen[name] = true
			partial, err := scanFile(name, maxBytes, func(line []byte) {
				for i, f := range filters {
					if f.Match(line) {
						res.Found[i].Matched++
						tails[i].add(Line{File: name, Line: string(line)})
					}
				}
			})
			if partial != "" {
				res.Problems = append(res.Problems, partial)
			}
			if err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			res.Files = append(res.Files, name)
		}
	}
	return res.finish(tails), nil
}

func (r Result) finish(tails []*tail) Result {
	for i, t := range tails {
		r.Found[i].Lines = t.lines()
	}
	return r
}

// scanFile calls each for every whole line of the file's last maxBytes. partial
// says when the file was read only in part.
func scanFile(name string, maxBytes int64, each func([]byte)) (partial string, err error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", errors.New("vanished while reading")
		}
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", errors.New("not a regular file")
	}
	skipFirst := false
	if st.Size() > maxBytes {
		if _, err := f.Seek(st.Size()-maxBytes, io.SeekStart); err != nil {
			return "", err
		}
		skipFirst = true // the first line read is probably cut
		partial = fmt.Sprintf("%s: read only the last %d bytes of %d", name, maxBytes, st.Size())
	}
	sc := bufio.NewScanner(io.LimitReader(f, maxBytes))
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	for sc.Scan() {
		if skipFirst {
			skipFirst = false
			continue
		}
		each(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		return partial, fmt.Errorf("reading: %w", err)
	}
	return partial, nil
}

// tail keeps the last n lines added.
type tail struct {
	n    int
	ring []Line
	head int
}

func (t *tail) add(l Line) {
	switch {
	case t.n == 0:
	case len(t.ring) < t.n:
		t.ring = append(t.ring, l)
	default:
		t.ring[t.head] = l
		t.head = (t.head + 1) % t.n
	}
}

func (t *tail) lines() []Line {
	return append(append([]Line{}, t.ring[t.head:]...), t.ring[:t.head]...)
}
