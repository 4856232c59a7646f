package main

import (
	"context"
	"fmt"
)

// revokedPerPatient is how many grant+revoke cycles the consent-history
// scenario runs per patient.
const revokedPerPatient = 16

// consentHistory compares reads on two fresh nodes seeded alike, one whose
// patients have each granted and revoked clinic-c access
// revokedPerPatient times: the reader (hospital-b) is not the grantee, so
// only the cost of a patient's consent history shows.
func (b *bench) consentHistory(ctx context.Context) error {
	clean, err := b.build(ctx, "node-history-none", b.cfg.records, nodeOpts{})
	if err != nil {
		return err
	}
	hist, err := b.build(ctx, "node-history", b.cfg.records, nodeOpts{})
	if err != nil {
		return err
	}
	patients := hist.fetchable() / recordsPerPatient
	err = parallel(ctx, 16, patients*revokedPerPatient, func(ctx context.Context, i int) error {
		p := i % patients
		cid, err := hist.grantID(ctx, p, "clinic-c", "TREAT")
		if err != nil {
			return err
		}
		_, err = hist.del("/v1/consents/"+cid, hist.patient(p)).expect(ctx, 200)
		return err
	})
	if err != nil {
		return err
	}
	r, err := interleave(ctx, b.cfg,
		plain("none c32", 32, readOp(clean, clean.reader(), 200)),
		plain("history c32", 32, readOp(hist, hist.reader(), 200)),
		plain("none c1", 1, readOp(clean, clean.reader(), 200)),
		plain("history c1", 1, readOp(hist, hist.reader(), 200)),
	)
	if err != nil {
		return err
	}
	for _, c := range []string{"c32", "c1"} {
		b.rep.add(fmt.Sprintf("fetch when each patient has %d revoked consents to another org, vs none, c=%s", revokedPerPatient, c[1:]),
			fmtRatio(r.ratio("history "+c, "none "+c)), fmt.Sprintf("no history %s", fmtRate(r.rate("none "+c))),
			fmt.Sprintf("%s, p50 %s", fmtRate(r.rate("history "+c)), fmtDur(r.p50("history "+c))), nil)
	}
	return nil
}
