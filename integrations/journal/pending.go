package journal

// The entries held in memory: pending and recently anchored, listed in (time, id) order.

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/medshare/medshare/consent"
)

// defaultLimit is the page size of listings without a limit.
const defaultLimit = 100

// item is one held entry.
type item struct {
	o   consent.OutboxEntry
	key sortKey
}

// sortKey orders entries by time, then id.
type sortKey struct {
	t  time.Time
	id string
}

func (a sortKey) compare(b sortKey) int {
	return cmp.Or(a.t.Compare(b.t), strings.Compare(a.id, b.id))
}

// hold adds a pending entry to the in-memory indexes.
func (j *Journal) hold(o consent.OutboxEntry) {
	it := &item{o: o, key: sortKey{o.Entry.Time, o.Entry.ID}}
	j.byID[o.Entry.ID] = it
	j.all = insertSorted(j.all, it)
	j.byPatient[o.Entry.PatientRef] = insertSorted(j.byPatient[o.Entry.PatientRef], it)
	j.pending++
}

// insertSorted inserts it into s, kept sorted by key; entries mostly
// arrive in time order, so this is usually an append.
func insertSorted(s []*item, it *item) []*item {
	if n := len(s); n == 0 || s[n-1].key.compare(it.key) < 0 {
		return append(s, it)
	}
	i, _ := slices.BinarySearchFunc(s, it.key, func(x *item, k sortKey) int { return x.key.compare(k) })
	return slices.Insert(s, i, it)
}

// markAnchored records where entries went.
func (j *Journal) markAnchored(ids []string, tx string, block uint64) {
	for _, id := range ids {
		it, ok := j.byID[id]
		if !ok {
			continue
		}
		if it.o.Status == consent.OutboxPending {
			j.pending--
			j.anchored++
		}
		it.o.Status, it.o.Tx, it.o.Block = consent.OutboxAnchored, tx, block
	}
}

// limitOf validates limit and returns its effective value.
func limitOf(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, consent.Errorf(consent.EINVALID, "limit %d is negative", limit)
	case limit == 0:
		return defaultLimit, nil
	}
	return limit, nil
}

// PendingEntries implements consent.Outbox: up to limit (0 → 100) pending
// entries, oldest first by entry time then id. EINVALID for a negative
// limit.
func (j *Journal) PendingEntries(ctx context.Context, limit int) ([]consent.OutboxEntry, error) {
	return j.list("", "", limit, true)
}

// OutboxEntries implements consent.Outbox over the entries the journal
// holds: every pending entry, and those anchored since the last
// compaction. EINVALID for a negative limit or an after cursor naming no
// held entry.
func (j *Journal) OutboxEntries(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	return j.list(patientRef, after, limit, false)
}

// ListPending implements consent.Outbox: the held entries are filtered
// in memory, and compaction bounds how many anchored ones they include.
// EINVALID for a negative limit or an after cursor naming no held entry.
func (j *Journal) ListPending(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	return j.list(patientRef, after, limit, true)
}

// list returns up to limit held entries of patientRef (all patients when
// empty) after the cursor, only the pending ones if pendingOnly.
func (j *Journal) list(patientRef, after string, limit int, pendingOnly bool) ([]consent.OutboxEntry, error) {
	limit, err := limitOf(limit)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usableLocked(); err != nil {
		return nil, err
	}
	s := j.all
	if patientRef != "" {
		s = j.byPatient[patientRef]
	}
	if after != "" {
		cur, ok := j.byID[after]
		if !ok {
			return nil, consent.Errorf(consent.EINVALID, "cursor %q names no access entry", after)
		}
		i, found := slices.BinarySearchFunc(s, cur.key, func(x *item, k sortKey) int { return x.key.compare(k) })
		if found {
			i++
		}
		s = s[i:]
	}
	out := make([]consent.OutboxEntry, 0, min(limit, len(s)))
	for _, it := range s {
		if len(out) == limit {
			break
		}
		if !pendingOnly || it.o.Status == consent.OutboxPending {
			out = append(out, it.o)
		}
	}
	return out, nil
}

// Pending returns how many entries wait for anchoring.
func (j *Journal) Pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.pending
}
