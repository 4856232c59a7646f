package records

import (
	"context"
	"time"
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
