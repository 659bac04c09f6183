package nodetest

import (
	"bufio"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Metric is one metric family the node exposes.
type Metric struct {
	Name string `json:"name"`
	Help string `json:"help,omitempty"`
	// Type is "counter", "gauge" or "histogram".
	Type   string   `json:"type"`
	Series []Series `json:"series"`
}

// Series is one labelled series whose value moves linearly with the node clock:
// value(t) = Value + PerSecond · (t − start). For a histogram, Value and PerSecond
// give the observation count (the +Inf bucket), Buckets the finite cumulative
// buckets and Sum the sum of observations. With Integer the exposed value is
// rounded down to a whole number, as a real counter of events is: a counter at
// PerSecond 1/120 then steps once every two minutes and is flat in between.
type Series struct {
	Labels       map[string]string `json:"labels,omitempty"`
	Value        float64           `json:"value"`
	PerSecond    float64           `json:"per_second,omitempty"`
	Integer      bool              `json:"integer,omitempty"`
	Buckets      []Bucket          `json:"buckets,omitempty"`
	Sum          float64           `json:"sum,omitempty"`
	SumPerSecond float64           `json:"sum_per_second,omitempty"`
}

// Bucket is one finite cumulative histogram bucket.
type Bucket struct {
	LE        float64 `json:"le"`
	Count     float64 `json:"count"`
	PerSecond float64 `json:"per_second,omitempty"`
}

// Counter is a one-series counter starting at value and growing perSecond.
func Counter(name string, labels map[string]string, value, perSecond float64) Metric {
	return Metric{Name: name, Type: "counter", Series: []Series{{Labels: labels, Value: value, PerSecond: perSecond}}}
}

// Gauge is a one-series gauge holding value.
func Gauge(name string, labels map[string]string, value float64) Metric {
	return Metric{Name: name, Type: "gauge", Series: []Series{{Labels: labels, Value: value}}}
}

// Histogram is a one-series histogram with the given bucket bounds whose
// observations arrive at perSecond and are distributed like observations: each
// bucket receives the fraction of observations at or below its bound. It starts
// with an hour's worth of observations so that cumulative quantiles are defined
// from the first scrape.
func Histogram(name string, labels map[string]string, bounds []float64, perSecond float64, observations []float64) Metric {
	const warm = 3600.0
	s := Series{Labels: labels, Value: perSecond * warm, PerSecond: perSecond}
	var mean float64
	for _, o := range observations {
		mean += o
	}
	if len(observations) > 0 {
		mean /= float64(len(observations))
	}
	s.Sum, s.SumPerSecond = mean*perSecond*warm, mean*perSecond
	for _, b := range bounds {
		var le int
		for _, o := range observations {
			if o <= b {
				le++
			}
		}
		frac := 1.0
		if len(observations) > 0 {
			frac = float64(le) / float64(len(observations))
		}
		s.Buckets = append(s.Buckets, Bucket{LE: b, Count: frac * perSecond * warm, PerSecond: frac * perSecond})
	}
	return Metric{Name: name, Type: "histogram", Series: []Series{s}}
}

// Merge adds the series of more metrics of the same name to m.
func (m Metric) Merge(more ...Metric) Metric {
	for _, o := range more {
		m.Series = append(m.Series, o.Series...)
	}
	return m
}

// metrics returns what the node exposes now: the scenario's explicit metrics, and
// the metrics each area derives from its state, less any name the scenario set
// explicitly (so a scenario can override or, with an empty Series, hide a metric).
func (n *Node) metrics(sc *Scenario, now time.Time) []Metric {
	explicit := map[string]bool{}
	for _, m := range sc.Metrics {
		explicit[m.Name] = true
	}
	out := make([]Metric, 0, len(sc.Metrics)+32)
	for _, m := range sc.Metrics {
		if len(m.Series) > 0 {
			out = append(out, m)
		}
	}
	el := n.elapsed(now)
	derived := [][]Metric{nodeMetrics(sc, el), treasuryMetrics(sc, now, el), energyMetrics(sc, now, el),
		receiptsMetrics(sc, now, el), governorMetrics(sc, now, el), runtimeMetrics(sc, now, el)}
	for _, ms := range derived {
		for _, m := range ms {
			if !explicit[m.Name] {
				out = append(out, m)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (n *Node) serveMetrics(w http.ResponseWriter, r *http.Request) {
	var ms []Metric
	var el float64
	n.view(func(sc *Scenario, now time.Time) {
		ms = n.metrics(sc, now)
		el = n.elapsed(now)
	})
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	b := bufio.NewWriter(w)
	for _, m := range ms {
		writeMetric(b, m, el)
	}
	_ = b.Flush()
}

// writeMetric writes one family in the Prometheus text format.
func writeMetric(b *bufio.Writer, m Metric, el float64) {
	if m.Help != "" {
		b.WriteString("# HELP " + m.Name + " " + escapeHelp(m.Help) + "\n")
	}
	typ := m.Type
	if typ == "" {
		typ = "untyped"
	}
	b.WriteString("# TYPE " + m.Name + " " + typ + "\n")
	for _, s := range m.Series {
		count := s.Value + s.PerSecond*el
		if s.Integer {
			count = math.Floor(count)
		}
		if typ != "histogram" {
			writeSample(b, m.Name, s.Labels, "", "", count)
			continue
		}
		for _, bk := range s.Buckets {
			writeSample(b, m.Name+"_bucket", s.Labels, "le", formatFloat(bk.LE), bk.Count+bk.PerSecond*el)
		}
		writeSample(b, m.Name+"_bucket", s.Labels, "le", "+Inf", count)
		writeSample(b, m.Name+"_sum", s.Labels, "", "", s.Sum+s.SumPerSecond*el)
		writeSample(b, m.Name+"_count", s.Labels, "", "", count)
	}
}

func writeSample(b *bufio.Writer, name string, labels map[string]string, extraName, extraValue string, v float64) {
	b.WriteString(name)
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 || extraName != "" {
		b.WriteByte('{')
		sep := ""
		for _, k := range keys {
			b.WriteString(sep + k + `="` + escapeLabel(labels[k]) + `"`)
			sep = ","
		}
		if extraName != "" {
			b.WriteString(sep + extraName + `="` + extraValue + `"`)
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func escapeHelp(s string) string { return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s) }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
