package records

import (
	"context"
	"errors"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// FetchRequest asks for a record's content.
type FetchRequest struct {
	ID               string
	Purpose          string
	BreakGlassReason string
}

// FetchResult is an allowed read: the record's metadata, its content and
// the id of the access entry that was made durable before it was returned.
type FetchResult struct {
	Record   *Record
	Content  []byte
	AccessID string
	Decision policy.Decision
}

// AccessError is returned with a denial so callers can show the access
// entry that recorded it.
type AccessError struct {
	AccessID string
	Err      error
}

func (e *AccessError) Error() string { return e.Err.Error() }
func (e *AccessError) Unwrap() error { return e.Err }

// loadAnchored returns a record and its ledger anchor, checking that the
// stored metadata agrees with the anchor. ENOTFOUND for unknown or
// never-anchored records; EINTEGRITY when store and ledger disagree.
func (s *Service) loadAnchored(ctx context.Context, id string) (*Record, *consent.Anchor, error) {
	if !consent.ValidID(id) {
		return nil, nil, consent.Errorf(consent.EINVALID, "record id %q is invalid", id)
	}
	r, err := s.Store.Record(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	a, err := s.anchor(ctx, r.ID, r.Version)
	if consent.ErrorCode(err) == consent.ENOTFOUND && r.Status == StatusPending {
		return nil, nil, consent.Errorf(consent.ENOTFOUND, "record %q not found", id)
	}
	if err != nil {
		return nil, nil, err
	}
	if a.PatientRef != r.PatientRef || a.Category != r.Category || a.Org != r.Org || a.Hash != r.Hash {
		return r, a, consent.Errorf(consent.EINTEGRITY, "record %s does not match its ledger anchor", r.ID)
	}
	if r.Status == StatusPending {
		r.Status, r.AnchorTx = StatusAnchored, a.Tx
		if block, err := s.Ledger.Ledger.TxBlock(ctx, a.Tx); err == nil {
			r.AnchorBlock = block
			_ = s.Store.MarkAnchored(ctx, r.ID, r.Version, a.Tx, block)
		}
	}
	return r, a, nil
}

// anchor returns a record version's committed anchor, from the cache when
// it has been seen before (anchors never change once committed).
func (s *Service) anchor(ctx context.Context, id string, version int) (*consent.Anchor, error) {
	if a, ok := s.anchors.get(id); ok && a.Version == version {
		return &a, nil
	}
	a, err := s.Ledger.GetAnchor(ctx, id, version)
	if err != nil {
		return nil, err
	}
	s.anchors.put(a.RecordID, *a)
	return a, nil
}

// Fetch runs the read journey: load metadata, load the patient's consents
// for the caller's org, ask the policy, decrypt and check integrity, make
// the access entry durable, and only then return content. Denials are
// logged too. Errors: EINVALID, ENOTFOUND, EFORBIDDEN (as *AccessError),
// EINTEGRITY, EUNAVAILABLE.
func (s *Service) Fetch(ctx context.Context, sub policy.Subject, req FetchRequest) (*FetchResult, error) {
	if !consent.ValidPurpose(req.Purpose) {
		return nil, consent.Errorf(consent.EINVALID, "X-Purpose-Of-Use %q is not a known purpose (TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PATRQT)", req.Purpose)
	}
	if len(req.BreakGlassReason) > 512 {
		return nil, consent.Errorf(consent.EINVALID, "X-Break-Glass-Reason is longer than 512 characters")
	}
	r, a, err := s.loadAnchored(ctx, req.ID)
	if consent.ErrorCode(err) == consent.EINTEGRITY && r != nil {
		return nil, s.logIntegrity(ctx, sub, r, req, err)
	}
	if err != nil {
		return nil, err
	}
	consents, err := s.grantedConsents(ctx, r.PatientRef, sub.Org)
	if err != nil {
		return nil, err
	}
	d := s.decide(ctx, policy.Input{
		Subject: sub, Action: "read", Purpose: req.Purpose, Consents: consents,
		Resource:  policy.Resource{Type: "record", ID: r.ID, Patient: r.PatientRef, Category: r.Category, Org: r.Org},
		Emergency: policy.Emergency{Declared: req.Purpose == consent.PurposeEmergency, Reason: req.BreakGlassReason},
	})
	var content []byte
	if d.Allow {
		if content, err = Open(s.Keys, r, a.Hash); err != nil {
			return nil, s.logIntegrity(ctx, sub, r, req, err)
		}
	}
	if err := s.rememberActor(ctx, sub); err != nil {
		clear(content)
		return nil, err
	}
	entry := s.entry(sub, "read", r, req.Purpose, d)
	if err := s.Access.Log(ctx, entry); err != nil {
		clear(content)
		return nil, unavailable(err, "access log")
	}
	if !d.Allow {
		return nil, &AccessError{AccessID: entry.ID, Err: denied(d)}
	}
	return &FetchResult{Record: r, Content: content, AccessID: entry.ID, Decision: d}, nil
}

// logIntegrity logs a failed integrity check as a denied access and returns
// the integrity error.
func (s *Service) logIntegrity(ctx context.Context, sub policy.Subject, r *Record, req FetchRequest, cause error) error {
	s.logger().ErrorContext(ctx, "record integrity check failed", "record", r.ID, "err", cause)
	d := policy.Decision{Reasons: []string{"record failed its integrity check"}, PolicyDigest: s.Authz.Digest()}
	entry := s.entry(sub, "read", r, req.Purpose, d)
	if err := s.Access.Log(ctx, entry); err != nil {
		s.logger().ErrorContext(ctx, "log integrity failure", "record", r.ID, "err", err)
	}
	return cause
}

// entry builds the access entry for a decision about r.
func (s *Service) entry(sub policy.Subject, action string, r *Record, purpose string, d policy.Decision) consent.AccessEntry {
	reasons := append([]string{}, d.Reasons...)
	for _, o := range d.Obligations {
		reasons = append(reasons, "obligation: "+o)
	}
	return consent.AccessEntry{
		ID: NewID("a-"), Time: s.now(), Action: action, RecordID: r.ID, PatientRef: r.PatientRef,
		ActorRef: sub.Ref, Role: sub.Role, Org: sub.Org, Purpose: purpose,
		Decision: decisionWord(d.Allow), Reasons: reasons, BreakGlass: purpose == consent.PurposeEmergency,
		ConsentID: d.ConsentID, ConsentVersion: d.ConsentVersion, PolicyDigest: s.Authz.Digest(),
	}
}

func decisionWord(allow bool) string {
	if allow {
		return consent.DecisionAllow
	}
	return consent.DecisionDeny
}

// unavailable turns a non-domain error into EUNAVAILABLE.
func unavailable(err error, what string) error {
	var e *consent.Error
	if errors.As(err, &e) {
		return err
	}
	return consent.WrapError(consent.EUNAVAILABLE, err, "%s is unavailable", what)
}
