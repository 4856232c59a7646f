package records

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// Claim limits.
const (
	maxClaimItems = 100
	maxValueBytes = 4096
)

// ClaimItem is one fact a claim cites: the value at a JSON Pointer in a record.
type ClaimItem struct {
	RecordID string          `json:"recordId"`
	Path     string          `json:"path"`
	Value    json.RawMessage `json:"value"`
}

// ClaimRequest asks whether each cited fact is in the anchored records.
type ClaimRequest struct {
	ClaimID string      `json:"claimId"`
	Patient string      `json:"patient"`
	Items   []ClaimItem `json:"items"`
}

// ItemResult is the yes/no answer for one item, with a reason that never
// reveals record content.
type ItemResult struct {
	RecordID string `json:"recordId"`
	Path     string `json:"path"`
	OK       bool   `json:"ok"`
	Reason   string `json:"reason"`
}

// AnchorRef names the ledger anchor a verification relied on.
type AnchorRef struct {
	RecordID string `json:"recordId"`
	Version  int    `json:"version"`
	Hash     string `json:"hash"`
	Tx       string `json:"tx"`
}

// ClaimResult is the answer to a claim verification.
type ClaimResult struct {
	ClaimID  string       `json:"claimId"`
	Verified bool         `json:"verified"`
	Items    []ItemResult `json:"items"`
	Receipt  string       `json:"receipt"`
}

// ReceiptPayload is what the receipt JWS signs. An insurer checks it
// offline against the published JWKS.
type ReceiptPayload struct {
	Type       string       `json:"typ"`
	ClaimID    string       `json:"claimId"`
	PatientRef string       `json:"patientRef"`
	Insurer    string       `json:"insurer"`
	Verified   bool         `json:"verified"`
	Items      []ItemResult `json:"items"`
	Anchors    []AnchorRef  `json:"anchors"`
	AccessIDs  []string     `json:"accessIds"`
	PolicyHash string       `json:"policyDigest"`
	Time       string       `json:"time"`
}

func validateClaim(req *ClaimRequest) error {
	if !consent.ValidID(req.ClaimID) {
		return consent.Errorf(consent.EINVALID, "claimId %q is invalid", req.ClaimID)
	}
	if !consent.ValidID(req.Patient) {
		return consent.Errorf(consent.EINVALID, "patient %q is not a valid id", req.Patient)
	}
	if len(req.Items) == 0 || len(req.Items) > maxClaimItems {
		return consent.Errorf(consent.EINVALID, "a claim cites 1 to %d items", maxClaimItems)
	}
	for i, it := range req.Items {
		if !consent.ValidID(it.RecordID) {
			return consent.Errorf(consent.EINVALID, "items[%d].recordId %q is invalid", i, it.RecordID)
		}
		if _, err := ParsePointer(it.Path); err != nil {
			return consent.Errorf(consent.EINVALID, "items[%d].path: %s", i, consent.ErrorMessage(err))
		}
		if len(it.Value) == 0 || len(it.Value) > maxValueBytes {
			return consent.Errorf(consent.EINVALID, "items[%d].value must be a JSON value of at most %d bytes", i, maxValueBytes)
		}
		if _, err := decodeJSON(it.Value); err != nil {
			return consent.Errorf(consent.EINVALID, "items[%d].value is not valid JSON", i)
		}
	}
	return nil
}

// claimRecord is a record a claim cites, once loaded and authorized.
type claimRecord struct {
	rec    *Record
	anchor *consent.Anchor
	doc    any
	docErr string
}

