package records

import (
	"context"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// MaxPageLimit is the largest page List serves.
const MaxPageLimit = 1000

// RecordPage is one page of a patient's records as List shows them to a
// caller: metadata only, never content.
type RecordPage struct {
	// Records are the records of the page the caller may see, ordered by
	// id; Ciphertext, WrappedDEK and Salt are empty.
	Records []*Record
	// Next, when set, is the after of the next page: the id of the last
	// record of this page. It is set only when the caller may see at least
	// one more record, so it never leads to an empty page (unless records
	// are deleted in between) and never hints at records the caller may
	// not see.
	Next string
}

// List returns a page of the metadata of a patient's records that sub may
// see (never content), ordered by id, after the cursor after; limit 0
// means DefaultPageLimit, at most MaxPageLimit.
//
// It first decides what sub could see at all (listScope): the patient and
// an organization holding an active consent of the patient list every
// record; any other caller at most the records its own organization
// authored, through the store's (patientRef, org) index; a caller who
// could see nothing gets an empty page without the store being asked for
// any record. Every record listed then passes the policy (action "list")
// on its own. List reads store pages until its page is full and it has
// seen one more record the caller may see (then Next is set), or until the
// store has no more records of the patient: a page is full whenever
// records the caller may see remain, however many it may not see are
// interleaved. Errors: EINVALID, and the store's and consent source's.
func (s *Service) List(ctx context.Context, sub policy.Subject, patient, after string, limit int) (*RecordPage, error) {
	if !consent.ValidID(patient) {
		return nil, consent.Errorf(consent.EINVALID, "patient %q is not a valid id", patient)
	}
	if after != "" && !consent.ValidID(after) {
		return nil, consent.Errorf(consent.EINVALID, "cursor %q is invalid", after)
	}
	if limit < 0 || limit > MaxPageLimit {
		return nil, consent.Errorf(consent.EINVALID, "limit must be between 1 and %d", MaxPageLimit)
	}
	if limit == 0 {
		limit = DefaultPageLimit
	}
	ref := s.Refs.PatientRef(patient)
	page := &RecordPage{Records: []*Record{}}
	scope, err := s.listScope(ctx, sub, ref)
	if err != nil {
		return nil, err
	}
	if scope.none {
		return page, nil
	}
	// One record more than the page, so a listing where the caller sees
	// everything knows in one read whether a next page exists.
	f := RecordFilter{PatientRef: ref, Org: scope.org, After: after, Limit: limit + 1}
	if err := s.fillPage(ctx, sub, scope, f, limit, page); err != nil {
		return nil, err
	}
	// Who listed whose records is in the patient's log (once per listing,
	// on its first page, made durable before the answer; the patient's own
	// listings are no one else's business, and a caller who may see nothing
	// learns nothing). A listing that fails leaves no entry.
	if sub.PatientRef != ref && after == "" {
		d := policy.Decision{Allow: true, Reasons: []string{"listed the metadata of the records it may see"}, PolicyDigest: s.Authz.Digest()}
		if err := s.logEvent(ctx, sub, policy.ActionList, ref, d, nil); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// fillPage reads store pages from f until page holds limit records sub may
// list and one more is known to exist (then page.Next is set), or the
// store has no more.
func (s *Service) fillPage(ctx context.Context, sub policy.Subject, scope listScope, f RecordFilter, limit int, page *RecordPage) error {
	for {
		recs, err := s.Store.Records(ctx, f)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !s.mayList(ctx, sub, scope.consents, r) {
				continue
			}
			if len(page.Records) == limit {
				page.Next = page.Records[limit-1].ID
				return nil
			}
			page.Records = append(page.Records, r)
		}
		if len(recs) < f.Limit {
			return nil // the store has no more
		}
		f.After = recs[len(recs)-1].ID
	}
}

// listScope is what a caller could see of one patient's records at all.
type listScope struct {
	none     bool              // nothing: do not read the store
	org      string            // only records this organization authored, when set
	consents []consent.Consent // the caller's org's active consents, for the policy
}

// listScope decides, before any record is read, which of patientRef's
// records sub could see: all of them for the patient themself or an
// organization holding an active consent of the patient (the policy then
// picks per record); else those authored by sub's organization, if the
// policy lets sub list a record of this patient its organization authored
// (asked once, about a record with no id or category); else none.
func (s *Service) listScope(ctx context.Context, sub policy.Subject, patientRef string) (listScope, error) {
	if sub.PatientRef != "" && sub.PatientRef == patientRef {
		return listScope{}, nil
	}
	consents, err := s.grantedConsents(ctx, patientRef, sub.Org)
	if err != nil {
		return listScope{}, err
	}
	if len(consents) > 0 {
		return listScope{consents: consents}, nil
	}
	if sub.Org == "" {
		return listScope{none: true}, nil
	}
	d := s.decide(ctx, policy.Input{
		Subject: sub, Action: policy.ActionList,
		Resource: policy.Resource{Type: "record", Patient: patientRef, Org: sub.Org},
	})
	if !d.Allow {
		return listScope{none: true}, nil
	}
	return listScope{org: sub.Org}, nil
}

// mayList asks the policy whether sub may see r in a listing.
func (s *Service) mayList(ctx context.Context, sub policy.Subject, consents []consent.Consent, r *Record) bool {
	d := s.decide(ctx, policy.Input{
		Subject: sub, Action: policy.ActionList, Consents: consents,
		Resource: policy.Resource{Type: "record", ID: r.ID, Patient: r.PatientRef, Category: r.Category, Org: r.Org},
	})
	return d.Allow
}
