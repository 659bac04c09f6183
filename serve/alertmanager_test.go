package serve_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops/serve"
)

func TestDecodeWebhookReadsAlertmanagersPayload(t *testing.T) {
	p, err := serve.DecodeWebhook(strings.NewReader(payload(firing("a1"), [4]string{serve.AlertResolved, "X", "h:1", "B2"})))
	require.NoError(t, err)
	assert.Equal(t, "4", p.Version)
	assert.Equal(t, "tbops", p.Receiver)
	assert.Equal(t, "http://am:9093", p.ExternalURL)
	require.Len(t, p.Alerts, 2)
	assert.Equal(t, whAlert, p.Alerts[0].Name())
	assert.Equal(t, whInst, p.Alerts[0].Labels["instance"])
	assert.Equal(t, "executor failing", p.Alerts[0].Annotations["summary"])
	assert.True(t, p.Alerts[0].StartsAt.Equal(t0))
	assert.True(t, p.Alerts[0].EndsAt.IsZero())
	assert.Equal(t, serve.AlertResolved, p.Alerts[1].Status)

	_, err = serve.DecodeWebhook(strings.NewReader(`{"version":"4","status":"firing","receiver":"r","alerts":[{}]}`))
	var pe *serve.PayloadError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, "alerts[0].status", pe.Field)
}

// FuzzDecodeWebhook: any body is either refused with a *PayloadError naming
// a field, or decoded into alerts that each have what serve relies on.
func FuzzDecodeWebhook(f *testing.F) {
	f.Add([]byte(payload(firing("a1"))))
	f.Add([]byte(payload(firing("a1"), [4]string{serve.AlertResolved, "X", "h:1", "ff"})))
	f.Add([]byte(`{"version":"4","status":"firing","receiver":"r","alerts":[]}`))
	f.Add([]byte(`{"version":"4","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"A"},"fingerprint":"0","startsAt":"bad"}]}`))
	f.Add([]byte(`{"alerts":null}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := serve.DecodeWebhook(bytes.NewReader(body))
		if err != nil {
			var pe *serve.PayloadError
			require.True(t, errors.As(err, &pe), "%T %v", err, err)
			require.NotEmpty(t, pe.Field)
			return
		}
		require.Equal(t, serve.WebhookVersion, p.Version)
		require.NotEmpty(t, p.Receiver)
		for _, a := range p.Alerts {
			require.NotEmpty(t, a.Name())
			require.NotEmpty(t, a.Fingerprint)
			require.Contains(t, []string{serve.AlertFiring, serve.AlertResolved}, a.Status)
			require.False(t, a.StartsAt.IsZero())
			_, err := json.Marshal(a)
			require.NoError(t, err)
		}
	})
}
