package tbops

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteText prints the report as a terminal summary for a person at 3 a.m.: the
// status first, then what fires, the matched paths with their actions, the alerts
// and SLOs that are not ok, the steps' findings, warnings, and last the evidence.
func (r Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	target := ""
	if r.Target != "" {
		target = " @ " + r.Target
	}
	fmt.Fprintf(b, "%s %s%s (checked %s)\n", strings.ToUpper(string(r.Status)), r.Runbook, target,
		r.CheckedAt.Format(time.RFC3339))

	firing := r.Firing()
	if len(firing) > 0 {
		fmt.Fprintln(b, "\nFiring:")
		for _, s := range firing {
			fmt.Fprintf(b, "  [%s] %s: %s%s\n", s.Status, s.ID, s.Summary, valueSuffix(s.Value, s.Threshold, s.Detail))
		}
	}
	var unknown []Symptom
	for _, s := range r.Symptoms {
		if !s.Firing && s.Status == StatusUnknown {
			unknown = append(unknown, s)
		}
	}
	if len(unknown) > 0 {
		fmt.Fprintln(b, "\nNot decided (missing data, or a window not yet observed):")
		for _, s := range unknown {
			fmt.Fprintf(b, "  [unknown] %s: %s\n", s.ID, s.Summary)
		}
	}
	if len(firing) == 0 && len(unknown) == 0 && len(r.Symptoms) > 0 {
		fmt.Fprintf(b, "\nNo symptom fires (%d checked).\n", len(r.Symptoms))
	}

	for _, p := range r.Matched() {
		fmt.Fprintf(b, "\nPath %s: %s\n  why: %s\n", p.ID, p.Title, p.Why)
		for _, a := range p.Actions {
			mode := "plan"
			if !a.DryRun {
				mode = "done"
			}
			fmt.Fprintf(b, "  - [%s] %s", mode, a.Kind)
			if a.Target != "" {
				fmt.Fprintf(b, " %s", a.Target)
			}
			if a.Note != "" {
				fmt.Fprintf(b, ": %s", a.Note)
			}
			fmt.Fprintln(b)
			if a.Command != "" {
				fmt.Fprintf(b, "      $ %s\n", a.Command)
			}
			if a.Result != "" {
				fmt.Fprintf(b, "      result: %s\n", a.Result)
			}
		}
	}

	var alerts []Alert
	for _, a := range r.Alerts {
		if a.Status != StatusOK {
			alerts = append(alerts, a)
		}
	}
	if len(alerts) > 0 {
		fmt.Fprintln(b, "\nAlerts:")
		for _, a := range alerts {
			state := "firing"
			if !a.Firing {
				state = "not decided"
			}
			fmt.Fprintf(b, "  [%s] %s %s: %s%s\n", a.Severity, a.Name, state, a.Expr, valueSuffix(a.Value, nil, nil))
		}
	}
	if len(r.SLOs) > 0 {
		fmt.Fprintln(b, "\nSLOs:")
		for _, s := range r.SLOs {
			fmt.Fprintf(b, "  [%s] %s: target %s, now %s\n", s.Status, s.Name, s.Target, formatNumber(s.Value))
		}
	}

	if hasFindings(r.Steps) {
		fmt.Fprintln(b, "\nSteps:")
		for _, s := range r.Steps {
			if len(s.Findings) == 0 {
				continue
			}
			fmt.Fprintf(b, "  %s:\n", s.Title)
			for _, f := range s.Findings {
				fmt.Fprintf(b, "    - %s\n", f)
			}
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(b, "\nWarnings:")
		for _, w := range r.Warnings {
			fmt.Fprintf(b, "  ! %s\n", w)
		}
	}

	var ev []Evidence
	for _, s := range firing {
		ev = append(ev, s.Evidence...)
	}
	if len(ev) > 0 {
		fmt.Fprintln(b, "\nEvidence (re-run these):")
		for _, e := range ev {
			fmt.Fprintf(b, "  %-10s %s => %s\n", e.Source, e.Query, formatValue(e.Value))
		}
	}
	return b.Flush()
}

func hasFindings(steps []Step) bool {
	for _, s := range steps {
		if len(s.Findings) > 0 {
			return true
		}
	}
	return false
}

func valueSuffix(value, threshold *float64, detail Raw) string {
	var parts []string
	if value != nil {
		parts = append(parts, "value "+formatNumber(value))
	}
	if value != nil && threshold != nil {
		parts = append(parts, "threshold "+formatNumber(threshold))
	}
	if len(detail) > 0 {
		parts = append(parts, formatValue(detail))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// formatNumber prints a value, "no data" for nil.
func formatNumber(v *float64) string {
	if v == nil {
		return "no data"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// formatValue prints a value compactly on one line, capped so one huge value cannot
// flood the terminal.
func formatValue(v Raw) string {
	if len(v) == 0 {
		return "no data"
	}
	s := v.String()
	const max = 160
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
