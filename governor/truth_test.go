package governor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/governor"
	"github.com/theblock/tbops/internal/reportcheck"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/promq"
)

// The tests here hold the audit to issue #12's rules: a comparison the evidence
// cannot decide is unknown, never a page and never ok. They call only what
// main already had (governor.NewClient(url), governor.Audit), so each
// reproduction runs unchanged against main, where it fails.

// faulty are the scenarios that break the governor audit on purpose.
var faulty = map[string]bool{"governor-hash-mismatch": true, "governor-gauge-drift": true, "governor-telemetry-missing": true}

// govNode is a simulated node on a fake clock and a client of it.
type govNode struct {
	clk *nodetest.FakeClock
	n   *nodetest.Node
	c   *governor.Client
}

func startGov(t *testing.T, scenario string) govNode {
	t.Helper()
	clk := nodetest.NewFakeClock(time.Unix(1_780_000_000, 0))
	n := nodetest.Start(t, nodetest.WithClock(clk.Now), nodetest.WithScenarioName(scenario))
	c, err := governor.NewClient(n.URL())
	require.NoError(t, err)
	return govNode{clk: clk, n: n, c: c}
}

// doctorSource is what doctor observes: two scrapes a second apart.
func (g govNode) doctorSource(t *testing.T) *promq.Scrape {
	t.Helper()
	ctx := context.Background()
	src := promq.NewScrape([]string{g.n.MetricsURL()}, promq.WithScrapeClock(g.clk.Now))
	t.Cleanup(src.Close)
	require.NoError(t, src.Scrape(ctx))
	g.clk.Advance(time.Second)
	require.NoError(t, src.Scrape(ctx))
	return src
}

func (g govNode) audit(t *testing.T, src promq.Source, dir bool) tbops.Report {
	t.Helper()
	opts := governor.Options{Now: g.clk.Now}
	if dir {
		opts.Dir = g.n.GovernorDecisionsDir()
	}
	r, err := governor.Audit(context.Background(), g.c, src, opts)
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	return r
}

// Healthy means healthy: on every scenario that does not break the governor,
// one short observation (doctor's) never gives a warning or a page, however
// often it runs and wherever an epoch boundary falls (the loop moves the clock
// 7 s a time over more than one 120 s epoch). The healthy scenarios and those
// whose chain differs run 20 times; the others differ only in another area's
// state, which the governor does not read, and run once.
func TestHealthyScenariosNeverWarn(t *testing.T) {
	for _, sc := range nodetest.Scenarios() {
		if faulty[sc] {
			continue
		}
		runs := 1
		for _, k := range []string{"healthy", "reference", "governor", "chain", "syncing"} {
			if strings.Contains(sc, k) {
				runs = 20
			}
		}
		t.Run(sc, func(t *testing.T) {
			g := startGov(t, sc)
			for i := range runs {
				r := g.audit(t, g.doctorSource(t), i%2 == 1)
				assert.Contains(t, []tbops.Status{tbops.StatusOK, tbops.StatusUnknown}, r.Status,
					"run %d: firing %+v alerts %+v warnings %v", i, r.Firing(), r.Alerts, r.Warnings)
				g.clk.Advance(6 * time.Second)
			}
		})
	}
}

// With history past the rule's `for` and the lookback, a healthy node's every
// symptom and alert is decided ok, from files and from the node's answers.
func TestHealthyWithHistoryIsDecidedOK(t *testing.T) {
	ctx := context.Background()
	for _, sc := range []string{"healthy", "governor-shadow-mode", "governor-reference"} {
		t.Run(sc, func(t *testing.T) {
			g := startGov(t, sc)
			src, err := nodetest.NewSource(ctx, g.n, g.clk, 0)
			require.NoError(t, err)
			t.Cleanup(src.Close)
			require.NoError(t, src.Advance(ctx, 16*time.Minute))
			for _, dir := range []bool{false, true} {
				r := g.audit(t, src, dir)
				assert.Equal(t, tbops.StatusOK, r.Status, "warnings %v", r.Warnings)
				for _, s := range r.Symptoms {
					assert.Equal(t, tbops.StatusOK, s.Status, "symptom %s (dir %v)", s.ID, dir)
				}
				require.Len(t, r.Alerts, 1)
				assert.Equal(t, tbops.StatusOK, r.Alerts[0].Status, "%+v", r.Alerts[0])
				assert.Empty(t, r.Warnings)
			}
		})
	}
}

