package tbops

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

func TestWorstOrdersCriticalWarningUnknownOK(t *testing.T) {
	assert.Equal(t, StatusOK, Worst())
	assert.Equal(t, StatusOK, Worst(StatusOK, StatusOK))
	assert.Equal(t, StatusUnknown, Worst(StatusOK, StatusUnknown))
	assert.Equal(t, StatusWarning, Worst(StatusUnknown, StatusWarning, StatusOK))
	assert.Equal(t, StatusCritical, Worst(StatusWarning, StatusCritical, StatusUnknown))
	assert.Equal(t, StatusUnknown, Worst(StatusOK, Status("")), "an unset status is unknown, never ok")
}

func TestExitCodes(t *testing.T) {
	assert.Equal(t, 0, StatusOK.ExitCode())
	assert.Equal(t, 1, StatusWarning.ExitCode())
	assert.Equal(t, 2, StatusCritical.ExitCode())
	assert.Equal(t, 3, StatusUnknown.ExitCode())
	assert.Equal(t, 3, Status("bogus").ExitCode())
	assert.Equal(t, 3, ExitCode(), "no reports: nothing was checked")
	assert.Equal(t, 2, ExitCode(Report{Status: StatusOK}, Report{Status: StatusCritical}))
}

func TestFinalize(t *testing.T) {
	r := NewReport("treasury-stuck", "http://node:3030/", t0)
	r.Finalize()
	assert.Equal(t, StatusUnknown, r.Status, "a report that checked nothing is unknown")

	r.Symptoms = append(r.Symptoms, Symptom{ID: "a", Status: StatusOK}, Symptom{ID: "b", Status: StatusUnknown})
	r.Finalize()
	assert.Equal(t, StatusUnknown, r.Status)

	r.Alerts = append(r.Alerts, Alert{Name: "X", Severity: StatusWarning, Firing: true, Status: StatusWarning})
	r.Finalize()
	assert.Equal(t, StatusWarning, r.Status)

	r.SLOs = append(r.SLOs, SLO{Name: "s", Status: StatusCritical})
	r.Finalize()
	assert.Equal(t, StatusCritical, r.Status)
}

// The JSON is exactly DESIGN.md's shape, with empty lists as [] not null.
func TestReportJSONShape(t *testing.T) {
	r := NewReport("treasury-stuck", "http://node:3030/", t0)
	r.Symptoms = []Symptom{{ID: "backlog-high", Summary: "backlog > 50 for 2+ epochs", Firing: true, Status: StatusWarning,
		Value: Num(73), Threshold: Num(50), Evidence: []Evidence{{Source: SourcePrometheus, Query: "treasury_disbursement_backlog", Value: RawOf(73.0), At: t0}}}}
	r.Paths = []Path{{ID: "A", Title: "Dependency issue", Matched: true, Why: "dependency 4520 rolled back",
		Actions: []Action{{Kind: "rollback", Target: "4521", Command: "tbops treasury rollback --id 4521 --reason '…'", DryRun: true}}}}
	r.Finalize()
	raw, err := json.Marshal(r)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	for _, k := range []string{"runbook", "status", "checked_at", "symptoms", "steps", "paths", "alerts", "warnings"} {
		assert.Contains(t, m, k)
	}
	assert.Equal(t, "treasury-stuck", m["runbook"])
	assert.Equal(t, "warning", m["status"])
	assert.Equal(t, "2026-11-29T03:00:00Z", m["checked_at"])
	assert.Equal(t, []any{}, m["steps"], "empty lists are []")
	assert.Equal(t, []any{}, m["warnings"])
	assert.NotContains(t, m, "slos", "slos appear only when evaluated")
	s := m["symptoms"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "summary", "firing", "value", "threshold", "evidence", "status"} {
		assert.Contains(t, s, k)
	}
	ev := s["evidence"].([]any)[0].(map[string]any)
	assert.Equal(t, map[string]any{"source": "prometheus", "query": "treasury_disbursement_backlog", "value": 73.0, "at": "2026-11-29T03:00:00Z"}, ev)
	a := m["paths"].([]any)[0].(map[string]any)["actions"].([]any)[0].(map[string]any)
	assert.Equal(t, true, a["dry_run"])
	assert.Equal(t, "4521", a["target"])

	// Marshalling does not change the caller's report.
	assert.Nil(t, r.Steps)
}

