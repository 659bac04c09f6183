package treasury

import (
	"context"
	"fmt"
	"strconv"

	"github.com/theblock/tbops"
)

// Apply executes Path A's rollback plans in r (actions of kind "rollback" that
// are still plans), one gov.treasury.rollback_disbursement call each, never
// retried. Each action's DryRun becomes false and its Result says what the node
// answered. Other paths only hold checks and are left alone. It returns how many
// rollbacks succeeded and the first failure (it carries on past failures).
func Apply(ctx context.Context, c *Client, r *tbops.Report) (int, error) {
	var first error
	ok := 0
	for pi := range r.Paths {
		p := &r.Paths[pi]
		if p.ID != PathDependency || !p.Matched {
			continue
		}
		for ai := range p.Actions {
			a := &p.Actions[ai]
			if a.Kind != "rollback" || !a.DryRun {
				continue
			}
			if err := ctx.Err(); err != nil {
				return ok, err
			}
			id, err := strconv.ParseUint(a.Target, 10, 64)
			if err != nil {
				a.Result = fmt.Sprintf("not done: target %q is not a disbursement id", a.Target)
				if first == nil {
					first = fmt.Errorf("treasury: rollback target %q is not a disbursement id", a.Target)
				}
				continue
			}
			res, err := c.Rollback(ctx, id, a.Note)
			a.DryRun = false
			if err != nil {
				a.Result = "failed: " + err.Error()
				if first == nil {
					first = fmt.Errorf("treasury: rollback of %d: %w", id, err)
				}
				continue
			}
			ok++
			a.Result = "rolled back"
			if res.Message != "" {
				a.Result += ": " + res.Message
			}
		}
	}
	return ok, first
}
