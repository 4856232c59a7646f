package recordstest

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/medshare/medshare/consent"
)

// SaveConsent implements consent.ConsentStore. EINVALID unless c has a
// valid id and grantee org, a patientRef and a version of at least 1.
func (m *MemStore) SaveConsent(_ context.Context, c consent.Consent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	if !consent.ValidID(c.ID) || !consent.ValidID(c.Grantee.Org) || c.PatientRef == "" || c.Version < 1 {
		return consent.Errorf(consent.EINVALID, "consent needs a valid id, patientRef, grantee org and version")
	}
	if cur, ok := m.consents[c.ID]; ok && cur.Version >= c.Version {
		return nil
	}
	m.consents[c.ID] = cloneConsent(c)
	return nil
}

// StoredConsents implements consent.ConsentStore. EINVALID unless exactly
// one filter field is set.
func (m *MemStore) StoredConsents(_ context.Context, f consent.ConsentFilter) ([]consent.Consent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	if (f.PatientRef == "") == (f.GranteeOrg == "") {
		return nil, consent.Errorf(consent.EINVALID, "list consents by exactly one of patientRef or granteeOrg")
	}
	out := []consent.Consent{}
	for _, c := range m.consents {
		if f.PatientRef != "" && c.PatientRef == f.PatientRef || f.GranteeOrg != "" && c.Grantee.Org == f.GranteeOrg {
			out = append(out, cloneConsent(c))
		}
	}
	slices.SortFunc(out, func(a, b consent.Consent) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// SaveCheckpoint implements consent.ConsentStore. EINVALID for an empty
// name.
func (m *MemStore) SaveCheckpoint(_ context.Context, name string, block uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	if name == "" {
		return consent.Errorf(consent.EINVALID, "checkpoint name is empty")
	}
	m.checkpoints[name] = block
	return nil
}

// Checkpoint implements consent.ConsentStore.
func (m *MemStore) Checkpoint(_ context.Context, name string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return 0, err
	}
	return m.checkpoints[name], nil
}

// Enqueue implements consent.Outbox. ECONFLICT for a duplicate id;
// EINVALID for an invalid id, an empty patientRef or a zero time.
func (m *MemStore) Enqueue(_ context.Context, e consent.AccessEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	if !consent.ValidID(e.ID) || e.PatientRef == "" || e.Time.IsZero() {
		return consent.Errorf(consent.EINVALID, "access entry needs a valid id, a patientRef and a time")
	}
	if _, ok := m.outbox[e.ID]; ok {
		return consent.Errorf(consent.ECONFLICT, "access entry %s is already in the outbox", e.ID)
	}
	e.Time, e.Reasons = e.Time.UTC(), slices.Clone(e.Reasons)
	m.outbox[e.ID] = consent.OutboxEntry{
		Entry: e, Status: consent.OutboxPending, Enqueued: m.Now().UTC().Truncate(time.Millisecond),
	}
	return nil
}

// PendingEntries implements consent.Outbox: limit 0 means 100; EINVALID
// for a negative limit.
func (m *MemStore) PendingEntries(_ context.Context, limit int) ([]consent.OutboxEntry, error) {
	return m.entries("", "", limit, true)
}

// MarkEntriesAnchored implements consent.Outbox.
func (m *MemStore) MarkEntriesAnchored(_ context.Context, ids []string, tx string, block uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	for _, id := range ids {
		if o, ok := m.outbox[id]; ok {
			o.Status, o.Tx, o.Block = consent.OutboxAnchored, tx, block
			m.outbox[id] = o
		}
	}
	return nil
}

// OutboxEntries implements consent.Outbox: limit 0 means 100; EINVALID for
// a negative limit or an after cursor that names no entry.
func (m *MemStore) OutboxEntries(_ context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	return m.entries(patientRef, after, limit, false)
}

// ListPending implements consent.Outbox: limit 0 means 100; EINVALID
// for a negative limit or an after cursor that names no entry.
func (m *MemStore) ListPending(_ context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	return m.entries(patientRef, after, limit, true)
}

// entries lists the entries of patientRef (all when empty) after the
// cursor, only pending ones if pendingOnly.
func (m *MemStore) entries(patientRef, after string, limit int, pendingOnly bool) ([]consent.OutboxEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	var pos *consent.AccessEntry
	if after != "" {
		o, ok := m.outbox[after]
		if !ok {
			return nil, consent.Errorf(consent.EINVALID, "outbox cursor %q names no entry", after)
		}
		pos = &o.Entry
	}
	return m.listOutbox(limit, func(o *consent.OutboxEntry) bool {
		return (patientRef == "" || o.Entry.PatientRef == patientRef) &&
			(!pendingOnly || o.Status == consent.OutboxPending) &&
			(pos == nil || entryOrder(&o.Entry, pos) > 0)
	})
}

// listOutbox returns up to limit entries that keep selects, oldest first.
// It sorts the whole outbox: fine for a fake.
func (m *MemStore) listOutbox(limit int, keep func(o *consent.OutboxEntry) bool) ([]consent.OutboxEntry, error) {
	switch {
	case limit < 0:
		return nil, consent.Errorf(consent.EINVALID, "limit %d is negative", limit)
	case limit == 0:
		limit = 100
	}
	out := []consent.OutboxEntry{}
	for _, o := range m.outbox {
		if keep(&o) {
			o.Entry.Reasons = slices.Clone(o.Entry.Reasons)
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b consent.OutboxEntry) int { return entryOrder(&a.Entry, &b.Entry) })
	return out[:min(limit, len(out))], nil
}

// entryOrder orders entries by time, then id.
func entryOrder(a, b *consent.AccessEntry) int {
	return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
}

// cloneConsent copies c's slices and pointer so callers cannot reach the
// stored copy.
func cloneConsent(c consent.Consent) consent.Consent {
	c.Categories, c.Records, c.Purposes = slices.Clone(c.Categories), slices.Clone(c.Records), slices.Clone(c.Purposes)
	if c.ValidUntil != nil {
		until := *c.ValidUntil
		c.ValidUntil = &until
	}
	return c
}
