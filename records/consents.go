package records

import (
	"context"
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
	args := consent.GrantConsentArgs{
		ID: NewID("c-"), PatientRef: sub.PatientRef, Grantee: consent.Grantee{Org: req.Grantee.Org},
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
	if err := s.rememberAlias(ctx, sub.PatientRef, sub.ID); err != nil {
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
func (s *Service) Revoke(ctx context.Context, sub policy.Subject, id string) (*ConsentView, error) {
	c, err := s.Ledger.Consent(ctx, id)
	if err != nil {
		return nil, err
	}
	d := s.decide(ctx, policy.Input{Subject: sub, Action: "revoke",
		Resource: policy.Resource{Type: "consent", ID: id, Patient: c.PatientRef, Org: c.Grantee.Org}})
	if !d.Allow {
		return nil, denied(d)
	}
	c, rcpt, err := s.Ledger.Revoke(ctx, id, sub.PatientRef)
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
	c, err := s.Ledger.Consent(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.mayReadConsent(ctx, sub, c) {
		return nil, consent.Errorf(consent.ENOTFOUND, "consent %q not found", id)
	}
	return s.view(ctx, c, nil)
}

// ListConsents returns the consents sub may read: a patient's own, or those
// granted to the caller's org.
func (s *Service) ListConsents(ctx context.Context, sub policy.Subject) ([]*ConsentView, error) {
	f := consent.ConsentFilter{GranteeOrg: sub.Org}
	if sub.Role == "patient" {
		f = consent.ConsentFilter{PatientRef: sub.PatientRef}
	}
	if f.PatientRef == "" && f.GranteeOrg == "" {
		return nil, denied(s.decide(ctx, policy.Input{Subject: sub, Action: "read_consent", Resource: policy.Resource{Type: "consent"}}))
	}
	all, err := s.Ledger.Consents(ctx, f)
	if err != nil {
		return nil, err
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
		Resource: policy.Resource{Type: "consent", ID: c.ID, Patient: c.PatientRef, Org: c.Grantee.Org}}).Allow
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