func TestWriteTextLeadsWithStatusAndShowsWhatMatters(t *testing.T) {
	r := NewReport("energy-stalled", "http://node:3030/", t0)
	r.Target = "http://node:3030/"
	r.Symptoms = []Symptom{
		{ID: "oracle-latency", Summary: "oracle latency p95 > 10 s", Firing: true, Status: StatusCritical, Value: Num(31.5), Threshold: Num(10),
			Evidence: []Evidence{{Source: SourcePrometheus, Query: "histogram_quantile(0.95, oracle_latency_seconds_bucket)", Value: RawOf(31.5)}}},
		{ID: "pending-credits", Summary: "pending credits not decreasing", Status: StatusUnknown},
		{ID: "disputes", Summary: "dispute backlog increasing", Status: StatusOK},
	}
	r.Paths = []Path{{ID: "A", Title: "Oracle latency high", Matched: true, Why: "p95 31.5 s",
		Actions: []Action{{Kind: "scale", Command: "kubectl scale deployment energy-oracle --replicas=3", DryRun: true}}},
		{ID: "B", Title: "Signature failures", Matched: false}}
	r.Alerts = []Alert{{Name: "OracleBroken", Severity: StatusCritical, Expr: "oracle_latency_seconds_p95 > 30", Firing: true, Status: StatusCritical, Value: Num(31.5)}}
	r.Warnf("metric %s missing", "energy_pending_credits_total")
	r.Finalize()

	var b bytes.Buffer
	require.NoError(t, r.WriteText(&b))
	out := b.String()
	first := strings.SplitN(out, "\n", 2)[0]
	assert.True(t, strings.HasPrefix(first, "CRITICAL energy-stalled @ http://node:3030/"), first)
	assert.Contains(t, out, "[critical] oracle-latency: oracle latency p95 > 10 s (value 31.5, threshold 10)")
	assert.Contains(t, out, "[unknown] pending-credits")
	assert.Contains(t, out, "Path A: Oracle latency high")
	assert.NotContains(t, out, "Path B", "unmatched paths are not shown")
	assert.Contains(t, out, "$ kubectl scale deployment energy-oracle --replicas=3")
	assert.Contains(t, out, "OracleBroken firing")
	assert.Contains(t, out, "! metric energy_pending_credits_total missing")
	assert.Contains(t, out, "histogram_quantile(0.95, oracle_latency_seconds_bucket) => 31.5")
	assert.Less(t, strings.Index(out, "Firing:"), strings.Index(out, "Path A"), "symptoms before paths")
	assert.Less(t, strings.Index(out, "Path A"), strings.Index(out, "Evidence"), "evidence last")
}

func TestAmountString(t *testing.T) {
	cases := map[Amount]string{
		0:                      "0 BLOCK",
		1:                      "0.000001 BLOCK",
		500_000:                "0.5 BLOCK",
		1_000_000:              "1 BLOCK",
		10_000_000 * 1_000_000: "10,000,000 BLOCK",
		-200_000 * 1_000_000:   "-200,000 BLOCK",
		1_234_567_890_123:      "1,234,567.890123 BLOCK",
		999 * 1_000_000:        "999 BLOCK",
		1000 * 1_000_000:       "1,000 BLOCK",
	}
	for a, want := range cases {
		assert.Equal(t, want, a.String())
	}
	assert.Equal(t, Amount(1_500_000), AmountFromBLOCK(1.5))
	assert.InDelta(t, 1.5, Amount(1_500_000).BLOCK(), 1e-12)
	assert.Equal(t, "99.99%", PPM(999_900).String())
}

func TestLookups(t *testing.T) {
	r := NewReport("x", "http://node:3030/", t0)
	r.Symptoms = []Symptom{{ID: "a", Firing: true}}
	r.Paths = []Path{{ID: "A", Matched: true, Why: "because"}}
	r.Alerts = []Alert{{Name: "Big"}}
	r.Steps = []Step{{ID: "step-1", Title: "one"}}
	s, ok := r.Symptom("a")
	assert.True(t, ok)
	assert.True(t, s.Firing)
	_, ok = r.Symptom("b")
	assert.False(t, ok)
	p, ok := r.Path("A")
	assert.True(t, ok)
	assert.Equal(t, "because", p.Why)
	_, ok = r.Path("B")
	assert.False(t, ok)
	_, ok = r.Alert("Big")
	assert.True(t, ok)
	_, ok = r.Alert("Small")
	assert.False(t, ok)
	st, ok := r.Step("step-1")
	assert.True(t, ok)
	assert.Equal(t, "one", st.Title)
	_, ok = r.Step("step-2")
	assert.False(t, ok)
}

