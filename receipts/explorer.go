package receipts

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/theblock/tbops"
)

// maxExplorerBytes bounds the explorer's answer: it is one small object.
const maxExplorerBytes = 1 << 20

// stepExplorer checks "explorer receipt tables not updating" when an explorer
// URL is given. Without one the symptom is unknown: no explorer is part of the
// node, and what was not checked is never reported ok. The URL's password is
// never shown.
func (d *diagnosis) stepExplorer() {
	sym := tbops.Symptom{ID: SymptomExplorerStale, Summary: "explorer receipt tables not updating",
		Threshold: tbops.Num(d.opts.ExplorerMaxLag), Status: tbops.StatusUnknown}
	step := tbops.Step{ID: "explorer", Title: "Explorer receipt tables"}
	defer func() {
		d.r.Symptoms = append(d.r.Symptoms, sym)
		d.r.Steps = append(d.r.Steps, step)
	}()
	if d.opts.ExplorerURL == "" {
		sym.Summary = "explorer receipt tables: not checked (no explorer URL given)"
		step.Findings = append(step.Findings, `not checked: no explorer URL given (Options.ExplorerURL, an endpoint answering {"latest_receipt_height": N})`)
		return
	}
	q := "GET " + tbops.RedactURL(d.opts.ExplorerURL)
	latest, err := d.fetchExplorer()
	if err != nil {
		sym.Evidence = append(sym.Evidence, tbops.Evidence{Source: tbops.SourceRPC, Query: q, Value: tbops.RawOf(err.Error()), At: d.now.UTC()})
		d.warn("explorer check failed: %v", err)
		step.Findings = append(step.Findings, "explorer not checked: "+err.Error())
		return
	}
	sym.Evidence = append(sym.Evidence, tbops.Evidence{Source: tbops.SourceRPC, Query: q, Value: tbops.RawOf(map[string]int64{"latest_receipt_height": latest}), At: d.now.UTC()})
	step.Evidence = sym.Evidence
	// The node's newest receipt: the highest last_emitted_height, else the tip.
	nodeLatest, have := int64(0), false
	for _, mk := range d.markets {
		if mk.stats != nil && (!have || mk.stats.LastEmittedHeight > nodeLatest) {
			nodeLatest, have = mk.stats.LastEmittedHeight, true
		}
	}
	if !have && d.status != nil {
		nodeLatest, have = d.status.CurrentBlockHeight, true
	}
	if !have {
		d.warn("explorer lag not decided: the node's latest receipt height is unknown")
		return
	}
	lag := nodeLatest - latest
	sym.Value = tbops.Num(lag)
	step.Findings = append(step.Findings, fmt.Sprintf("explorer's latest receipt at height %d, node's at %d: %d blocks behind", latest, nodeLatest, lag))
	if lag > d.opts.ExplorerMaxLag {
		sym.Firing, sym.Status = true, tbops.StatusWarning
		sym.Summary = fmt.Sprintf("explorer receipt tables %d blocks behind the node (latest %d vs %d)", lag, latest, nodeLatest)
	} else {
		sym.Status = tbops.StatusOK
	}
}

// fetchExplorer reads the explorer's latest receipt height. Its errors name
// the URL with the password hidden.
func (d *diagnosis) fetchExplorer() (int64, error) {
	shown := tbops.RedactURL(d.opts.ExplorerURL)
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, d.opts.ExplorerURL, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %s", shown, tbops.RedactText(err.Error()))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %s", shown, tbops.RedactText(err.Error()))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxExplorerBytes+1))
	switch {
	case err != nil:
		return 0, fmt.Errorf("GET %s: reading the body: %s", shown, tbops.RedactText(err.Error()))
	case len(body) > maxExplorerBytes:
		return 0, fmt.Errorf("GET %s: answer over %d bytes", shown, maxExplorerBytes)
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("GET %s: HTTP %d", shown, resp.StatusCode)
	}
	var a struct {
		LatestReceiptHeight *int64 `json:"latest_receipt_height"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, fmt.Errorf("GET %s: want JSON {\"latest_receipt_height\": N}: %v", shown, err)
	}
	if a.LatestReceiptHeight == nil {
		return 0, fmt.Errorf("GET %s: field latest_receipt_height missing", shown)
	}
	return *a.LatestReceiptHeight, nil
}
