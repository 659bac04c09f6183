package node

import (
	"time"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/promq"
)

// RunbookID is the id of the node-health diagnosis.
const RunbookID = "node-health"

// The node's height metrics: block_height_total is the contract's counter
// (PROTOCOL.md section 7); the reference node exports a block_height gauge and
// block_mined_total, the blocks this node mined (section 9).
const (
	MetricHeight      = "block_height_total"
	MetricHeightGauge = "block_height"
	MetricBlocksMined = "block_mined_total"
)

// Alert names of Rules().
const (
	AlertHeightNotProgressing      = "NodeHeightNotProgressing"
	AlertHeightGaugeNotProgressing = "NodeHeightGaugeNotProgressing"
)

// ProgressWindow is how long a height may stay put before the chain counts as
// not progressing: at about a block a second, 5 minutes without one is a
// stall, not a slow block, and holds ten scrapes at a 30 s interval.
const ProgressWindow = 5 * time.Minute

// Rules returns the node-health alert rules. Both say "the height has not moved
// in ProgressWindow", per node (increase keeps every target label), one for
// each height metric: promq has no way to say "whichever of the two the node
// exports" (an `or` of the two would stay undecided on a node that lacks
// one), so the reference node's gauge has a rule of its own. increase on the
// gauge is exact, because a height never falls. block_mined_total has no rule:
// a node that does not mine never moves it while the chain moves.
func Rules() []promq.Rule {
	rule := func(alert, metric, summary string) promq.Rule {
		return promq.Rule{Alert: alert, Severity: tbops.StatusCritical, Runbook: RunbookID,
			Expr: promq.EQc(promq.Increase(promq.Select(metric), ProgressWindow), 0), Summary: summary}
	}
	return []promq.Rule{
		rule(AlertHeightNotProgressing, MetricHeight,
			"block_height_total has not moved in 5m: the chain, or this node's sync, is stalled"),
		rule(AlertHeightGaugeNotProgressing, MetricHeightGauge,
			"block_height has not moved in 5m: the chain, or this node's sync, is stalled"),
	}
}
