package serve

import (
	"encoding/json"
	"time"

	"github.com/theblock/tbops"
)

// Transition is one change of a runbook's verdict on a node, as serve saw it.
type Transition struct {
	// ID orders transitions; it is the state file's row id (0 when serve keeps
	// no state file).
	ID int64
	// Node is the node's Label.
	Node    string
	Runbook string
	// From is the verdict before; "" for the first verdict serve recorded for
	// this node and runbook (JSON null).
	From tbops.Status
	To   tbops.Status
	At   time.Time
	// Firing are the ids of the symptoms that fired in the new verdict.
	Firing []string
	// Report is the report that brought the new verdict; nil in listings.
	Report *tbops.Report
}

// transitionJSON is the JSON form: from is null for a first verdict, firing
// is [] rather than null, at is RFC 3339.
type transitionJSON struct {
	ID      int64         `json:"id"`
	Node    string        `json:"node"`
	Runbook string        `json:"runbook"`
	From    *tbops.Status `json:"from"`
	To      tbops.Status  `json:"to"`
	At      time.Time     `json:"at"`
	Firing  []string      `json:"firing"`
	Report  *tbops.Report `json:"report,omitempty"`
}

// MarshalJSON writes the transition as the history API and `tbops history -o
// json` show it.
func (t Transition) MarshalJSON() ([]byte, error) {
	j := transitionJSON{ID: t.ID, Node: t.Node, Runbook: t.Runbook, To: t.To, At: t.At.UTC(),
		Firing: nonNilStrings(t.Firing), Report: t.Report}
	if t.From != "" {
		from := t.From
		j.From = &from
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Transition) UnmarshalJSON(b []byte) error {
	var j transitionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = Transition{ID: j.ID, Node: j.Node, Runbook: j.Runbook, To: j.To, At: j.At, Firing: j.Firing, Report: j.Report}
	if j.From != nil {
		t.From = *j.From
	}
	return nil
}

// firingIDs are the ids of the report's firing symptoms.
func firingIDs(r tbops.Report) []string {
	out := []string{}
	for _, s := range r.Firing() {
		out = append(out, s.ID)
	}
	return out
}

// matchedIDs are the ids of the report's matched paths.
func matchedIDs(r tbops.Report) []string {
	out := []string{}
	for _, p := range r.Matched() {
		out = append(out, p.ID)
	}
	return out
}
