package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The Alertmanager webhook's contract.
const (
	// WebhookPath is where serve accepts Alertmanager's webhook (POST).
	WebhookPath = "/api/v1/alertmanager"
	// WebhookVersion is the payload version serve reads (Alertmanager 0.x's).
	WebhookVersion = "4"
	// DefaultWebhookMaxBytes bounds a webhook body; a larger one is refused
	// with 413.
	DefaultWebhookMaxBytes = 1 << 20
)

// Alert statuses, in WebhookPayload.Status and WebhookAlert.Status.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// WebhookPayload is the body Alertmanager POSTs to a webhook receiver
// (version 4). DecodeWebhook reads and checks one.
type WebhookPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookPayload.
type WebhookAlert struct {
	// Status is AlertFiring or AlertResolved.
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	// EndsAt is when a resolved alert ended (for a firing one, when
	// Alertmanager will consider it resolved unless told again).
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL"`
	// Fingerprint identifies the alert (its label set) across deliveries.
	Fingerprint string `json:"fingerprint"`
}

// Name is the alert's alertname label.
func (a WebhookAlert) Name() string { return a.Labels["alertname"] }

// PayloadError is a webhook body DecodeWebhook refused: Field names the
// offending part ("alerts[2].fingerprint", "body").
type PayloadError struct {
	Field   string
	Problem string
}

// Error is "field: problem".
func (e *PayloadError) Error() string { return e.Field + ": " + e.Problem }

// maxFingerprint bounds a fingerprint (Alertmanager's are 16 hex digits).
const maxFingerprint = 64

// DecodeWebhook reads one Alertmanager webhook body (version 4) and checks
// it whole: a *PayloadError names the first field that is missing, of the
// wrong type or out of range. Unknown fields are ignored, as Alertmanager may
// add some.
func DecodeWebhook(r io.Reader) (WebhookPayload, error) {
	var raw struct {
		WebhookPayload
		Alerts *[]json.RawMessage `json:"alerts"`
	}
	var p WebhookPayload
	if err := decodeStrict(r, &raw); err != nil {
		return p, err
	}
	p = raw.WebhookPayload
	if err := checkPayload(p, raw.Alerts != nil); err != nil {
		return WebhookPayload{}, err
	}
	p.Alerts = make([]WebhookAlert, 0, len(*raw.Alerts))
	for i, b := range *raw.Alerts {
		a, err := decodeAlert(b)
		if err != nil {
			err.Field = fmt.Sprintf("alerts[%d]", i) + cmpOrDot(err.Field)
			return WebhookPayload{}, err
		}
		p.Alerts = append(p.Alerts, a)
	}
	return p, nil
}

// decodeStrict decodes one JSON value and nothing after it, naming what is
// wrong as a *PayloadError.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &PayloadError{"body", "data after the JSON object"}
	}
	return nil
}

// jsonProblem turns a decoding error into a *PayloadError naming the field.
func jsonProblem(err error) *PayloadError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return &PayloadError{te.Field, "want " + jsonKind(te.Type.Kind().String()) + ", got " + te.Value}
	case errors.As(err, &te):
		return &PayloadError{"body", "want a JSON object, got " + te.Value}
	case errors.As(err, &se):
		return &PayloadError{"body", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &PayloadError{"body", "empty or truncated JSON"}
	}
	return &PayloadError{"body", err.Error()}
}

func jsonKind(k string) string {
	switch k {
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "int":
		return "a number"
	}
	return "a " + k
}

func checkPayload(p WebhookPayload, hasAlerts bool) *PayloadError {
	switch {
	case p.Version == "":
		return &PayloadError{"version", "missing"}
	case p.Version != WebhookVersion:
		return &PayloadError{"version", fmt.Sprintf("%q: this tbops reads version %q", clip(p.Version, 80), WebhookVersion)}
	case p.Receiver == "":
		return &PayloadError{"receiver", "missing"}
	case !validStatus(p.Status):
		return &PayloadError{"status", statusProblem(p.Status)}
	case !hasAlerts:
		return &PayloadError{"alerts", "missing"}
	case p.TruncatedAlerts < 0:
		return &PayloadError{"truncatedAlerts", "negative"}
	}
	return nil
}

// wireAlert is an alert as sent: times as text, so that a bad one is named.
type wireAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// decodeAlert decodes and checks one alert; the error's Field is relative to
// the alert.
func decodeAlert(b json.RawMessage) (WebhookAlert, *PayloadError) {
	var w wireAlert
	if err := decodeStrict(bytes.NewReader(b), &w); err != nil {
		var pe *PayloadError
		errors.As(err, &pe)
		if pe.Field == "body" {
			pe.Field = ""
		}
		return WebhookAlert{}, pe
	}
	a := WebhookAlert{Status: w.Status, Labels: w.Labels, Annotations: w.Annotations,
		GeneratorURL: w.GeneratorURL, Fingerprint: w.Fingerprint}
	switch {
	case !validStatus(a.Status):
		return a, &PayloadError{"status", statusProblem(a.Status)}
	case a.Labels == nil:
		return a, &PayloadError{"labels", "missing"}
	case a.Labels["alertname"] == "":
		return a, &PayloadError{"labels.alertname", "missing"}
	case a.Fingerprint == "":
		return a, &PayloadError{"fingerprint", "missing"}
	case len(a.Fingerprint) > maxFingerprint || strings.Trim(a.Fingerprint, "0123456789abcdefABCDEF") != "":
		return a, &PayloadError{"fingerprint", fmt.Sprintf("%q: want up to %d hex digits", clip(a.Fingerprint, 80), maxFingerprint)}
	}
	var err *PayloadError
	if a.StartsAt, err = parseAlertTime("startsAt", w.StartsAt, true); err != nil {
		return a, err
	}
	a.EndsAt, err = parseAlertTime("endsAt", w.EndsAt, false)
	return a, err
}

// parseAlertTime reads an RFC 3339 time; "" is the zero time unless required.
func parseAlertTime(field, v string, required bool) (time.Time, *PayloadError) {
	if v == "" {
		if required {
			return time.Time{}, &PayloadError{field, "missing"}
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, &PayloadError{field, fmt.Sprintf("%q: want an RFC 3339 time", clip(v, 80))}
	}
	return t, nil
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func validStatus(s string) bool { return s == AlertFiring || s == AlertResolved }

func statusProblem(s string) string {
	if s == "" {
		return "missing"
	}
	return fmt.Sprintf("%q: want %q or %q", clip(s, 80), AlertFiring, AlertResolved)
}

// cmpOrDot is "."+field, or "" for the alert itself.
func cmpOrDot(field string) string {
	if field == "" {
		return ""
	}
	return "." + field
}
