package records

import (
	"context"
	"mime"
	"strings"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// UploadRequest is a new record from a provider.
type UploadRequest struct {
	Patient     string
	Category    string
	ContentType string
	Content     []byte
}

func (s *Service) maxContent() int {
	if s.MaxContentBytes > 0 {
		return s.MaxContentBytes
	}
	return 8 << 20
}

// validate checks an upload's fields and normalizes its content type.
func (s *Service) validateUpload(req *UploadRequest) error {
	if !consent.ValidID(req.Patient) {
		return consent.Errorf(consent.EINVALID, "patient %q is not a valid id", req.Patient)
	}
	if !consent.ValidCategory(req.Category) {
		return consent.Errorf(consent.EINVALID, "category %q is invalid: use a lowercase token like lab or imaging", req.Category)
	}
	mt, params, err := mime.ParseMediaType(req.ContentType)
	if err != nil || len(req.ContentType) > 128 || !strings.Contains(mt, "/") {
		return consent.Errorf(consent.EINVALID, "contentType %q is not a valid media type", req.ContentType)
	}
	req.ContentType = mime.FormatMediaType(mt, params)
	if len(req.Content) == 0 {
		return consent.Errorf(consent.EINVALID, "record content is empty")
	}
	if len(req.Content) > s.maxContent() {
		return consent.Errorf(consent.ETOOLARGE, "record content is larger than %d bytes", s.maxContent())
	}
	return nil
}

// Upload encrypts and stores a new record for sub's organization and
// anchors its salted hash on the ledger. The record is stored as pending,
// anchored, then marked anchored; if anchoring fails the stored ciphertext
// is deleted, so a failed upload leaves no record, no anchor and no DEK.
// Errors: EINVALID, ETOOLARGE, EFORBIDDEN, EUNAVAILABLE.
func (s *Service) Upload(ctx context.Context, sub policy.Subject, req UploadRequest) (*Record, error) {
	if err := s.validateUpload(&req); err != nil {
		return nil, err
	}
	patientRef := s.Refs.PatientRef(req.Patient)
	// A provider writes only for a patient with a care relationship with
	// its organization: a consent of the patient naming it (see the policy).
	consents, err := s.grantedConsents(ctx, patientRef, sub.Org)
	if err != nil {
		return nil, err
	}
	d := s.decide(ctx, policy.Input{
		Subject: sub, Action: "write", Consents: consents,
		Resource: policy.Resource{Type: "record", Patient: patientRef, Category: req.Category, Org: sub.Org},
	})
	if !d.Allow {
		return nil, denied(d)
	}
	r := &Record{
		ID: NewID("r-"), Version: 1, Patient: req.Patient, PatientRef: patientRef,
		Category: req.Category, ContentType: req.ContentType, Org: sub.Org, AuthorRef: sub.Ref,
		CreatedAt: s.now(), Status: StatusPending,
	}
	if err := Seal(s.Keys, r, req.Content); err != nil {
		return nil, err
	}
	if err := s.rememberAlias(ctx, patientRef, req.Patient); err != nil {
		return nil, err
	}
	if err := s.Store.CreateRecord(ctx, r); err != nil {
		return nil, err
	}
	a, rcpt, err := s.Ledger.Anchor(ctx, consent.Anchor{
		RecordID: r.ID, Version: r.Version, PatientRef: s.Refs.RecordRef(patientRef, r.ID),
		Org: r.Org, Category: r.Category, Hash: r.Hash,
	})
	if err != nil {
		if derr := s.Store.DeleteRecord(context.WithoutCancel(ctx), r.ID, r.Version); derr != nil {
			s.logger().ErrorContext(ctx, "delete unanchored record", "record", r.ID, "err", derr)
		}
		return nil, err
	}
	r.Status, r.AnchorTx, r.AnchorBlock = StatusAnchored, a.Tx, rcpt.Block
	// The upload is an access-log event, made durable before the upload is
	// acknowledged. It follows the anchor, so a failed upload leaves no
	// trace anywhere; if it cannot be logged the caller is told so (503),
	// and the anchored record stays.
	if err := s.logEvent(ctx, sub, policy.ActionWrite, patientRef, d, func(e *consent.AccessEntry) {
		e.RecordID = r.ID
	}); err != nil {
		return nil, err
	}
	if err := s.Store.MarkAnchored(ctx, r.ID, r.Version, a.Tx, rcpt.Block); err != nil {
		// Both durable writes happened: the ciphertext is stored and the
		// anchor committed. The status flag is repaired on read and by
		// RecoverPending at start-up.
		s.logger().WarnContext(ctx, "mark record anchored", "record", r.ID, "err", err)
	}
	return r, nil
}

// RecoverPending settles records left pending by a crash: those whose anchor
// committed are marked anchored, the rest are deleted. Run it at start-up.
func (s *Service) RecoverPending(ctx context.Context) (anchored, deleted int, err error) {
	pending, err := s.Store.PendingRecords(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, r := range pending {
		a, err := s.Ledger.GetAnchor(ctx, r.ID, r.Version)
		switch consent.ErrorCode(err) {
		case "":
			block, berr := s.Ledger.Ledger.TxBlock(ctx, a.Tx)
			if berr != nil {
				return anchored, deleted, berr
			}
			if err := s.Store.MarkAnchored(ctx, r.ID, r.Version, a.Tx, block); err != nil {
				return anchored, deleted, err
			}
			anchored++
		case consent.ENOTFOUND:
			if err := s.Store.DeleteRecord(ctx, r.ID, r.Version); err != nil {
				return anchored, deleted, err
			}
			deleted++
		default:
			return anchored, deleted, err
		}
	}
	return anchored, deleted, nil
}
