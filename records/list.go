package records

import (
	"context"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// List returns the metadata of a patient's records that sub may see (never
// content). Errors: EINVALID.
func (s *Service) List(ctx context.Context, sub policy.Subject, patient, after string, limit int) ([]*Record, error) {
	if !consent.ValidID(patient) {
		return nil, consent.Errorf(consent.EINVALID, "patient %q is not a valid id", patient)
	}
	if after != "" && !consent.ValidID(after) {
		return nil, consent.Errorf(consent.EINVALID, "cursor %q is invalid", after)
	}
	if limit < 0 || limit > 1000 {
		return nil, consent.Errorf(consent.EINVALID, "limit must be between 1 and 1000")
	}
	ref := s.Refs.PatientRef(patient)
	recs, err := s.Store.Records(ctx, RecordFilter{PatientRef: ref, After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	consents, err := s.grantedConsents(ctx, ref, sub.Org)
	if err != nil {
		return nil, err
	}
	out := make([]*Record, 0, len(recs))
	for _, r := range recs {
		d := s.decide(ctx, policy.Input{
			Subject: sub, Action: "list", Consents: consents,
			Resource: policy.Resource{Type: "record", ID: r.ID, Patient: r.PatientRef, Category: r.Category, Org: r.Org},
		})
		if d.Allow {
			out = append(out, r)
		}
	}
	return out, nil
}