// VerifyClaim answers, per item, whether the value at the item's path in
// the anchored record equals the claimed value. It needs an active HPAYMT
// consent covering every cited record; each record's verification is
// logged before answering. The answer never contains record content.
// Errors: EINVALID, EFORBIDDEN (as *AccessError), EINTEGRITY, EUNAVAILABLE.
func (s *Service) VerifyClaim(ctx context.Context, sub policy.Subject, req ClaimRequest) (*ClaimResult, error) {
	if err := validateClaim(&req); err != nil {
		return nil, err
	}
	patientRef := s.Refs.PatientRef(req.Patient)
	consents, err := s.grantedConsents(ctx, patientRef, sub.Org)
	if err != nil {
		return nil, err
	}
	loaded := map[string]*claimRecord{}
	var order []string
	for _, it := range req.Items {
		if _, seen := loaded[it.RecordID]; seen {
			continue
		}
		r, a, err := s.loadAnchored(ctx, it.RecordID)
		switch {
		case consent.ErrorCode(err) == consent.ENOTFOUND || (err == nil && r.PatientRef != patientRef):
			loaded[it.RecordID] = nil // answered "not found for this patient", never revealing more
			continue
		case err != nil:
			return nil, err
		}
		loaded[it.RecordID] = &claimRecord{rec: r, anchor: a}
		order = append(order, it.RecordID)
	}
	if err := s.rememberActor(ctx, sub); err != nil {
		return nil, err
	}
	// Authorize every cited record, up to the first denial, and log those
	// decisions before opening any.
	var (
		accessIDs []string
		entries   []consent.AccessEntry
		refused   *policy.Decision
	)
	for _, id := range order {
		cr := loaded[id]
		d := s.decide(ctx, policy.Input{
			Subject: sub, Action: "verify_claim", Purpose: consent.PurposePayment, Consents: consents,
			Resource: policy.Resource{Type: "record", ID: id, Patient: patientRef, Category: cr.rec.Category, Org: cr.rec.Org},
		})
		entries = append(entries, s.entry(sub, "verify_claim", cr.rec, consent.PurposePayment, d))
		if !d.Allow {
			refused = &d
			break
		}
		accessIDs = append(accessIDs, entries[len(entries)-1].ID)
	}
	if err := s.logAll(ctx, entries); err != nil {
		return nil, unavailable(err, "access log")
	}
	if refused != nil {
		return nil, &AccessError{AccessID: entries[len(entries)-1].ID, Err: denied(*refused)}
	}
	if len(order) == 0 {
		d := s.decide(ctx, policy.Input{Subject: sub, Action: "verify_claim", Purpose: consent.PurposePayment, Consents: consents,
			Resource: policy.Resource{Type: "record", Patient: patientRef}})
		if !d.Allow {
			return nil, denied(d)
		}
	}
	for _, id := range order {
		cr := loaded[id]
		plain, err := Open(s.Keys, cr.rec, cr.anchor.Hash)
		if err != nil {
			return nil, err
		}
		if cr.doc, err = decodeJSON(plain); err != nil {
			cr.docErr = "record content is not JSON"
		}
		clear(plain)
	}
	return s.answerClaim(req, patientRef, sub, loaded, order, accessIDs)
}

// logAll makes every entry durable, logging them concurrently so that a
// group-committing log (the journal, the embedded ledger) can share one
// fsync among them. It returns the first failure.
func (s *Service) logAll(ctx context.Context, entries []consent.AccessEntry) error {
	if len(entries) == 1 {
		return s.Access.Log(ctx, entries[0])
	}
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Go(func() { errs[i] = s.Access.Log(ctx, e) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// answerClaim evaluates each item and signs the receipt.
func (s *Service) answerClaim(req ClaimRequest, patientRef string, sub policy.Subject, loaded map[string]*claimRecord, order, accessIDs []string) (*ClaimResult, error) {
	res := &ClaimResult{ClaimID: req.ClaimID, Verified: true, Items: make([]ItemResult, 0, len(req.Items))}
	for _, it := range req.Items {
		ir := ItemResult{RecordID: it.RecordID, Path: it.Path}
		ir.OK, ir.Reason = evaluateItem(loaded[it.RecordID], it)
		res.Verified = res.Verified && ir.OK
		res.Items = append(res.Items, ir)
	}
	anchors := make([]AnchorRef, 0, len(order))
	for _, id := range order {
		a := loaded[id].anchor
		anchors = append(anchors, AnchorRef{RecordID: a.RecordID, Version: a.Version, Hash: a.Hash, Tx: a.Tx})
	}
	payload, err := json.Marshal(ReceiptPayload{
		Type: "medshare-claim-receipt", ClaimID: req.ClaimID, PatientRef: patientRef, Insurer: sub.Org,
		Verified: res.Verified, Items: res.Items, Anchors: anchors, AccessIDs: accessIDs,
		PolicyHash: s.Authz.Digest(), Time: s.now().Format("2006-01-02T15:04:05.000Z07:00"),
	})
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "encode receipt")
	}
	if res.Receipt, err = s.Receipts.Sign(payload); err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "sign receipt")
	}
	return res, nil
}

// evaluateItem answers one item against its loaded record.
func evaluateItem(cr *claimRecord, it ClaimItem) (bool, string) {
	if cr == nil {
		return false, "record not found for this patient"
	}
	if cr.docErr != "" {
		return false, cr.docErr
	}
	toks, _ := ParsePointer(it.Path) // validated in validateClaim
	got, ok := resolve(cr.doc, toks)
	if !ok {
		return false, "path not found in the record"
	}
	want, _ := decodeJSON(it.Value)
	if !jsonEqual(got, want) {
		return false, "value does not match the record"
	}
	return true, "value matches the anchored record"
}
