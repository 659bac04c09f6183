package serve

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/theblock/tbops"
)

//go:embed page/*.html
var pageFiles embed.FS

// pages are the status page's templates, parsed once per server.
type pages struct{ index, report *template.Template }

func parsePages() pages {
	funcs := template.FuncMap{
		"ts":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"join":   strings.Join,
		"num":    formatNumber,
		"raw":    formatRaw,
		"class":  statusClass,
		"status": func(s tbops.Status) string { return cmpOr(string(s), "—") },
	}
	parse := func(names ...string) *template.Template {
		files := []string{"page/layout.html"}
		for _, n := range names {
			files = append(files, "page/"+n)
		}
		return template.Must(template.New(names[0]).Funcs(funcs).ParseFS(pageFiles, files...))
	}
	return pages{index: parse("index.html", "alerts.html"), report: parse("report.html")}
}

// statusClass is the CSS class of a status: one of a fixed set, whatever the
// report says.
func statusClass(s tbops.Status) string {
	switch s {
	case tbops.StatusOK, tbops.StatusWarning, tbops.StatusCritical, tbops.StatusUnknown:
		return string(s)
	}
	return "none"
}

func formatNumber(v *float64) string {
	if v == nil {
		return "no data"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// formatRaw is an evidence value on one line, capped so one huge value cannot
// flood the page.
func formatRaw(v tbops.Raw) string {
	s := v.String()
	const max = 400
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

func cmpOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// reportLink is the page of one report.
func reportLink(node, runbook string) string {
	return "/report?" + url.Values{"node": {node}, "runbook": {runbook}}.Encode()
}

type indexPage struct {
	Title    string
	Refresh  int
	Interval time.Duration
	Now      time.Time
	Columns  []string
	Counts   []statusCount
	Rows     []indexRow
	// Unmatched are the recent alerts of no node served here, newest first.
	Unmatched []AlertRecord
}

type statusCount struct {
	Status string
	N      int
}

type indexRow struct {
	Node, Anchor, Up string
	Cells            []indexCell
	Firing           []firingLine
	// Transitions are the node's recent transitions, newest first.
	Transitions []Transition
	// Alerts are the node's recent Alertmanager alerts, newest first.
	Alerts []AlertRecord
}

type indexCell struct {
	Runbook, Class, Link string
	Has, Stale           bool
	Firing, Paths        []string
}

type firingLine struct{ Runbook, Class, Text string }

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	p := indexPage{Title: "tbops serve", Refresh: s.refreshSeconds(), Interval: s.cfg.interval,
		Now: s.cfg.now().UTC(), Columns: s.columns}
	counts := map[string]int{}
	alerts := s.recentAlerts()
	for _, list := range alerts {
		reverse(list)
	}
	p.Unmatched = alerts[""]
	s.mu.Lock()
	for i, ns := range s.nodes {
		row := indexRow{Node: ns.label, Anchor: "node-" + strconv.Itoa(i), Up: upText(ns), Alerts: alerts[ns.label]}
		for _, id := range s.columns {
			c := indexCell{Runbook: id, Class: "none"}
			if cl, ok := s.cells[cellKey{ns.label, id}]; ok {
				row.Transitions = append(row.Transitions, cl.recent...)
				if cl.has {
					c.Has, c.Stale, c.Class = true, !cl.fresh, statusClass(cl.report.Status)
					c.Link, c.Firing, c.Paths = reportLink(ns.label, id), firingIDs(cl.report), matchedIDs(cl.report)
					row.Firing = append(row.Firing, firingLines(id, cl.report)...)
				}
			}
			counts[c.Class]++
			row.Cells = append(row.Cells, c)
		}
		sort.SliceStable(row.Transitions, func(a, b int) bool { return row.Transitions[a].At.After(row.Transitions[b].At) })
		row.Transitions = row.Transitions[:min(len(row.Transitions), 10)]
		p.Rows = append(p.Rows, row)
	}
	s.mu.Unlock()
	for _, st := range []string{"critical", "warning", "unknown", "ok", "none"} {
		if counts[st] > 0 {
			p.Counts = append(p.Counts, statusCount{st, counts[st]})
		}
	}
	s.render(w, s.pages.index, p)
}

// firingLines are a report's firing symptoms and matched paths, for a node's
// section.
func firingLines(runbook string, r tbops.Report) []firingLine {
	var out []firingLine
	for _, sy := range r.Firing() {
		out = append(out, firingLine{runbook, statusClass(sy.Status), sy.ID + ": " + sy.Summary})
	}
	for _, p := range r.Matched() {
		out = append(out, firingLine{runbook, statusClass(r.Status), "path " + p.ID + ": " + p.Title})
	}
	return out
}

// upText says whether the node answered; s.mu is held.
func upText(ns *nodeState) string {
	switch {
	case !ns.upKnown:
		return "not checked yet"
	case ns.up:
		return "up"
	}
	return "down"
}

func (s *Server) refreshSeconds() int { return max(int(s.cfg.interval/time.Second), 5) }

type reportPage struct {
	Title, Node, JSONLink string
	Refresh               int
	Report                tbops.Report
	Fresh, Stored, Quiet  bool
	StoredID              int64
	Undecided             []tbops.Symptom
	Matched               []tbops.Path
	Alerts                []tbops.Alert
	Steps                 []tbops.Step
	Evidence              []tbops.Evidence
	History               []Transition // newest first
	link                  func(id int64) string
}

// StoredLink is the page of the report a stored transition kept.
func (p reportPage) StoredLink(id int64) string { return p.link(id) }

func (s *Server) serveReportPage(w http.ResponseWriter, r *http.Request) {
	node, runbook, err := s.nodeAndRunbook(r)
	if err == nil && (node == "" || runbook == "") {
		err = fmt.Errorf("want /report?node=…&runbook=…")
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	p := reportPage{Node: node, JSONLink: "/api/v1/reports?" + url.Values{"node": {node}, "runbook": {runbook}}.Encode(),
		link: func(id int64) string {
			return reportLink(node, runbook) + "&id=" + strconv.FormatInt(id, 10)
		}}
	s.mu.Lock()
	cl, ok := s.cells[cellKey{node, runbook}]
	if ok {
		p.Report, p.Fresh = cl.report, cl.fresh
		p.History = append(p.History, cl.recent...)
		ok = cl.has
	}
	s.mu.Unlock()
	reverse(p.History)

	if v := r.URL.Query().Get("id"); v != "" {
		t, err := s.storedReport(r, v, node, runbook)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		p.Report, p.Stored, p.StoredID, ok = *t.Report, true, t.ID, true
	} else {
		p.Refresh = s.refreshSeconds()
	}
	if !ok {
		http.Error(w, fmt.Sprintf("no report yet for %s on %s: the first run has not finished", runbook, node), http.StatusNotFound)
		return
	}
	p.Title = strings.ToUpper(string(p.Report.Status)) + " " + runbook + " · tbops serve"
	p.fill()
	s.render(w, s.pages.report, p)
}

// storedReport is the transition id= names, which must be of this node and
// runbook.
func (s *Server) storedReport(r *http.Request, v, node, runbook string) (Transition, error) {
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || s.cfg.store == nil {
		return Transition{}, fmt.Errorf("no stored report %q", v)
	}
	t, err := s.cfg.store.Transition(r.Context(), id)
	if err != nil || t.Report == nil || t.Node != node || t.Runbook != runbook {
		return Transition{}, fmt.Errorf("no stored report %d for %s on %s", id, runbook, node)
	}
	return t, nil
}

// fill picks what the page shows, in the terminal report's order.
func (p *reportPage) fill() {
	rep := p.Report
	var firing int
	for _, sy := range rep.Symptoms {
		switch {
		case sy.Firing:
			firing++
			p.Evidence = append(p.Evidence, sy.Evidence...)
		case sy.Status == tbops.StatusUnknown:
			p.Undecided = append(p.Undecided, sy)
			p.Evidence = append(p.Evidence, sy.Evidence...)
		}
	}
	p.Quiet = firing == 0 && len(p.Undecided) == 0 && len(rep.Symptoms) > 0
	p.Matched = rep.Matched()
	for _, a := range rep.Alerts {
		if a.Status != tbops.StatusOK {
			p.Alerts = append(p.Alerts, a)
		}
	}
	for _, st := range rep.Steps {
		if len(st.Findings) > 0 {
			p.Steps = append(p.Steps, st)
		}
	}
}

// render executes a page into a buffer first, so a template error is a 500
// rather than half a page.
func (s *Server) render(w http.ResponseWriter, t *template.Template, data any) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", data); err != nil {
		s.cfg.logger.Error("status page", "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}
