// Package records holds medshare's record domain: records under envelope
// encryption, their anchors on the ledger, the read path that logs every
// access before content leaves, and claim verification. It defines the
// Store and KeyRing interfaces its integrations implement.
package records

import (
	"context"
	"time"

	"github.com/medshare/medshare/consent"
)

// Record statuses. A record is pending from the moment its ciphertext is
// stored until its anchor is committed; only anchored records are served.
const (
	StatusPending  = "pending"
	StatusAnchored = "anchored"
)

// Record is one version of a stored record: metadata in clear, content only
// as ciphertext under a per-version DEK wrapped by a versioned KEK.
type Record struct {
	ID          string    `json:"id" bson:"id"`
	Version     int       `json:"version" bson:"version"`
	Patient     string    `json:"patient" bson:"patient"`
	PatientRef  string    `json:"patientRef" bson:"patientRef"`
	Category    string    `json:"category" bson:"category"`
	ContentType string    `json:"contentType" bson:"contentType"`
	Org         string    `json:"org" bson:"org"`
	AuthorRef   string    `json:"authorRef" bson:"authorRef"`
	CreatedAt   time.Time `json:"createdAt" bson:"createdAt"`
	Status      string    `json:"status" bson:"status"`

	Ciphertext []byte `json:"ciphertext" bson:"ciphertext"` // nonce ‖ AES-256-GCM(DEK, content, AAD)
	WrappedDEK []byte `json:"wrappedDek" bson:"wrappedDek"` // nonce ‖ AES-256-GCM(KEK, DEK, AAD)
	KEKVersion int    `json:"kekVersion" bson:"kekVersion"`
	Salt       []byte `json:"salt" bson:"salt"`
	Hash       string `json:"hash" bson:"hash"` // base64url(sha256(salt ‖ content)), as anchored
	Size       int    `json:"size" bson:"size"` // plaintext length

	AnchorTx    string `json:"anchorTx,omitempty" bson:"anchorTx,omitempty"`
	AnchorBlock uint64 `json:"anchorBlock,omitempty" bson:"anchorBlock,omitempty"`
}

// RecordFilter selects anchored records of one patient, ordered by id.
// After is the last id of the previous page; Limit 0 means 100.
//
// Org, when set, keeps only versions authored by that organization: per
// id, the highest anchored version of the patient whose Org is Org. Stores
// index (patientRef, org, id), so such a listing touches only that
// organization's records of the patient.
type RecordFilter struct {
	PatientRef string
	Org        string
	After      string
	Limit      int
}

// DefaultPageLimit is the page size of a RecordFilter without a Limit.
const DefaultPageLimit = 100

// PageLimit validates f and returns its effective limit: EINVALID without
// a patient or with a negative limit.
func (f RecordFilter) PageLimit() (int, error) {
	switch {
	case f.PatientRef == "":
		return 0, consent.Errorf(consent.EINVALID, "record filter needs a patient")
	case f.Limit < 0:
		return 0, consent.Errorf(consent.EINVALID, "record filter limit %d is negative", f.Limit)
	case f.Limit == 0:
		return DefaultPageLimit, nil
	}
	return f.Limit, nil
}

// Store keeps records and the small off-chain tables medshare needs. Bolt
// (embedded default) and Mongo implement it; records/recordstest is their
// shared conformance suite. Implementations never need multi-document
// transactions: every method changes at most one document atomically, and
// repeating a call is safe.
type Store interface {
	// NoticeStore keeps patients' notices alongside the records.
	NoticeStore

	// CreateRecord stores a new record version. ECONFLICT if that id and
	// version exist.
	CreateRecord(ctx context.Context, r *Record) error
	// MarkAnchored sets a pending record version anchored with its ledger
	// tx and block. ENOTFOUND if the version does not exist. Idempotent.
	MarkAnchored(ctx context.Context, id string, version int, tx string, block uint64) error
	// DeleteRecord removes one record version; deleting a missing one is
	// not an error.
	DeleteRecord(ctx context.Context, id string, version int) error
	// Record returns the latest version of record id, whatever its status.
	// ENOTFOUND if there is none.
	Record(ctx context.Context, id string) (*Record, error)
	// Records returns a page of the latest anchored versions of a patient's
	// records (of f.Org's authoring when set), ordered by id. It returns
	// metadata only: Ciphertext, WrappedDEK and Salt are empty, and
	// implementations never read them for a listing, so its cost does not
	// grow with the size of the content. Use Record for content.
	Records(ctx context.Context, f RecordFilter) ([]*Record, error)
	// PendingRecords returns every pending record version (for recovery at
	// start-up).
	PendingRecords(ctx context.Context) ([]*Record, error)
	// SaveAlias remembers that pseudonym ref stands for id, so logs and
	// consents can be shown to those allowed to see them. Idempotent.
	SaveAlias(ctx context.Context, ref, id string) error
	// Aliases returns the ids of those refs it knows.
	Aliases(ctx context.Context, refs []string) (map[string]string, error)
	// Ping returns EUNAVAILABLE when the store cannot serve requests.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}
