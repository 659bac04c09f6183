package tbops

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MicroPerBLOCK is the number of micro-BLOCK in one BLOCK.
const MicroPerBLOCK = 1_000_000

// EpochBlocks is the length of an epoch in blocks; a block is about one second, so
// an epoch is about 120 s. Alert rules translate "for N epochs" with this.
const EpochBlocks = 120

// Amount is an amount of micro-BLOCK, the unit on the wire.
type Amount int64

// String prints the amount as BLOCK with thousands separators and up to six
// decimals, trailing zeros trimmed: "10,000,000 BLOCK", "0.5 BLOCK".
func (a Amount) String() string {
	neg := a < 0
	u := uint64(a)
	if neg {
		u = uint64(-a)
	}
	whole, frac := u/MicroPerBLOCK, u%MicroPerBLOCK
	s := groupThousands(strconv.FormatUint(whole, 10))
	if frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	}
	if neg {
		s = "-" + s
	}
	return s + " BLOCK"
}

// BLOCK returns the amount in BLOCK as a float, for metrics and ratios.
func (a Amount) BLOCK() float64 { return float64(a) / MicroPerBLOCK }

// AmountFromBLOCK converts a BLOCK value (as in metrics and reference-node records)
// to micro-BLOCK, rounding to the nearest micro-BLOCK.
func AmountFromBLOCK(b float64) Amount { return Amount(math.Round(b * MicroPerBLOCK)) }

func groupThousands(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	lead := len(digits) % 3
	if lead > 0 {
		b.WriteString(digits[:lead])
	}
	for i := lead; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// PPM is a ratio in parts per million, as on the wire and in _ppm metrics.
type PPM int64

// Percent returns the ratio in percent.
func (p PPM) Percent() float64 { return float64(p) / 10_000 }

// String prints the ratio as a percentage: "99.99%".
func (p PPM) String() string { return strconv.FormatFloat(p.Percent(), 'f', -1, 64) + "%" }
