package records

import (
	"context"
	"sync"

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

// anchorCache keeps committed anchors, which never change, so a read on a
// slow ledger does not query a peer for them each time. Bounded: when full
// it forgets an arbitrary half.
type anchorCache struct {
	mu sync.Mutex
	m  map[string]consent.Anchor
}

const anchorCacheSize = 100_000

func (c *anchorCache) get(id string) (consent.Anchor, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[id]
	return a, ok
}

func (c *anchorCache) put(a consent.Anchor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]consent.Anchor{}
	}
	if len(c.m) >= anchorCacheSize {
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= anchorCacheSize/2 {
				break
			}
		}
	}
	c.m[a.RecordID] = a
}