// A report survives a JSON round trip unchanged: values are numbers or null,
// details keep their JSON.
func TestReportRoundTrip(t *testing.T) {
	r := NewReport("receipts-flatlining", "http://admin:pw@node:3030/", t0)
	assert.Equal(t, "http://admin:xxxxx@node:3030/", r.Target, "NewReport redacts the target")
	r.Symptoms = []Symptom{
		{ID: "market-not-emitting", Firing: true, Status: StatusCritical, Value: Num(1), Threshold: Num(5),
			Detail: RawOf([]string{"compute"}), Evidence: []Evidence{{Source: SourceRPC, Query: "receipts.stats", Value: RawOf(map[string]any{"last_emitted_height": 41}), At: t0}}},
		{ID: "explorer-not-updating", Status: StatusUnknown},
	}
	r.Alerts = []Alert{{Name: "ReceiptsMarketNotEmitting", Severity: StatusCritical, Expr: "x == 0", ForSeconds: 5, Status: StatusUnknown}}
	r.SLOs = []SLO{{Name: "Emission Rate", Value: Num(3), Status: StatusCritical}}
	r.Finalize()
	raw, err := json.Marshal(r)
	require.NoError(t, err)
	var back Report
	require.NoError(t, json.Unmarshal(raw, &back))
	again, err := json.Marshal(back)
	require.NoError(t, err)
	assert.JSONEq(t, string(raw), string(again))
	assert.Equal(t, 5.0, *back.Symptoms[0].Threshold)
	assert.Nil(t, back.Symptoms[1].Value, "unknown is null, never 0")
	assert.Equal(t, `["compute"]`, string(back.Symptoms[0].Detail))
	assert.Contains(t, string(raw), `"value":null`)
	assert.Contains(t, string(raw), `"for_seconds":5`)
	var ids []string
	require.NoError(t, back.Symptoms[0].Detail.Decode(&ids))
	assert.Equal(t, []string{"compute"}, ids)
}

func TestNumAndRaw(t *testing.T) {
	assert.Equal(t, 3.0, *Num(3))
	assert.Equal(t, 2.5, *Num(float32(2.5)))
	assert.Nil(t, Num(math.NaN()), "NaN is not a JSON number")
	assert.Nil(t, Num(math.Inf(1)))
	assert.Nil(t, RawOf(nil))
	assert.Equal(t, "null", Raw(nil).String())
	assert.Equal(t, "ledger_unavailable", RawOf("ledger_unavailable").String())
	assert.Equal(t, `{"a":1}`, RawOf(map[string]int{"a": 1}).String())
	assert.Contains(t, RawOf(make(chan int)).String(), "unencodable")
	var r Raw
	require.NoError(t, json.Unmarshal([]byte("{ \"a\" : [1, 2] }"), &r))
	assert.Equal(t, `{"a":[1,2]}`, string(r), "kept compact")
}

// Finalize: undecided alerts do not make a decided report unknown; firing ones
// raise it.
func TestFinalizeAlertsAndSymptoms(t *testing.T) {
	r := NewReport("x", "http://node:3030/", t0)
	r.Symptoms = []Symptom{{ID: "a", Status: StatusOK}}
	r.Alerts = []Alert{{Name: "A", Severity: StatusCritical, Status: StatusUnknown}}
	r.Finalize()
	assert.Equal(t, StatusOK, r.Status, "the symptoms were decided")
	r.Alerts = append(r.Alerts, Alert{Name: "B", Severity: StatusWarning, Firing: true, Status: StatusWarning})
	r.Finalize()
	assert.Equal(t, StatusWarning, r.Status)
	r.Symptoms = nil
	r.Alerts = r.Alerts[:1]
	r.Finalize()
	assert.Equal(t, StatusUnknown, r.Status, "alerts only: an unknown alert is the verdict")
}