// Reproduction: the economics gauges vanish. One short observation cannot say
// they have been gone for the rule's 10 minutes: the alert is unknown, with a
// warning saying how much was observed (main fired it at once, from one
// instant). After 10 minutes of history it fires, and the report is a warning.
func TestTelemetryMissingAlertNeedsItsFor(t *testing.T) {
	ctx := context.Background()
	g := startGov(t, "governor-telemetry-missing")
	r := g.audit(t, g.doctorSource(t), false)
	al, ok := r.Alert(governor.AlertTelemetryMissing)
	require.True(t, ok)
	assert.False(t, al.Firing)
	assert.Equal(t, tbops.StatusUnknown, al.Status)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "alert GovernorEconomicsTelemetryMissing: ")
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "of the 10m")
	assert.Equal(t, tbops.StatusUnknown, r.Status)
	drift, _ := r.Symptom(governor.SymGaugeDrift)
	assert.Equal(t, tbops.StatusUnknown, drift.Status, "an absent gauge is no data, not a drift of 0")
	assert.Nil(t, drift.Value)

	src, err := nodetest.NewSource(ctx, g.n, g.clk, 0)
	require.NoError(t, err)
	t.Cleanup(src.Close)
	require.NoError(t, src.Advance(ctx, 11*time.Minute))
	r = g.audit(t, src, false)
	al, _ = r.Alert(governor.AlertTelemetryMissing)
	assert.True(t, al.Firing)
	assert.Equal(t, tbops.StatusWarning, al.Status)
	assert.Equal(t, tbops.StatusWarning, r.Status, "the firing alert raises the report")
}

// Reproduction: a new economics decision lands after the gauges were scraped.
// The scraped gauges mirror the previous sample; that is not a drift (main
// said warning): unknown until a scrape of a later epoch than the decision's.
func TestGaugesOlderThanTheDecisionAreUndecided(t *testing.T) {
	g := startGov(t, "healthy")
	src := g.doctorSource(t)
	g.clk.Advance(2 * time.Minute) // epoch 10001; the gauges were scraped in 10000
	g.n.Update(func(s *nodetest.Scenario) {
		prev := *s.Governor.Decisions[2].Sample
		prev.EpochTxCount += 700
		s.Governor.Decisions = append(s.Governor.Decisions, nodetest.GovernorDecision{Epoch: 10_001, Gate: "economics", Action: "enter",
			IntentID: "econ-10001", Reason: "economics inside band", Sample: &prev, State: "pending", EpochApply: 10_002})
	})
	require.NoError(t, g.n.WriteGovernorFiles())
	for _, dir := range []bool{false, true} {
		r := g.audit(t, src, dir)
		s, _ := r.Symptom(governor.SymGaugeDrift)
		assert.False(t, s.Firing, "dir %v: %+v", dir, s)
		assert.Equal(t, tbops.StatusUnknown, s.Status)
		assert.Contains(t, strings.Join(r.Warnings, "\n"), "economics_epoch_tx_count = 48120 differs from")
		assert.Contains(t, strings.Join(r.Warnings, "\n"), "observed in epoch 10000 or later and the decision is of epoch 10001")
		assert.NotEqual(t, tbops.StatusWarning, r.Status)
	}
	// A scrape in the next epoch decides it: the gauges now mirror the new sample.
	g.clk.Advance(2 * time.Minute)
	r := g.audit(t, g.doctorSource(t), true)
	s, _ := r.Symptom(governor.SymGaugeDrift)
	assert.Equal(t, tbops.StatusOK, s.Status, "warnings %v", r.Warnings)
}

