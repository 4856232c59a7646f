package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// phase is one side of a comparison: an operation run at a concurrency.
type phase struct {
	name string
	c    int
	fn   timedOp
	// maxOps, when positive, caps the operations of one run (for phases
	// that consume something, such as grants).
	maxOps int
}

// plain makes a phase of an op that is timed by its wall time.
func plain(name string, c int, fn op) phase {
	return phase{name: name, c: c, fn: func(ctx context.Context, w, i int) (time.Duration, error) {
		return 0, fn(ctx, w, i)
	}}
}

// runs holds each phase's samples, one per repetition, by phase name.
type runs map[string][]sample

// interleave runs the phases in turn, A B C A B C …, reps times for d
// each, after one discarded warm-up round of d/4 per phase, so that slow
// drifts of a noisy machine hit every phase alike.
func interleave(ctx context.Context, cfg *config, phases ...phase) (runs, error) {
	for _, p := range phases {
		if _, err := driveTimed(ctx, p.c, cfg.phase/4, p.maxOps, p.fn); err != nil {
			return nil, fmt.Errorf("%s (warm-up): %w", p.name, err)
		}
	}
	out := runs{}
	for r := range cfg.reps {
		for _, p := range phases {
			s, err := driveTimed(ctx, p.c, cfg.phase, p.maxOps, p.fn)
			if err != nil {
				return nil, fmt.Errorf("%s (repetition %d): %w", p.name, r+1, err)
			}
			out[p.name] = append(out[p.name], s)
		}
	}
	return out, nil
}

// rate is the median throughput of a phase over its repetitions.
func (r runs) rate(name string) float64 {
	return median(mapSamples(r[name], sample.rate))
}

// ratio is the median over repetitions of a's throughput divided by b's in
// the same repetition: adjacent phases share the machine's state.
func (r runs) ratio(a, b string) float64 {
	as, bs := r[a], r[b]
	xs := make([]float64, 0, len(as))
	for i := range min(len(as), len(bs)) {
		xs = append(xs, as[i].rate()/bs[i].rate())
	}
	return median(xs)
}

// spread is the relative half-range of the per-repetition ratios of a to
// b around their median: a measure of this run's noise.
func (r runs) spread(a, b string) float64 {
	as, bs := r[a], r[b]
	xs := make([]float64, 0, len(as))
	for i := range min(len(as), len(bs)) {
		xs = append(xs, as[i].rate()/bs[i].rate())
	}
	if len(xs) == 0 {
		return 0
	}
	m := median(xs)
	return (slices.Max(xs) - slices.Min(xs)) / 2 / m
}

// p50 is the median over repetitions of each repetition's median latency.
func (r runs) p50(name string) time.Duration {
	return r.quantile(name, 0.5)
}

// quantile is the median over repetitions of each repetition's q-quantile.
func (r runs) quantile(name string, q float64) time.Duration {
	xs := mapSamples(r[name], func(s sample) float64 { return float64(s.quantile(q)) })
	return time.Duration(median(xs))
}

func mapSamples(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// median of xs; 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
