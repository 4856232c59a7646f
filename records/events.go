package records

import (
	"context"
	"fmt"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// DefaultMaxConsentValidity is how long a consent may run when
// Service.MaxConsentValidity is not set: five years.
const DefaultMaxConsentValidity = 5 * 365 * 24 * time.Hour

// logEvent makes an access-log entry durable for something other than a
// read — an upload, a listing, a consent change, a read of the log — so
// the patient and auditors see who did what to whose data, and when.
// Nothing is answered when it cannot be logged (EUNAVAILABLE).
func (s *Service) logEvent(ctx context.Context, sub policy.Subject, action, patientRef string, d policy.Decision, set func(*consent.AccessEntry)) error {
	if patientRef == "" {
		return nil
	}
	if err := s.rememberActor(ctx, sub); err != nil {
		return err
	}
	e := s.entry(sub, action, &Record{PatientRef: patientRef}, "", d)
	e.BreakGlass = false
	if set != nil {
		set(&e)
	}
	if err := s.Access.Log(ctx, e); err != nil {
		return unavailable(err, "access log")
	}
	return nil
}

// checkGrant applies the rules a consent must meet beyond the contract's:
// the records it names are the granting patient's own, and its validity
// is bounded (a grant without an end runs for the maximum). EINVALID
// otherwise; an unknown record and another patient's answer alike.
func (s *Service) checkGrant(ctx context.Context, sub policy.Subject, req *GrantRequest) error {
	for _, id := range req.Records {
		if !consent.ValidID(id) {
			return consent.Errorf(consent.EINVALID, "record id %q is invalid", id)
		}
		r, err := s.Store.Record(ctx, id)
		switch {
		case consent.ErrorCode(err) == consent.ENOTFOUND || (err == nil && r.PatientRef != sub.PatientRef):
			return consent.Errorf(consent.EINVALID, "record %q is not one of your records", id)
		case err != nil:
			return err
		}
	}
	limit := s.MaxConsentValidity
	if limit <= 0 {
		limit = DefaultMaxConsentValidity
	}
	latest := s.now().Add(limit)
	if req.ValidUntil == nil {
		req.ValidUntil = &latest
		return nil
	}
	if req.ValidUntil.After(latest) {
		return consent.Errorf(consent.EINVALID, "validUntil may be at most %s ahead (until %s)",
			humanDuration(limit), latest.Format(time.RFC3339))
	}
	return nil
}

// humanDuration renders d in days or hours.
func humanDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return d.String()
}
