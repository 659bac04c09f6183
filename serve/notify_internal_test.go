package serve

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
)

var at = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

func TestTruncateCutsOnARuneAndSaysSo(t *testing.T) {
	assert.Equal(t, "short", truncate("short", 10))
	s := strings.Repeat("é", 10) // 20 bytes
	got := truncate(s, 10)
	assert.LessOrEqual(t, len(got), 10)
	assert.True(t, utf8.ValidString(got))
	assert.True(t, strings.HasSuffix(got, "…"))
}

// A report far over Slack's limits still makes a message within them: at
// most 50 blocks, a header of 150 characters, sections of 3000, every code
// block closed.
func TestSlackBodyStaysWithinSlacksLimits(t *testing.T) {
	r := tbops.NewReport(strings.Repeat("r", 200), "http://n/", at)
	long := strings.Repeat("x", 5000)
	for i := 0; i < 100; i++ {
		r.Symptoms = append(r.Symptoms, tbops.Symptom{ID: "s", Summary: long, Firing: true, Status: tbops.StatusCritical})
		r.Paths = append(r.Paths, tbops.Path{ID: "P", Title: long, Matched: true,
			Actions: []tbops.Action{{Kind: "check", Command: long, DryRun: true}}})
	}
	r.Finalize()
	a := WebhookAlert{Status: AlertFiring, Labels: map[string]string{"alertname": "A"}, Fingerprint: "1"}
	m := slackBody(newNotification(a, "http://n/", r.Runbook, r))
	assert.LessOrEqual(t, len(m.Blocks), slackBlocksMax)
	assert.LessOrEqual(t, len(m.Text), slackSectionMax)
	assert.Equal(t, "header", m.Blocks[0].Type)
	assert.LessOrEqual(t, len(m.Blocks[0].Text.Text), slackHeaderMax)
	for _, b := range m.Blocks[1:] {
		assert.LessOrEqual(t, len(b.Text.Text), slackSectionMax)
		assert.Zero(t, strings.Count(b.Text.Text, "```")%2, "code blocks are closed")
	}
	assert.Equal(t, "… more paths: see the report", m.Blocks[len(m.Blocks)-1].Text.Text)
}

func TestDecideSendsOncePerVerdictAndEpisode(t *testing.T) {
	const repeat = 4 * time.Hour
	sent := func(kind, verdict string, ago time.Duration) *NotificationRecord {
		return &NotificationRecord{Kind: kind, verdict: verdict, At: at.Add(-ago)}
	}
	for _, c := range []struct {
		name, kind string
		last       *NotificationRecord
		verdict    string
		send       bool
	}{
		{"first firing", AlertFiring, nil, "critical|a|C", true},
		{"same verdict within the interval", AlertFiring, sent(AlertFiring, "critical|a|C", time.Hour), "critical|a|C", false},
		{"same verdict after the interval", AlertFiring, sent(AlertFiring, "critical|a|C", repeat), "critical|a|C", true},
		{"status changed", AlertFiring, sent(AlertFiring, "warning|a|C", time.Minute), "critical|a|C", true},
		{"a new path", AlertFiring, sent(AlertFiring, "critical|a|C", time.Minute), "critical|a|A,C", true},
		{"firing again after resolved", AlertFiring, sent(AlertResolved, "ok||", time.Minute), "critical|a|C", true},
		{"resolved after firing", AlertResolved, sent(AlertFiring, "critical|a|C", time.Minute), "ok||", true},
		{"resolved with nothing sent before", AlertResolved, nil, "ok||", true},
		{"resolved twice", AlertResolved, sent(AlertResolved, "ok||", time.Minute), "ok||", false},
	} {
		send, why := decide(c.kind, c.last, c.verdict, at, repeat)
		assert.Equal(t, c.send, send, c.name)
		assert.Equal(t, !send, why != "", "%s: a suppression says why", c.name)
	}
}

func TestPruneDeletesOldAlertsAndNotifications(t *testing.T) {
	ctx := context.Background()
	st, err := OpenStore(ctx, filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	defer st.Close()
	recs := []AlertRecord{
		{ReceivedAt: at, Receiver: "r", Fingerprint: "1", Status: AlertFiring, Alertname: "A", Labels: map[string]string{}, Outcome: OutcomeDiagnosed},
		{ReceivedAt: at.Add(48 * time.Hour), Receiver: "r", Fingerprint: "2", Status: AlertFiring, Alertname: "A", Labels: map[string]string{}, Outcome: OutcomeIgnored},
	}
	require.NoError(t, st.recordAlerts(ctx, recs, [][]byte{[]byte("{}"), []byte("{}")}))
	_, err = st.recordNotification(ctx, NotificationRecord{AlertID: recs[0].ID, Target: "http://h", Format: NotifyJSON,
		Kind: AlertFiring, Result: ResultSent, At: at, fingerprint: "1", targetKey: "k", verdict: "ok||"})
	require.NoError(t, err)
	_, err = st.Prune(ctx, at.Add(24*time.Hour))
	require.NoError(t, err)
	left, err := st.Alerts(ctx, AlertFilter{})
	require.NoError(t, err)
	require.Len(t, left, 1)
	assert.Equal(t, "2", left[0].Fingerprint)
	sent, err := st.lastSent(ctx)
	require.NoError(t, err)
	assert.Empty(t, sent)
}

func TestNotifyTargetIsShownWithoutItsSecret(t *testing.T) {
	tg := NotifyTarget{URL: "https://user:pw@hooks.slack.com/services/T0/B0/XXXX?token=y"}
	assert.Equal(t, "https://hooks.slack.com", tg.String())
	assert.Equal(t, "(invalid URL)", RedactNotifyURL("::not a url"))
	assert.NotEqual(t, tg.key(), NotifyTarget{URL: "https://hooks.slack.com/services/T0/B0/YYYY"}.key(), "two webhooks on one host are two targets")
}
