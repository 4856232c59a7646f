package main

import (
	"context"
	"fmt"
)

// candidate compares a second medshare binary (-candidate, e.g. a build with
// a proposed change) with the product binary, both seeded alike, phases
// interleaved with the baselines: an A/B test of a change before it lands.
func (b *bench) candidate(ctx context.Context) error {
	if b.cfg.candidate == "" {
		return nil
	}
	prod, err := b.build(ctx, "node-product", b.cfg.records, nodeOpts{})
	if err != nil {
		return err
	}
	cand, err := b.build(ctx, "node-candidate", b.cfg.records, nodeOpts{bin: b.cfg.candidate})
	if err != nil {
		return err
	}
	r, err := interleave(ctx, b.cfg,
		plain("floor c1", 1, bareOp(b.base, "floor")),
		plain("product c1", 1, readOp(prod, prod.reader(), 200)),
		plain("candidate c1", 1, readOp(cand, cand.reader(), 200)),
		plain("bare c32", 32, bareOp(b.base, "bare")),
		plain("product c32", 32, readOp(prod, prod.reader(), 200)),
		plain("candidate c32", 32, readOp(cand, cand.reader(), 200)),
	)
	if err != nil {
		return err
	}
	for _, c := range []string{"c1", "c32"} {
		base := "floor c1"
		if c == "c32" {
			base = "bare c32"
		}
		b.rep.add(fmt.Sprintf("candidate binary: authorized fetch, %s", c), fmtRatio(r.ratio("candidate "+c, "product "+c))+" of the product",
			fmt.Sprintf("product %s (%s of %s)", fmtRate(r.rate("product "+c)), fmtRatio(r.ratio("product "+c, base)), base[:len(base)-len(c)-1]),
			fmt.Sprintf("%s, p50 %s; %s of %s", fmtRate(r.rate("candidate "+c)), fmtDur(r.p50("candidate "+c)),
				fmtRatio(r.ratio("candidate "+c, base)), base[:len(base)-len(c)-1]), nil)
	}
	b.rep.note("Candidate binary: %s.", b.cfg.candidate)
	return nil
}
