package recordstest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// MemStore is an in-memory records.Store, consent.ConsentStore and
// consent.Outbox for unit tests of other layers. It follows the same
// contracts as the real stores (Run and consenttest.RunStores check it),
// keeps copies of what it is given, and can be told to fail (Down).
type MemStore struct {
	mu          sync.Mutex
	recs        map[string]*records.Record // "id/version"
	aliases     map[string]string
	consents    map[string]consent.Consent
	checkpoints map[string]uint64
	outbox      map[string]consent.OutboxEntry
	notices     map[string]*records.Notice // by id
	closed      bool
	// Down, when set, makes every call fail with EUNAVAILABLE.
	Down bool
	// Now stamps outbox entries' Enqueued time; NewMemStore sets it to
	// time.Now.
	Now func() time.Time
}

var (
	_ records.Store        = (*MemStore)(nil)
	_ consent.ConsentStore = (*MemStore)(nil)
	_ consent.Outbox       = (*MemStore)(nil)
)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{
		recs: map[string]*records.Record{}, aliases: map[string]string{},
		consents: map[string]consent.Consent{}, checkpoints: map[string]uint64{},
		outbox: map[string]consent.OutboxEntry{}, notices: map[string]*records.Notice{}, Now: time.Now,
	}
}

func key(id string, v int) string { return fmt.Sprintf("%s/%010d", id, v) }

// metadata returns a copy of r without its content: what Records lists.
func metadata(r *records.Record) *records.Record {
	c := *r
	c.Ciphertext, c.WrappedDEK, c.Salt = nil, nil, nil
	return &c
}

func clone(r *records.Record) *records.Record {
	c := *r
	c.Ciphertext, c.WrappedDEK, c.Salt = slices.Clone(r.Ciphertext), slices.Clone(r.WrappedDEK), slices.Clone(r.Salt)
	return &c
}

func (m *MemStore) check() error {
	if m.closed || m.Down {
		return consent.Errorf(consent.EUNAVAILABLE, "store is unavailable")
	}
	return nil
}

// Tamper applies fn to the stored latest version of id, as an attacker with
// write access to the store would.
func (m *MemStore) Tamper(id string, fn func(r *records.Record)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for v := 1000; v > 0; v-- {
		if r, ok := m.recs[key(id, v)]; ok {
			fn(r)
			return
		}
	}
}

// IDs returns the id of every record stored, any version or status,
// sorted, each once.
func (m *MemStore) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.recs))
	for _, r := range m.recs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// CreateRecord implements records.Store.
func (m *MemStore) CreateRecord(_ context.Context, r *records.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	if r.ID == "" || r.Version < 1 {
		return consent.Errorf(consent.EINVALID, "record needs an id and a version >= 1")
	}
	k := key(r.ID, r.Version)
	if _, ok := m.recs[k]; ok {
		return consent.Errorf(consent.ECONFLICT, "record %s version %d exists", r.ID, r.Version)
	}
	m.recs[k] = clone(r)
	return nil
}

// MarkAnchored implements records.Store.
func (m *MemStore) MarkAnchored(_ context.Context, id string, version int, tx string, block uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	r, ok := m.recs[key(id, version)]
	if !ok {
		return consent.Errorf(consent.ENOTFOUND, "record %s version %d not found", id, version)
	}
	r.Status, r.AnchorTx, r.AnchorBlock = records.StatusAnchored, tx, block
	return nil
}

// DeleteRecord implements records.Store.
func (m *MemStore) DeleteRecord(_ context.Context, id string, version int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	delete(m.recs, key(id, version))
	return nil
}

// Record implements records.Store.
func (m *MemStore) Record(_ context.Context, id string) (*records.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	var best *records.Record
	for _, r := range m.recs {
		if r.ID == id && (best == nil || r.Version > best.Version) {
			best = r
		}
	}
	if best == nil {
		return nil, consent.Errorf(consent.ENOTFOUND, "record %q not found", id)
	}
	return clone(best), nil
}

// Records implements records.Store: metadata only, as the real stores
// list.
func (m *MemStore) Records(_ context.Context, f records.RecordFilter) ([]*records.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	if f.PatientRef == "" || f.Limit < 0 {
		return nil, consent.Errorf(consent.EINVALID, "filter needs a patient and a non-negative limit")
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	latest := map[string]*records.Record{}
	for _, r := range m.recs {
		if r.PatientRef != f.PatientRef || r.Status != records.StatusAnchored || r.ID <= f.After ||
			f.Org != "" && r.Org != f.Org {
			continue
		}
		if cur, ok := latest[r.ID]; !ok || r.Version > cur.Version {
			latest[r.ID] = r
		}
	}
	out := make([]*records.Record, 0, len(latest))
	for _, r := range latest {
		out = append(out, metadata(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// PendingRecords implements records.Store.
func (m *MemStore) PendingRecords(_ context.Context) ([]*records.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	out := []*records.Record{}
	for _, r := range m.recs {
		if r.Status == records.StatusPending {
			out = append(out, clone(r))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// SaveAlias implements records.Store.
func (m *MemStore) SaveAlias(_ context.Context, ref, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	if ref == "" || id == "" {
		return consent.Errorf(consent.EINVALID, "alias needs a ref and an id")
	}
	if cur, ok := m.aliases[ref]; ok && cur != id {
		return consent.Errorf(consent.ECONFLICT, "ref already stands for another id")
	}
	m.aliases[ref] = id
	return nil
}

// Aliases implements records.Store.
func (m *MemStore) Aliases(_ context.Context, refs []string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range refs {
		if id, ok := m.aliases[r]; ok {
			out[r] = id
		}
	}
	return out, nil
}

// Ping implements records.Store.
func (m *MemStore) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.check()
}

// Close implements records.Store.
func (m *MemStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
