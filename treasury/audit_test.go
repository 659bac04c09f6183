package treasury_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/nodetest"
	"github.com/theblock/tbops/treasury"
)

func TestAuditHealthyConserves(t *testing.T) {
	n := nodetest.Start(t)
	c, err := treasury.NewClient(n.URL())
	require.NoError(t, err)
	res, err := treasury.Audit(context.Background(), c, treasury.AuditOptions{})
	require.NoError(t, err)
	require.True(t, res.OK, "%+v", res)
	assert.Equal(t, tbops.AmountFromBLOCK(10_000_000), res.Initial)
	assert.Equal(t, tbops.AmountFromBLOCK(1_500_000), res.Accruals)
	assert.Equal(t, tbops.AmountFromBLOCK(2_000_000), res.Executed)
	assert.Equal(t, tbops.AmountFromBLOCK(9_500_000), res.Actual)
	var b bytes.Buffer
	require.NoError(t, res.WriteText(&b))
	assert.Contains(t, b.String(), `Ledger conservation verified:
  Initial balance: 10,000,000 BLOCK
  Accruals: 1,500,000 BLOCK
  Executed disbursements: 2,000,000 BLOCK
  Final balance: 9,500,000 BLOCK
`)
	// An epoch range audits a slice of the history, still conserving.
	from, to := int64(9_100), int64(9_500)
	res, err = treasury.Audit(context.Background(), c, treasury.AuditOptions{FromEpoch: &from, ToEpoch: &to})
	require.NoError(t, err)
	assert.True(t, res.OK)
	assert.Less(t, res.Snapshots, 39)
	_, err = treasury.Audit(context.Background(), c, treasury.AuditOptions{FromEpoch: &to, ToEpoch: &from})
	require.Error(t, err)
	big := int64(50_000)
	_, err = treasury.Audit(context.Background(), c, treasury.AuditOptions{FromEpoch: &big})
	require.ErrorIs(t, err, treasury.ErrNoHistory)
}

func TestAuditExecutedButNotCredited(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithScenarioName("treasury-data-corruption"))
	n.Update(func(s *nodetest.Scenario) {
		s.Chain.Accounts["ct1grantee99"] = nodetest.Account{Balance: 1}
	})
	c, err := treasury.NewClient(n.URL())
	require.NoError(t, err)
	res, err := treasury.Audit(context.Background(), c, treasury.AuditOptions{})
	require.NoError(t, err)
	require.False(t, res.OK)
	assert.Equal(t, tbops.AmountFromBLOCK(200_000), res.Discrepancy)
	var b bytes.Buffer
	require.NoError(t, res.WriteText(&b))
	assert.Contains(t, b.String(), `Assertion failed:
  Expected balance: 9,500,000 BLOCK
  Actual balance: 9,300,000 BLOCK
  Discrepancy: 200,000 BLOCK (2.1%)

Investigation:
  1. Find missing disbursement: ID 4521
  2. Check status: Executed but not credited
  3. Verify: Receipt exists? Yes. Target account? Valid.
  4. Root cause: Ledger index out of sync
`)
}
