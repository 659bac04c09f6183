package tbops

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"time"
)

// Status is the verdict of a report, a symptom, an alert or an SLO.
type Status string

// The four statuses follow the monitoring-plugin convention; see [Status.ExitCode].
const (
	StatusOK       Status = "ok"
	StatusWarning  Status = "warning"
	StatusCritical Status = "critical"
	StatusUnknown  Status = "unknown"
)

// rank orders statuses for [Worst]: a firing warning is more actionable than missing
// data, so unknown ranks below warning.
func (s Status) rank() int {
	switch s {
	case StatusOK:
		return 0
	case StatusUnknown:
		return 1
	case StatusWarning:
		return 2
	case StatusCritical:
		return 3
	}
	return 1 // an unset or unrecognised status is treated as unknown
}

// ExitCode maps a status to the monitoring-plugin exit code: 0 ok, 1 warning,
// 2 critical, 3 unknown.
func (s Status) ExitCode() int {
	switch s {
	case StatusOK:
		return 0
	case StatusWarning:
		return 1
	case StatusCritical:
		return 2
	}
	return 3
}

// Worst returns the most severe of the statuses (critical > warning > unknown > ok).
// With no statuses it returns ok.
func Worst(statuses ...Status) Status {
	w := StatusOK
	for _, s := range statuses {
		if s.rank() > w.rank() {
			w = s
		}
	}
	if w.rank() == 1 {
		return StatusUnknown
	}
	return w
}

//go:embed report.schema.json
var reportSchema []byte

// Evidence sources.
const (
	SourceRPC        = "rpc"
	SourcePrometheus = "prometheus"
	SourceScrape     = "scrape"
	SourceLog        = "log"
	SourceFile       = "file"
	// SourceHost is an observation of the machine tbops runs on (its clock),
	// not of the node: never the basis of a node's symptom.
	SourceHost = "host"
)

// Evidence is one observation a finding rests on: where it came from, the exact
// query (an RPC method with its params, a PromQL expression, a file path or a log
// glob) and what came back, so that a person can re-run it.
type Evidence struct {
	Source string    `json:"source"`
	Query  string    `json:"query"`
	Value  Raw       `json:"value"`
	At     time.Time `json:"at"`
}

// Symptom is one of a runbook's symptom checkboxes.
//
// Value and Threshold are numbers: nil (JSON null) when unknown or when the
// symptom has none. What is not a number (an executor's last_error text, the
// list of stalled markets) goes in Detail.
type Symptom struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
	Firing  bool   `json:"firing"`
	// Status is the severity when firing, ok when not, unknown when the data
	// needed to decide was missing or did not cover the symptom's window.
	Status    Status     `json:"status"`
	Value     *float64   `json:"value"`
	Threshold *float64   `json:"threshold"`
	Detail    Raw        `json:"detail,omitempty"`
	Evidence  []Evidence `json:"evidence"`
}

// Step is one of a runbook's diagnosis steps and what it found.
type Step struct {
	ID       string     `json:"id"`
	Title    string     `json:"title"`
	Findings []string   `json:"findings"`
	Evidence []Evidence `json:"evidence"`
}

// Action is one planned (or, with DryRun false, executed) remedy.
type Action struct {
	// Kind names what the action does: rollback, restart, check, wait, escalate,
	// bundle, submit, reset, revalidate, scale, sync-clock, config.
	Kind   string `json:"kind"`
	Target string `json:"target,omitempty"`
	// Command is what a person would run to do it by hand.
	Command string `json:"command,omitempty"`
	// Note explains the action in one line.
	Note   string `json:"note,omitempty"`
	DryRun bool   `json:"dry_run"`
	// Result is what happened when the action was executed.
	Result string `json:"result,omitempty"`
}

// Path is one of a runbook's resolution paths; IDs are the runbook's letters.
type Path struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Matched bool     `json:"matched"`
	Why     string   `json:"why"`
	Actions []Action `json:"actions"`
}

// Alert is one of a runbook's alert rules (the rule `tbops rules` exports, under
// the same name and expression), evaluated now.
type Alert struct {
	Name     string `json:"name"`
	Severity Status `json:"severity"`
	Expr     string `json:"expr"`
	// ForSeconds is the rule's "for" duration in seconds (0: fires at once).
	ForSeconds float64 `json:"for_seconds"`
	Firing     bool    `json:"firing"`
	// Status is Severity when firing, ok when known not to fire, unknown when
	// the data was missing or did not cover the rule's window and "for".
	Status Status `json:"status"`
	// Value is the value of the expression's left-hand side now (of the worst
	// series), nil when unknown; Threshold is the number it is compared with.
	Value     *float64   `json:"value"`
	Threshold *float64   `json:"threshold"`
	Detail    Raw        `json:"detail,omitempty"`
	Evidence  []Evidence `json:"evidence"`
}

// SLO is one row of a runbook's SLO table, evaluated over a window.
type SLO struct {
	Name           string     `json:"name"`
	Target         string     `json:"target"`
	AlertThreshold string     `json:"alert_threshold"`
	Value          *float64   `json:"value"`
	Met            bool       `json:"met"`
	Status         Status     `json:"status"`
	Evidence       []Evidence `json:"evidence"`
}

