package records

import (
	"context"
	"errors"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// FetchRequest asks for a record's content.
type FetchRequest struct {
	ID      string
	Purpose string
	// BreakGlassCode and BreakGlassReason declare an emergency (purpose
	// ETREAT): a code from consent.BreakGlassCodes ("other" when empty) and
	// free text of at least MinBreakGlassText characters.
	BreakGlassCode   string
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
// entry that recorded it. Only auditors get one: everyone else gets the
// same ENOTFOUND as for a record that does not exist.
type AccessError struct {
	AccessID string
	Err      error
}

func (e *AccessError) Error() string { return e.Err.Error() }
func (e *AccessError) Unwrap() error { return e.Err }

// recordNotFound is the one answer for a record that does not exist and
// for one the caller may not read, whatever the reason: the reason goes to
// the access log, where the patient and auditors read it.
func recordNotFound(id string) error {
	return consent.Errorf(consent.ENOTFOUND, "record %q not found", id)
}

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
	if !s.anchorNamesPatient(a, r) || a.Category != r.Category || a.Org != r.Org || a.Hash != r.Hash {
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

// anchorNamesPatient reports whether anchor a binds record r to r's
// patient: an anchor carries the record-bound reference
// (Pseudonymizer.RecordRef), or, when written before pairwise references
// existed, the patient's node-internal reference.
func (s *Service) anchorNamesPatient(a *consent.Anchor, r *Record) bool {
	return a.PatientRef == s.Refs.RecordRef(r.PatientRef, r.ID) || a.PatientRef == r.PatientRef
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
// the access entry durable (and, for an emergency read, the patient's
// notice), and only then return content. Denials are logged too. To anyone
// but an auditor a denial looks exactly like an unknown record (ENOTFOUND);
// auditors get EFORBIDDEN as *AccessError with the reasons. Errors:
// EINVALID, ENOTFOUND, EFORBIDDEN, ETOOMANY (break-glass or denial rate
// limit), EINTEGRITY, EUNAVAILABLE.
func (s *Service) Fetch(ctx context.Context, sub policy.Subject, req FetchRequest) (*FetchResult, error) {
	if !consent.ValidPurpose(req.Purpose) {
		return nil, consent.Errorf(consent.EINVALID, "X-Purpose-Of-Use %q is not a known purpose (TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PATRQT)", req.Purpose)
	}
	var bg breakGlass
	if req.Purpose == consent.PurposeEmergency {
		var err error
		if bg, err = checkBreakGlass(req); err != nil {
			return nil, err
		}
	}
	if !consent.ValidID(req.ID) {
		return nil, consent.Errorf(consent.EINVALID, "record id %q is invalid", req.ID)
	}
	if err := s.checkRateLimits(ctx, sub, req.Purpose); err != nil {
		return nil, err
	}
	r, a, err := s.loadAnchored(ctx, req.ID)
	if consent.ErrorCode(err) == consent.EINTEGRITY && r != nil {
		return nil, s.logIntegrity(ctx, sub, r, req, err)
	}
	if consent.ErrorCode(err) == consent.ENOTFOUND {
		s.countRefusal(sub)
		return nil, recordNotFound(req.ID)
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
		Emergency: policy.Emergency{Declared: req.Purpose == consent.PurposeEmergency, Reason: bg.code},
	})
	if d.Allow && req.Purpose == consent.PurposeEmergency {
		d = withEmergencyObligations(d)
	}
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
	entry.BreakGlassCode = bg.code
	if d.Allow && req.Purpose == consent.PurposeEmergency {
		if err := s.notifyBreakGlass(ctx, sub, r, bg, &entry); err != nil {
			clear(content)
			return nil, err
		}
	}
	if err := s.Access.Log(ctx, entry); err != nil {
		clear(content)
		return nil, unavailable(err, "access log")
	}
	if !d.Allow {
		s.countRefusal(sub)
		if sub.Role == policy.RoleAuditor {
			return nil, &AccessError{AccessID: entry.ID, Err: denied(d)}
		}
		return nil, recordNotFound(req.ID)
	}
	return &FetchResult{Record: r, Content: content, AccessID: entry.ID, Decision: d}, nil
}

// checkRateLimits refuses a read before anything is loaded when the actor
// has used up its break-glass reads or its refusals: the answer (429) is
// the same whichever record is asked for.
func (s *Service) checkRateLimits(ctx context.Context, sub policy.Subject, purpose string) error {
	now := s.now()
	key := sub.Role + "/" + sub.Org + "/" + sub.Ref
	if s.DeniedLimit.Remaining(key, now) == 0 {
		s.logger().WarnContext(ctx, "refused-request limit reached", "org", sub.Org, "role", sub.Role)
		return consent.Errorf(consent.ETOOMANY, "too many refused requests: try again later")
	}
	if purpose == consent.PurposeEmergency && !s.BreakGlassLimit.Allow(key, now) {
		s.logger().WarnContext(ctx, "break-glass limit reached", "org", sub.Org, "role", sub.Role)
		return consent.Errorf(consent.ETOOMANY, "break-glass limit reached: too many emergency reads; ask a privacy officer")
	}
	return nil
}

// countRefusal counts a denied read or an unknown record against the
// actor's refusal limit.
func (s *Service) countRefusal(sub policy.Subject) {
	s.DeniedLimit.Allow(sub.Role+"/"+sub.Org+"/"+sub.Ref, s.now())
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
