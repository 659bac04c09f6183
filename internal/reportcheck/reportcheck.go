// Package reportcheck validates reports against the Report JSON Schema
// (report.schema.json) and the invariants a schema cannot state. Every
// package's tests pass the reports they produce through it.
package reportcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/theblock/tbops"
)

// compiled is the schema, compiled once per test binary.
var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(tbops.ReportSchema()))
	if err != nil {
		return nil, fmt.Errorf("report.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("report.schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("report.schema.json")
})

// Validate checks one report's JSON against the schema.
func Validate(raw []byte) error {
	s, err := compiled()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return s.Validate(doc)
}

// Check validates r: its JSON against the schema, a JSON round trip giving an
// equal Report, and the invariants of a verdict.
func Check(r tbops.Report) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := Validate(raw); err != nil {
		return fmt.Errorf("%s: %w", r.Runbook, err)
	}
	var back tbops.Report
	if err := json.Unmarshal(raw, &back); err != nil {
		return err
	}
	again, _ := json.Marshal(back)
	if !bytes.Equal(raw, again) {
		return fmt.Errorf("%s: the JSON changes on a round trip:\n%s\n%s", r.Runbook, raw, again)
	}
	var errs []error
	if r.Target == "" {
		errs = append(errs, errors.New("target is empty: the library must set it"))
	}
	for _, s := range r.Symptoms {
		if s.Firing && (s.Status == tbops.StatusOK || s.Status == tbops.StatusUnknown) {
			errs = append(errs, fmt.Errorf("symptom %s fires with status %s", s.ID, s.Status))
		}
		if !s.Firing && s.Status != tbops.StatusOK && s.Status != tbops.StatusUnknown {
			errs = append(errs, fmt.Errorf("symptom %s does not fire but has status %s", s.ID, s.Status))
		}
	}
	for _, a := range r.Alerts {
		if a.Firing != (a.Status == a.Severity) || (!a.Firing && a.Status != tbops.StatusOK && a.Status != tbops.StatusUnknown) {
			errs = append(errs, fmt.Errorf("alert %s: firing %v with status %s (severity %s)", a.Name, a.Firing, a.Status, a.Severity))
		}
		if a.Status == tbops.StatusUnknown && a.Value != nil && a.Firing {
			errs = append(errs, fmt.Errorf("alert %s: unknown yet firing", a.Name))
		}
	}
	copyR := r
	copyR.Finalize()
	if copyR.Status != r.Status {
		errs = append(errs, fmt.Errorf("status %s, but Finalize gives %s", r.Status, copyR.Status))
	}
	if want := emptyLists(r); !reflect.DeepEqual(back, want) {
		errs = append(errs, fmt.Errorf("a JSON round trip does not give back an equal Report (times must be UTC without a monotonic reading, values numbers or Raw):\n got %+v\nwant %+v", back, want))
	}
	return errors.Join(errs...)
}

// emptyLists is r as its JSON decodes: nil lists are [] (but slos, omitted
// when empty, stay nil).
func emptyLists(r tbops.Report) tbops.Report {
	r.Symptoms = orEmpty(r.Symptoms)
	r.Steps = orEmpty(r.Steps)
	r.Paths = orEmpty(r.Paths)
	r.Alerts = orEmpty(r.Alerts)
	r.Warnings = orEmpty(r.Warnings)
	if len(r.SLOs) == 0 {
		r.SLOs = nil
	}
	for i := range r.Symptoms {
		r.Symptoms[i].Evidence = orEmpty(r.Symptoms[i].Evidence)
	}
	for i := range r.Steps {
		r.Steps[i].Findings = orEmpty(r.Steps[i].Findings)
		r.Steps[i].Evidence = orEmpty(r.Steps[i].Evidence)
	}
	for i := range r.Paths {
		r.Paths[i].Actions = orEmpty(r.Paths[i].Actions)
	}
	for i := range r.Alerts {
		r.Alerts[i].Evidence = orEmpty(r.Alerts[i].Evidence)
	}
	for i := range r.SLOs {
		r.SLOs[i].Evidence = orEmpty(r.SLOs[i].Evidence)
	}
	return r
}

// orEmpty copies s, nil as an empty list, so the caller's report is untouched.
func orEmpty[T any](s []T) []T { return append([]T{}, s...) }

// Valid fails t for every report that does not pass Check.
func Valid(t testing.TB, reports ...tbops.Report) {
	t.Helper()
	for _, r := range reports {
		if err := Check(r); err != nil {
			t.Errorf("report %s@%s is not valid: %v", r.Runbook, r.Target, err)
		}
	}
}