// Report is what every diagnosis returns. Its JSON form is the one documented in
// DESIGN.md and in report.schema.json (a public interface: scripts rely on it);
// `tbops … -o json` prints it as is, and a JSON round trip gives back an equal
// Report.
type Report struct {
	Runbook string `json:"runbook"`
	// Target is the node the report is about: its RPC URL, password redacted.
	Target string `json:"target"`
	// Scope says which metrics were asked and how they were narrowed to the
	// node: the source and the label matchers every series question carried.
	Scope     string    `json:"scope,omitempty"`
	Status    Status    `json:"status"`
	CheckedAt time.Time `json:"checked_at"`
	Symptoms  []Symptom `json:"symptoms"`
	Steps     []Step    `json:"steps"`
	Paths     []Path    `json:"paths"`
	Alerts    []Alert   `json:"alerts"`
	SLOs      []SLO     `json:"slos,omitempty"`
	Warnings  []string  `json:"warnings"`
}

// NewReport starts a report for the runbook id about target (a node's RPC URL;
// its password is redacted here), checked at the given instant.
func NewReport(runbook, target string, checkedAt time.Time) Report {
	return Report{Runbook: runbook, Target: RedactURL(target), Status: StatusUnknown, CheckedAt: checkedAt.UTC()}
}

// Warnf records a warning: data that was missing or could not be trusted.
func (r *Report) Warnf(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// Finalize sets Status: the worst of the symptoms' statuses (the runbook's own
// checklist: one undecided symptom makes the report unknown unless another
// fires), raised by every alert or SLO that fires or is breached. An alert or
// SLO that cannot be evaluated is shown as unknown but does not make a report
// whose symptoms were all decided unknown: the symptoms may rest on exact RPC
// evidence where the rule needs a window of metrics. A report with no symptoms
// takes the worst of its alerts and SLOs; one with nothing is unknown: nothing
// was checked.
func (r *Report) Finalize() {
	var all []Status
	for _, s := range r.Symptoms {
		all = append(all, s.Status)
	}
	decided := len(r.Symptoms) > 0
	for _, a := range r.Alerts {
		if !decided || a.Status != StatusUnknown {
			all = append(all, a.Status)
		}
	}
	for _, s := range r.SLOs {
		if !decided || s.Status != StatusUnknown {
			all = append(all, s.Status)
		}
	}
	if len(all) == 0 {
		r.Status = StatusUnknown
		return
	}
	r.Status = Worst(all...)
}

// Firing returns the symptoms that fire.
func (r Report) Firing() []Symptom {
	var out []Symptom
	for _, s := range r.Symptoms {
		if s.Firing {
			out = append(out, s)
		}
	}
	return out
}

// Matched returns the resolution paths that match.
func (r Report) Matched() []Path {
	var out []Path
	for _, p := range r.Paths {
		if p.Matched {
			out = append(out, p)
		}
	}
	return out
}

// Symptom returns the symptom with the id.
func (r Report) Symptom(id string) (Symptom, bool) {
	for _, s := range r.Symptoms {
		if s.ID == id {
			return s, true
		}
	}
	return Symptom{}, false
}

// Path returns the resolution path with the id (a runbook letter).
func (r Report) Path(id string) (Path, bool) {
	for _, p := range r.Paths {
		if p.ID == id {
			return p, true
		}
	}
	return Path{}, false
}

// Step returns the diagnosis step with the id.
func (r Report) Step(id string) (Step, bool) {
	for _, s := range r.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return Step{}, false
}

// Alert returns the alert with the name.
func (r Report) Alert(name string) (Alert, bool) {
	for _, a := range r.Alerts {
		if a.Name == name {
			return a, true
		}
	}
	return Alert{}, false
}

// MarshalJSON writes empty lists as [] rather than null, so consumers (jq among
// them) can iterate without guarding.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	p := plain(r)
	p.Symptoms = nonNil(p.Symptoms)
	p.Steps = nonNil(p.Steps)
	p.Paths = nonNil(p.Paths)
	p.Alerts = nonNil(p.Alerts)
	p.Warnings = nonNil(p.Warnings)
	for i := range p.Symptoms {
		p.Symptoms[i].Evidence = nonNil(p.Symptoms[i].Evidence)
	}
	for i := range p.Alerts {
		p.Alerts[i].Evidence = nonNil(p.Alerts[i].Evidence)
	}
	for i := range p.Steps {
		p.Steps[i].Findings = nonNil(p.Steps[i].Findings)
		p.Steps[i].Evidence = nonNil(p.Steps[i].Evidence)
	}
	for i := range p.Paths {
		p.Paths[i].Actions = nonNil(p.Paths[i].Actions)
	}
	for i := range p.SLOs {
		p.SLOs[i].Evidence = nonNil(p.SLOs[i].Evidence)
	}
	return json.Marshal(p)
}

// nonNil copies s, so that marshalling never writes into the caller's backing
// arrays; an empty or nil s gives [].
func nonNil[T any](s []T) []T { return append([]T{}, s...) }

// ExitCode is the process exit code for a set of reports: that of their worst status.
func ExitCode(reports ...Report) int {
	all := make([]Status, 0, len(reports))
	for _, r := range reports {
		all = append(all, r.Status)
	}
	if len(all) == 0 {
		return StatusUnknown.ExitCode()
	}
	return Worst(all...).ExitCode()
}

// ReportSchema returns the JSON Schema (draft 2020-12) of a Report's JSON form,
// the file report.schema.json at the repository's root.
func ReportSchema() []byte { return append([]byte(nil), reportSchema...) }
