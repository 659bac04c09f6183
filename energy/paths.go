package energy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/theblock/tbops"
)

func (d *diag) paths() {
	d.r.Paths = append(d.r.Paths, d.pathA(), d.pathB(), d.pathC(), d.pathD())
}

// rpcFlag is the --rpc flag of the tbops commands the actions suggest.
func (d *diag) rpcFlag() string { return " --rpc " + d.c.URL() }

func isMethodNotFound(err error) bool { return errors.Is(err, ErrMethodNotFound) }

// pathA is "Oracle latency high": its indicator is the p95 symptom.
func (d *diag) pathA() tbops.Path {
	p := tbops.Path{ID: PathOracleLatency, Title: "Oracle latency high"}
	s, _ := d.r.Symptom(SymptomOracleLatency)
	p.Matched = s.Firing
	switch {
	case s.Value != nil:
		p.Why = fmt.Sprintf("oracle p95 %gs (indicator: > %gs)", *s.Value, OracleP95Warning)
	default:
		p.Why = fmt.Sprintf("oracle p95 %s (indicator: > %gs)", s.Status, OracleP95Warning)
	}
	p.Actions = []tbops.Action{
		{Kind: "check", Target: "energy-oracle", Command: "ps aux | grep oracle; top -p $(pgrep -f oracle)", Note: "oracle CPU and memory, on the oracle host", DryRun: true},
		{Kind: "check", Target: "energy-oracle", Command: `grep "pending_verifications\|queue_depth" /var/log/oracle/*.log | tail -10`, Note: "oracle queue depth, on the oracle host", DryRun: true},
		{Kind: "scale", Target: "deployment/energy-oracle", Command: "kubectl scale deployment energy-oracle --replicas=3", Note: "add oracle instances if CPU-bound or the queue grows", DryRun: true},
		{Kind: "wait", Command: "watch -n 5 \"tbops query 'histogram_quantile(0.95, oracle_latency_seconds_bucket)'\"", Note: "monitor p95 back under 5 s (SLO)", DryRun: true},
	}
	return p
}

// pathB is "Signature verification failures": more than 1 failure a minute
// with reason verification_failed or invalid_format (the runbook's indicator;
// key_not_found and scheme_unsupported are not this path). Its key checks are
// step 2's findings; a provider whose keys disagree gets an action.
func (d *diag) pathB() tbops.Path {
	p := tbops.Path{ID: PathSignatures, Title: "Signature verification failures"}
	ev := d.m.pathB
	switch {
	case d.src == nil:
		p.Why = "failure rate unknown: no metrics source (indicator: > 1/min with reason verification_failed or invalid_format)"
	case !ev.Known:
		p.Why = "failure rate of verification_failed and invalid_format unknown: " + strings.Join(quiet(ev.Warnings, ev.NoData), "; ")
	default:
		p.Matched = ev.Returned
		p.Why = fmt.Sprintf("verification_failed + invalid_format failures %s 1/min over 5m", map[bool]string{true: "above", false: "not above"}[ev.Returned])
		if top, v, ok := d.topReason(); ok {
			p.Why += fmt.Sprintf("; top reason %s (%.2f/min)", top, v)
		}
	}
	for _, c := range d.keyChecks() {
		if c.problem != "" {
			p.Actions = append(p.Actions, tbops.Action{Kind: "config", Target: c.id, Note: "re-register the provider's key with the oracle: " + c.problem, DryRun: true})
		}
	}
	p.Actions = append(p.Actions,
		tbops.Action{Kind: "check", Command: "tbops energy sign-reading --provider PROVIDER --meter METER --total-kwh N --nonce N --key-file KEY > reading.json", Note: "sign a test reading with the provider's key (replaces the runbook's Python snippet)", DryRun: true},
		tbops.Action{Kind: "check", Command: "tbops energy verify-reading" + d.rpcFlag() + " reading.json", Note: "verify it against the provider's registered key; prints what failed and why", DryRun: true})
	return p
}

