package consent

import (
	"context"
	"time"
)

// ConsentStore is a read model of the ledger's consents in the document
// store, for ledgers that are slow to query (Fabric). A block-event listener
// feeds it; the node that commits a grant or revoke also writes it before
// answering, so its very next read sees the change. bolt.RecordStore and
// mongo.RecordStore implement it; consenttest.RunStores checks them.
type ConsentStore interface {
	// SaveConsent stores c unless the stored copy has the same or a higher
	// Version (events may arrive late or twice). Idempotent.
	SaveConsent(ctx context.Context, c Consent) error
	// StoredConsents lists consents by patient or grantee org, like the
	// contract's ListConsents (exactly one filter field; else EINVALID),
	// ordered by id.
	StoredConsents(ctx context.Context, f ConsentFilter) ([]Consent, error)
	// SaveCheckpoint records the last block the listener named name has
	// fully applied. Checkpoint returns it (0 when none).
	SaveCheckpoint(ctx context.Context, name string, block uint64) error
	// Checkpoint returns the last block recorded by SaveCheckpoint.
	Checkpoint(ctx context.Context, name string) (uint64, error)
}

// Outbox statuses.
const (
	OutboxPending  = "pending"
	OutboxAnchored = "anchored"
)

// OutboxEntry is an access entry waiting for, or done with, anchoring.
type OutboxEntry struct {
	Entry    AccessEntry `json:"entry"`
	Status   string      `json:"status"`
	Tx       string      `json:"tx,omitempty"`
	Block    uint64      `json:"block,omitempty"`
	Enqueued time.Time   `json:"enqueued"`
}

// Outbox holds access entries durably in the document store until a worker
// anchors them on the ledger with LogAccessBatch (Fabric; see docs/ARCHITECTURE.md).
type Outbox interface {
	// Enqueue makes e durable (journaled write) as pending. ECONFLICT for a
	// duplicate entry id.
	Enqueue(ctx context.Context, e AccessEntry) error
	// PendingEntries returns up to limit pending entries, oldest first.
	PendingEntries(ctx context.Context, limit int) ([]OutboxEntry, error)
	// MarkEntriesAnchored sets entries anchored with their tx and block.
	// Unknown ids are ignored; repeating the call is harmless.
	MarkEntriesAnchored(ctx context.Context, ids []string, tx string, block uint64) error
	// OutboxEntries lists entries (any status) of one patient, or of all
	// patients when patientRef is empty, oldest first by entry time then
	// id, after the cursor After (an entry id), up to limit (0 → 100).
	OutboxEntries(ctx context.Context, patientRef, after string, limit int) ([]OutboxEntry, error)
	// ListPending lists pending entries of one patient, or of all patients
	// when patientRef is empty, in the same order, after the cursor after
	// (an entry id, of any status), up to limit (0 → 100). It reads an
	// index of pending entries: its cost does not grow with the anchored
	// history.
	ListPending(ctx context.Context, patientRef, after string, limit int) ([]OutboxEntry, error)
}
