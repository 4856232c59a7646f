package records

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/medshare/medshare/consent"
)

// Notice kinds.
const (
	// NoticeBreakGlass tells a patient that someone read their records in
	// an emergency (break-glass).
	NoticeBreakGlass = "break-glass"
)

// Notice is a durable notification for a patient, kept off the ledger in
// the document store: today one per break-glass read, the obligation
// "notify-patient" made real. The free text a clinician typed is kept only
// here, sealed like record content (a fresh DEK wrapped by the KEK, AAD
// binding the notice id and patientRef), so it can be erased; the access
// entry on the ledger carries only its coded reason and a salted
// commitment (NoteCommit).
type Notice struct {
	ID         string    `json:"id" bson:"id"` // time-ordered: see NewNoticeID
	PatientRef string    `json:"patientRef" bson:"patientRef"`
	Time       time.Time `json:"time" bson:"time"`
	Kind       string    `json:"kind" bson:"kind"`
	AccessID   string    `json:"accessId" bson:"accessId"`
	RecordID   string    `json:"recordId,omitempty" bson:"recordId,omitempty"`
	Org        string    `json:"org" bson:"org"`
	ActorRef   string    `json:"actorRef" bson:"actorRef"`
	ReasonCode string    `json:"reasonCode" bson:"reasonCode"`

	// The free-text reason: nonce ‖ AES-256-GCM(DEK, text), the DEK
	// wrapped by KEK version KEKVersion; Salt is the commitment's salt.
	Text       []byte `json:"text,omitempty" bson:"text,omitempty"`
	WrappedDEK []byte `json:"wrappedDek,omitempty" bson:"wrappedDek,omitempty"`
	KEKVersion int    `json:"kekVersion,omitempty" bson:"kekVersion,omitempty"`
	Salt       []byte `json:"salt,omitempty" bson:"salt,omitempty"`
}

// NoticeFilter selects one patient's notices in id order (which is time
// order). After is the id of the last notice of the previous page; Limit
// 0 means 100.
type NoticeFilter struct {
	PatientRef string
	After      string
	Limit      int
}

// PageLimit validates f and returns its effective limit: EINVALID without
// a patient or with a negative limit.
func (f NoticeFilter) PageLimit() (int, error) {
	switch {
	case f.PatientRef == "":
		return 0, consent.Errorf(consent.EINVALID, "notice filter needs a patient")
	case f.Limit < 0:
		return 0, consent.Errorf(consent.EINVALID, "notice filter limit %d is negative", f.Limit)
	case f.Limit == 0:
		return DefaultPageLimit, nil
	}
	return f.Limit, nil
}

// NoticeStore keeps patients' notices. Every Store implements it.
type NoticeStore interface {
	// SaveNotice stores n. Saving the same id again is not an error
	// (idempotent); EINVALID without an id or patientRef.
	SaveNotice(ctx context.Context, n *Notice) error
	// Notices returns a page of one patient's notices, ordered by id.
	// EINVALID without a patient or with a negative limit.
	Notices(ctx context.Context, f NoticeFilter) ([]*Notice, error)
}

// NewNoticeID returns a notice id that sorts by t: "n-", t as
// 20060102T150405.000000000Z, "-", then random text.
func NewNoticeID(t time.Time) string {
	return NewID("n-" + t.UTC().Format("20060102T150405.000000000Z") + "-")
}

// noticeAAD binds a notice's sealed text to the notice and its patient.
func noticeAAD(n *Notice) []byte {
	return lengthPrefixed("medshare/notice-text/v1", n.ID, n.PatientRef, fmt.Sprint(n.KEKVersion))
}

// sealNoticeText encrypts text into n under a fresh DEK wrapped by the
// ring's current KEK, and returns the salted commitment to the text that
// the access entry carries: base64url(sha256(salt‖text)).
func sealNoticeText(ring KeyRing, n *Notice, text string) (string, error) {
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return "", consent.WrapError(consent.EINTERNAL, err, "generate DEK")
	}
	defer clear(dek)
	a, err := newGCM(dek)
	if err != nil {
		return "", err
	}
	n.KEKVersion = ring.Current()
	if n.Text, err = seal(a, []byte(text), noticeAAD(n)); err != nil {
		return "", err
	}
	if n.WrappedDEK, err = ring.Wrap(n.KEKVersion, dek, noticeAAD(n)); err != nil {
		return "", fmt.Errorf("wrap notice DEK: %w", err)
	}
	n.Salt = make([]byte, 16)
	if _, err := rand.Read(n.Salt); err != nil {
		return "", consent.WrapError(consent.EINTERNAL, err, "generate salt")
	}
	return ContentHash(n.Salt, []byte(text)), nil
}

// openNoticeText decrypts n's free text. EINTEGRITY when it does not open.
func openNoticeText(ring KeyRing, n *Notice) (string, error) {
	if len(n.Text) == 0 {
		return "", nil
	}
	dek, err := ring.Unwrap(n.KEKVersion, n.WrappedDEK, noticeAAD(n))
	if err != nil {
		return "", err
	}
	defer clear(dek)
	a, err := newGCM(dek)
	if err != nil {
		return "", err
	}
	plain, err := open(a, n.Text, noticeAAD(n))
	if err != nil {
		return "", consent.WrapError(consent.EINTEGRITY, err, "notice %s failed its integrity check", n.ID)
	}
	return string(plain), nil
}
