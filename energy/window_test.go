package energy

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxInWindow is the most admitted instants in any half-open window of length w
// (an exact sliding log over the admitted requests).
func maxInWindow(ts []int64, w int64) int {
	best, j := 0, 0
	for i := range ts {
		for ts[i]-ts[j] >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func run(arrivals []int64, limit uint64) (admitted []int64) {
	var w window
	const sec = int64(time.Second)
	slot := sec / windowSlots
	w.slot = arrivals[0] / slot
	for _, t := range arrivals {
		if ok, _ := w.allow(t, slot, limit); ok {
			admitted = append(admitted, t)
		}
	}
	return admitted
}

func TestWindowAccuracyRandom(t *testing.T) {
	const sec = int64(time.Second)
	rng := rand.New(rand.NewPCG(7, 9))
	for _, limit := range []uint64{5, 50, 500} {
		// Poisson arrivals at 3× the limit for 30 s
		var ts []int64
		t0 := int64(1_700_000_000) * sec
		for t := t0; t < t0+30*sec; t += int64(rng.ExpFloat64() * float64(sec) / float64(3*limit)) {
			ts = append(ts, t)
		}
		adm := run(ts, limit)
		got := maxInWindow(adm, sec)
		bound := float64(limit) * (1 + 1.0/windowSlots)
		assert.LessOrEqual(t, float64(got), bound+1, "limit %d", limit)
		// and it admits close to the limit on average
		rate := float64(len(adm)) / 30
		assert.Greater(t, rate, 0.85*float64(limit), "limit %d", limit)
	}
}

func TestWindowSteadyAtLimit(t *testing.T) {
	const sec = int64(time.Second)
	limit := uint64(50)
	var ts []int64
	t0 := int64(1_700_000_000) * sec
	for i := int64(0); i < 50*20; i++ {
		ts = append(ts, t0+i*sec/50+1)
	}
	adm := run(ts, limit)
	assert.GreaterOrEqual(t, len(adm), int(0.97*float64(len(ts))), "a client at exactly the limit is admitted")
	assert.LessOrEqual(t, maxInWindow(adm, sec), int(limit)+1)
}

func TestWindowBoundaryBursts(t *testing.T) {
	const sec = int64(time.Second)
	slot := sec / windowSlots
	limit := uint64(50)
	t0 := int64(1_700_000_000) * sec
	// a burst at the end of a slot, then bursts every few ms across boundaries
	var ts []int64
	for k := int64(0); k < 40; k++ {
		base := t0 + k*slot*3 - 1
		for i := 0; i < 60; i++ {
			ts = append(ts, base+int64(i))
		}
	}
	adm := run(ts, limit)
	got := maxInWindow(adm, sec)
	assert.LessOrEqual(t, got, 2*int(limit), "documented worst case")
	// bursts at slot boundaries only: the weighting is exact there
	var tb []int64
	for k := int64(0); k < 20; k++ {
		for i := 0; i < 60; i++ {
			tb = append(tb, t0+k*sec/2+int64(i))
		}
	}
	assert.LessOrEqual(t, maxInWindow(run(tb, limit), sec), int(limit)+1)
}

func TestRetryAfterIsAccurate(t *testing.T) {
	const sec = int64(time.Second)
	slot := sec / windowSlots
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		var w window
		limit := uint64(1 + rng.IntN(20))
		now := int64(1_700_000_000)*sec + rng.Int64N(sec)
		w.slot = now / slot
		var wait time.Duration
		for {
			ok, d := w.allow(now, slot, limit)
			if !ok {
				wait = d
				break
			}
			now += rng.Int64N(slot / 2)
		}
		require.Greater(t, wait, time.Duration(0))
		c := w
		ok, _ := c.allow(now+int64(wait), slot, limit)
		assert.True(t, ok, "admitted after the advertised wait (trial %d)", trial)
		if wait > 2*time.Millisecond {
			c = w
			ok, _ = c.allow(now+int64(wait)-int64(time.Millisecond), slot, limit)
			assert.False(t, ok, "not admitted 1ms before it (trial %d, wait %s)", trial, wait)
		}
	}
}

func TestLimiterEvictsIdleFirst(t *testing.T) {
	l := newLimiter(limiterShards * 4)
	const sec = int64(time.Second)
	slot := sec / windowSlots
	t0 := int64(1_700_000_000) * sec
	for i := 0; i < 2000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.allow(a, t0+int64(i)*sec, slot, 5)
	}
	assert.LessOrEqual(t, l.clients(), limiterShards*4)
}

func TestWindowZeroLimit(t *testing.T) {
	var w window
	ok, d := w.allow(int64(time.Second), int64(time.Second)/windowSlots, 0)
	assert.False(t, ok)
	assert.Greater(t, d, time.Duration(0))
}