// Reproduction: a governor window ends between the scrape and the status read,
// and the presence gate's streak moves on. Not a mismatch (main said warning):
// unknown, and a scrape in the status's epoch decides it.
func TestAdStreakAcrossAnEpochBoundaryIsUndecided(t *testing.T) {
	g := startGov(t, "healthy")
	src := g.doctorSource(t)
	g.clk.Advance(2 * time.Minute)
	g.n.Update(func(s *nodetest.Scenario) {
		for i := range s.Governor.Gates {
			if s.Governor.Gates[i].Name == "ad_presence" {
				s.Governor.Gates[i].EnterStreak = 3
			}
		}
	})
	r := g.audit(t, src, false)
	s, _ := r.Symptom(governor.SymAdGateStreakMismatch)
	assert.False(t, s.Firing)
	assert.Equal(t, tbops.StatusUnknown, s.Status)
	assert.Contains(t, strings.Join(r.Warnings, "\n"), "ad tier presence: ad_gate_streak_windows 2 differs from the ad_presence gate's enter streak 3")

	r = g.audit(t, g.doctorSource(t), false)
	s, _ = r.Symptom(governor.SymAdGateStreakMismatch)
	assert.Equal(t, tbops.StatusOK, s.Status)

	// A gauge that disagrees within one epoch is a mismatch.
	g.n.Update(func(s *nodetest.Scenario) {
		s.Governor.Ad.GateStreakWindows = map[string]int64{"contextual": 6, "presence": 5}
	})
	r = g.audit(t, g.doctorSource(t), false)
	s, _ = r.Symptom(governor.SymAdGateStreakMismatch)
	assert.True(t, s.Firing)
	assert.Equal(t, tbops.StatusWarning, s.Status)
}

// Reproduction: the status names the previous economics decision while a
// newer one, of the status's own epoch, is already on disk: the status may
// have been read before it was made. Unknown (main paged: critical); one epoch
// later the same answer is a decided mismatch.
func TestStatusHashRaceWithANewDecisionIsUndecided(t *testing.T) {
	ctx := context.Background()
	g := startGov(t, "healthy")
	prev, err := g.c.Snapshot(ctx, 9998)
	require.NoError(t, err)
	prevHash, err := prev.Hash()
	require.NoError(t, err)
	g.clk.Advance(2 * time.Minute) // epoch 10001
	g.n.Update(func(s *nodetest.Scenario) {
		smp := *s.Governor.Decisions[2].Sample
		smp.EpochTxCount++
		s.Governor.Decisions = append(s.Governor.Decisions, nodetest.GovernorDecision{Epoch: 10_001, Gate: "economics", Action: "enter",
			IntentID: "econ-10001", Reason: "economics inside band", Sample: &smp, State: "pending", EpochApply: 10_002})
		s.Governor.StatusHash = prevHash
	})
	require.NoError(t, g.n.WriteGovernorFiles())
	for _, dir := range []bool{false, true} {
		r := g.audit(t, g.doctorSource(t), dir)
		s, _ := r.Symptom(governor.SymStatusHashMismatch)
		assert.False(t, s.Firing, "dir %v", dir)
		assert.Equal(t, tbops.StatusUnknown, s.Status)
		assert.Contains(t, strings.Join(r.Warnings, "\n"), "governor.status (epoch 10001) names the economics decision of epoch 9998, and the newest, of epoch 10001, may have been made after the status was read")
	}
	g.clk.Advance(2 * time.Minute) // epoch 10002: the decision of 10001 was made before this read
	r := g.audit(t, g.doctorSource(t), true)
	s, _ := r.Symptom(governor.SymStatusHashMismatch)
	assert.True(t, s.Firing)
	assert.Equal(t, tbops.StatusCritical, s.Status)
	assert.Contains(t, s.Summary, "it matches the decision of epoch 9998 instead")
}

// Reproduction: a decisions directory that cannot be read checked no file, so
// its file symptoms are unknown (main reported the directory as one invalid
// decision file: a warning).
func TestUnreadableDirectoryIsUnknown(t *testing.T) {
	g := startGov(t, "healthy")
	r, err := governor.Audit(context.Background(), g.c, g.doctorSource(t), governor.Options{Now: g.clk.Now, Dir: t.TempDir() + "/missing"})
	require.NoError(t, err)
	reportcheck.Valid(t, r)
	for _, id := range []string{governor.SymDecisionFilesInvalid, governor.SymSignatureInvalid} {
		s, ok := r.Symptom(id)
		require.True(t, ok, id)
		assert.False(t, s.Firing, id)
		assert.Equal(t, tbops.StatusUnknown, s.Status, id)
		assert.Nil(t, s.Value, id)
	}
	assert.Equal(t, tbops.StatusUnknown, r.Status)
}
