package main

import (
	"math"
	"math/bits"
	"time"
)

// histMantissaBits sets the histogram precision: values below 2^histMantissaBits
// nanoseconds get one bucket each; above that every power of two is split into
// 2^(histMantissaBits-1) linear buckets, so a bucket is at most 1/128 (0.8%)
// of its value wide.
const (
	histMantissaBits = 8
	histLinear       = 1 << histMantissaBits
	histHalf         = histLinear / 2
	histBuckets      = histLinear + (64-histMantissaBits)*histHalf
)

// histogram is a log-linear (HDR-style) latency histogram in nanoseconds.
// Recording does not allocate; it is not safe for concurrent use: each worker
// owns one and they are merged after the run.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    uint64
	min    uint64
	max    uint64
}

func newHistogram() *histogram { return &histogram{min: math.MaxUint64} }

// bucketOf maps a value to its bucket index.
func bucketOf(v uint64) int {
	if v < histLinear {
		return int(v)
	}
	shift := bits.Len64(v) - histMantissaBits
	mantissa := v >> uint(shift) // in [histHalf, histLinear)
	return histLinear + (shift-1)*histHalf + int(mantissa-histHalf)
}

// bucketUpper returns the largest value that falls into bucket i.
func bucketUpper(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	shift := (i-histLinear)/histHalf + 1
	mantissa := uint64((i-histLinear)%histHalf + histHalf)
	return (mantissa+1)<<uint(shift) - 1
}

// Record adds one observation.
func (h *histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += v
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// Merge adds all observations of o to h.
func (h *histogram) Merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of observations.
func (h *histogram) Count() uint64 { return h.n }

// Max is the largest observation, exact.
func (h *histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the arithmetic mean, exact.
func (h *histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the value at quantile q (0 < q ≤ 1): the upper bound of the
// bucket holding the ceil(q·n)-th observation, clamped to the exact min and
// max, so quantiles are monotone in q and never exceed Max.
func (h *histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketUpper(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
