package records

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// GrantRequest is a patient's new consent, as the API receives it.
type GrantRequest struct {
	Grantee    GranteeView `json:"grantee"`
	Categories []string    `json:"categories"`
	Records    []string    `json:"records,omitempty"`
	Purposes   []string    `json:"purposes"`
	ValidUntil *time.Time  `json:"validUntil,omitempty"`
}

// GranteeView names a grantee by org and, optionally, subject id.
type GranteeView struct {
	Org     string `json:"org"`
	Subject string `json:"subject,omitempty"`
}

// LedgerRef says where a change was committed.
type LedgerRef struct {
	Tx    string `json:"tx"`
	Block uint64 `json:"block"`
}

// ConsentView is a consent as the API shows it: pseudonyms resolved for
// those allowed to see the consent.
type ConsentView struct {
	ID         string      `json:"id"`
	Status     string      `json:"status"`
	Patient    string      `json:"patient,omitempty"`
	Grantee    GranteeView `json:"grantee"`
	Categories []string    `json:"categories"`
	Records    []string    `json:"records"`
	Purposes   []string    `json:"purposes"`
	ValidFrom  time.Time   `json:"validFrom"`
	ValidUntil *time.Time  `json:"validUntil,omitempty"`
	Version    int         `json:"version"`
	CreatedAt  time.Time   `json:"createdAt"`
	UpdatedAt  time.Time   `json:"updatedAt"`
	Ledger     LedgerRef   `json:"ledger"`
}

// Grant records a consent from patient sub. Errors: EFORBIDDEN (not a
// patient), EINVALID (scope, purposes, grantee, validity), EUNAVAILABLE.
func (s *Service) Grant(ctx context.Context, sub policy.Subject, req GrantRequest) (*ConsentView, error) {
	d := s.decide(ctx, policy.Input{Subject: sub, Action: "grant",
		Resource: policy.Resource{Type: "consent", Patient: sub.PatientRef, Org: req.Grantee.Org}})
	if !d.Allow {
		return nil, denied(d)
	}
	if req.Grantee.Subject != "" && !consent.ValidID(req.Grantee.Subject) {
		return nil, consent.Errorf(consent.EINVALID, "grantee.subject %q is not a valid id", req.Grantee.Subject)
	}
	if !consent.ValidID(req.Grantee.Org) {
		return nil, consent.Errorf(consent.EINVALID, "grantee organization %q is not a valid id", req.Grantee.Org)
	}
	if err := s.checkGrant(ctx, sub, &req); err != nil {
		return nil, err
	}
	pair := s.Refs.Pair(sub.PatientRef, req.Grantee.Org)
	args := consent.GrantConsentArgs{
		ID: NewID("c-"), PatientRef: pair, Grantee: consent.Grantee{Org: req.Grantee.Org},
		Categories: req.Categories, Records: req.Records, Purposes: req.Purposes, ValidUntil: req.ValidUntil,
	}
	if args.Categories == nil {
		args.Categories = []string{}
	}
	if req.Grantee.Subject != "" {
		args.Grantee.SubjectRef = s.Refs.SubjectRef(req.Grantee.Subject)
		if err := s.rememberAlias(ctx, args.Grantee.SubjectRef, req.Grantee.Subject); err != nil {
			return nil, err
		}
	}
	if err := s.rememberAlias(ctx, pair, sub.ID); err != nil {
		return nil, err
	}
	// The attempt is logged before it is made, as reads are.
	if err := s.logEvent(ctx, sub, policy.ActionGrant, sub.PatientRef, d, func(e *consent.AccessEntry) {
		e.ConsentID, e.ConsentVersion, e.Org = args.ID, 1, req.Grantee.Org
	}); err != nil {
		return nil, err
	}
	c, rcpt, err := s.Ledger.Grant(ctx, args)
	if err != nil {
		return nil, err
	}
	if err := s.cacheConsent(ctx, c); err != nil {
		return nil, err
	}
	return s.view(ctx, c, &rcpt)
}

