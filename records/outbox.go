package records

import (
	"context"

	"github.com/medshare/medshare/consent"
)

// OutboxAccessLog makes access entries durable in the document store's
// outbox; a consent.OutboxWorker anchors them on the ledger shortly after.
// Reads never wait for ledger ordering.
type OutboxAccessLog struct {
	Outbox consent.Outbox
	Notify func() // wakes the worker; may be nil
}

// Log implements AccessLogger.
func (o OutboxAccessLog) Log(ctx context.Context, e consent.AccessEntry) error {
	if err := consent.ValidateAccessEntry(&e); err != nil {
		return err
	}
	if err := o.Outbox.Enqueue(ctx, e); err != nil {
		return err
	}
	if o.Notify != nil {
		o.Notify()
	}
	return nil
}

// StoredConsents serves consents for authorization from the read model in
// the document store.
type StoredConsents struct {
	Store consent.ConsentStore
}

// Consents implements ConsentSource.
func (s StoredConsents) Consents(ctx context.Context, f consent.ConsentFilter) ([]consent.Consent, error) {
	return s.Store.StoredConsents(ctx, f)
}