// topReason is the reason with the highest exact failure rate.
func (d *diag) topReason() (string, float64, bool) {
	top, topV, found := "", 0.0, false
	for _, s := range d.m.failRates.Series {
		if v, ok := exact(&s); ok && (!found || v > topV) {
			top, topV, found = string(s.Metric["reason"]), v, true
		}
	}
	return top, topV, found
}

// pathC is "Timestamp skew". Its indicator is timestamp_skew errors in the
// node's logs; when no log file could be read, a spread of the active
// providers' last settlements wider than SettleWindow stands in (a provider
// whose clock is off has every reading refused, so it alone stops settling).
// This host's clock is never an indicator: tbops does not run on the providers.
func (d *diag) pathC() tbops.Path {
	p := tbops.Path{ID: PathTimestampSkew, Title: "Timestamp skew"}
	sp, spreadKnown := d.settlementSpread()
	lagging := "no active provider lags"
	if len(sp.lagging) > 0 {
		lagging = fmt.Sprintf("%s lag the newest settlement by over %s", strings.Join(sp.lagging, ", "), SettleWindow)
	}
	switch {
	case d.logsRead():
		n := d.h.logs.Found[1].Matched
		p.Matched = n > 0
		p.Why = fmt.Sprintf("%d timestamp_skew lines in the node's logs", n)
		if spreadKnown {
			p.Why += "; " + lagging
		}
	case spreadKnown:
		p.Matched = len(sp.lagging) > 0
		p.Why = "node logs not read (indicator: timestamp_skew in /var/log/node/*.log); from the providers' last settlements: " + lagging
	default:
		p.Why = "node logs not read and the providers' last settlements unknown (indicator: timestamp_skew in /var/log/node/*.log)"
	}
	p.Actions = []tbops.Action{
		{Kind: "check", Command: `grep "timestamp_skew\|TimestampSkew" /var/log/node/*.log | wc -l`, Note: "count skew rejections, on the node's host", DryRun: true},
	}
	for _, id := range sp.lagging {
		p.Actions = append(p.Actions, tbops.Action{Kind: "check", Target: id, Command: "ssh <" + id + " host> 'date; timedatectl'", Note: "compare the provider's clock with the oracle's (tolerance 300 s)", DryRun: true})
	}
	p.Actions = append(p.Actions,
		tbops.Action{Kind: "sync-clock", Command: "sudo ntpdate -u ntp.ubuntu.com", Note: "on the skewed host, or your NTP server; then check with timedatectl", DryRun: true},
		tbops.Action{Kind: "wait", Command: "watch -n 10 'grep timestamp_skew /var/log/node/*.log | tail -5'", Note: "monitor recovery, on the node's host", DryRun: true})
	return p
}

// pathD is "Provider reputation degradation": several providers below 0.5.
func (d *diag) pathD() tbops.Path {
	p := tbops.Path{ID: PathReputation, Title: "Provider reputation degradation"}
	if d.g.marketErr != nil {
		p.Why = "market unknown"
	} else {
		poor := d.poor()
		p.Matched = len(poor) >= 2
		p.Why = fmt.Sprintf("%d providers with reputation below %.1f (indicator: multiple)", len(poor), ReputationFloor)
	}
	p.Actions = []tbops.Action{
		{Kind: "check", Command: "tbops energy disputes --limit 20" + d.rpcFlag(), Note: "recent disputes", DryRun: true},
		{Kind: "check", Command: "tbops query 'rate(energy_slashing_total[24h])'", Note: "recent slashing by provider and reason", DryRun: true},
	}
	n := 0
	for _, ds := range d.g.disputes {
		if ds.Status == "resolved" && n < 5 {
			p.Actions = append(p.Actions, tbops.Action{Kind: "check", Target: string(ds.DisputeID), Command: "tbops energy disputes --id " + string(ds.DisputeID) + d.rpcFlag(), Note: "review the evidence", DryRun: true})
			n++
		}
	}
	return p
}