// Revoke revokes consent id on behalf of patient sub. Errors: ENOTFOUND,
// EFORBIDDEN (not the owner), ECONFLICT (already revoked), EUNAVAILABLE.
//
// A consent that is not the caller's answers ENOTFOUND, exactly as an
// unknown one does: nobody learns that a consent id exists by trying to
// revoke it.
func (s *Service) Revoke(ctx context.Context, sub policy.Subject, id string) (*ConsentView, error) {
	if !consent.ValidID(id) {
		return nil, consent.Errorf(consent.EINVALID, "consent id %q is invalid", id)
	}
	c, err := s.Ledger.Consent(ctx, id)
	if consent.ErrorCode(err) == consent.ENOTFOUND {
		return nil, consentNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	d := s.decide(ctx, policy.Input{Subject: sub, Action: "revoke",
		Resource: policy.Resource{Type: "consent", ID: id, Patient: s.consentPatient(sub, c), Org: c.Grantee.Org}})
	if !d.Allow {
		return nil, consentNotFound(id)
	}
	if err := s.logEvent(ctx, sub, policy.ActionRevoke, sub.PatientRef, d, func(e *consent.AccessEntry) {
		e.ConsentID, e.ConsentVersion, e.Org = c.ID, c.Version+1, c.Grantee.Org
	}); err != nil {
		return nil, err
	}
	c, rcpt, err := s.Ledger.Revoke(ctx, id, s.Refs.Pair(sub.PatientRef, c.Grantee.Org))
	if err != nil {
		return nil, err
	}
	if err := s.cacheConsent(ctx, c); err != nil {
		return nil, err
	}
	return s.view(ctx, c, &rcpt)
}

// Consent returns one consent if sub may read it (its patient or a member
// of the grantee org). ENOTFOUND otherwise, so ids are not probed.
func (s *Service) Consent(ctx context.Context, sub policy.Subject, id string) (*ConsentView, error) {
	if !consent.ValidID(id) {
		return nil, consent.Errorf(consent.EINVALID, "consent id %q is invalid", id)
	}
	c, err := s.Ledger.Consent(ctx, id)
	if consent.ErrorCode(err) == consent.ENOTFOUND {
		return nil, consentNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if !s.mayReadConsent(ctx, sub, c) {
		return nil, consentNotFound(id)
	}
	return s.view(ctx, c, nil)
}

// consentNotFound is the one answer for a consent that does not exist and
// one the caller may not see.
func consentNotFound(id string) error {
	return consent.Errorf(consent.ENOTFOUND, "consent %q not found", id)
}

// consentPatient returns the reference the policy compares with the
// subject's: a patient's own node-internal reference when the consent is
// theirs (its pairwise reference is theirs with its grantee), otherwise the
// consent's own reference, which matches no subject.
func (s *Service) consentPatient(sub policy.Subject, c *consent.Consent) string {
	if sub.PatientRef != "" && c.PatientRef == s.Refs.Pair(sub.PatientRef, c.Grantee.Org) {
		return sub.PatientRef
	}
	return c.PatientRef
}

// ListConsents returns the consents sub may read: a patient's own, or those
// granted to the caller's org.
func (s *Service) ListConsents(ctx context.Context, sub policy.Subject) ([]*ConsentView, error) {
	var all []consent.Consent
	switch {
	case sub.Role == policy.RolePatient && sub.PatientRef != "":
		// One pairwise reference per organization: a patient's consents
		// are not linked to each other on the ledger.
		refs, err := s.relationshipRefs(ctx, sub.PatientRef)
		if err != nil {
			return nil, err
		}
		for ref, org := range refs {
			if org == "" {
				continue
			}
			cs, err := s.Ledger.Consents(ctx, consent.ConsentFilter{PatientRef: ref})
			if err != nil {
				return nil, err
			}
			all = append(all, cs...)
		}
		slices.SortFunc(all, func(a, b consent.Consent) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
		})
	case sub.Org != "":
		var err error
		if all, err = s.Ledger.Consents(ctx, consent.ConsentFilter{GranteeOrg: sub.Org}); err != nil {
			return nil, err
		}
	default:
		return nil, denied(s.decide(ctx, policy.Input{Subject: sub, Action: "read_consent", Resource: policy.Resource{Type: "consent"}}))
	}
	out := make([]*ConsentView, 0, len(all))
	for i := range all {
		if !s.mayReadConsent(ctx, sub, &all[i]) {
			continue
		}
		v, err := s.view(ctx, &all[i], nil)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Service) mayReadConsent(ctx context.Context, sub policy.Subject, c *consent.Consent) bool {
	return s.decide(ctx, policy.Input{Subject: sub, Action: "read_consent",
		Resource: policy.Resource{Type: "consent", ID: c.ID, Patient: s.consentPatient(sub, c), Org: c.Grantee.Org}}).Allow
}

// view resolves a consent's pseudonyms and ledger position.
func (s *Service) view(ctx context.Context, c *consent.Consent, rcpt *consent.Receipt) (*ConsentView, error) {
	refs := []string{c.PatientRef}
	if c.Grantee.SubjectRef != "" {
		refs = append(refs, c.Grantee.SubjectRef)
	}
	names, err := s.Store.Aliases(ctx, refs)
	if err != nil {
		return nil, err
	}
	v := &ConsentView{
		ID: c.ID, Status: c.Status, Patient: names[c.PatientRef],
		Grantee:    GranteeView{Org: c.Grantee.Org, Subject: names[c.Grantee.SubjectRef]},
		Categories: c.Categories, Records: c.Records, Purposes: c.Purposes,
		ValidFrom: c.ValidFrom, ValidUntil: c.ValidUntil, Version: c.Version,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Ledger: LedgerRef{Tx: c.Tx},
	}
	if c.Status == consent.StatusActive && c.ValidUntil != nil && !c.ActiveAt(s.now()) {
		v.Status = "expired"
	}
	if rcpt != nil {
		v.Ledger.Block = rcpt.Block
	} else if b, err := s.Ledger.Ledger.TxBlock(ctx, c.Tx); err == nil {
		v.Ledger.Block = b
	}
	return v, nil
}

// cacheConsent writes a committed consent to the read model, if any, before
// the caller is answered: a revoke acknowledged by this node denies this
// node's very next read. If the write fails the change is still committed;
// the error tells the caller to retry, and the event listener catches up.
func (s *Service) cacheConsent(ctx context.Context, c *consent.Consent) error {
	if s.ConsentCache == nil {
		return nil
	}
	if err := s.ConsentCache.SaveConsent(ctx, *c); err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "consent committed on the ledger but the read model was not updated; retry the read later")
	}
	return nil
}
