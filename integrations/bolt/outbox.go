package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
)

var _ consent.Outbox = (*RecordStore)(nil)

// defaultOutboxLimit is the page size of outbox listings without a limit.
const defaultOutboxLimit = 100

// timeKeyLayout formats a UTC time as a fixed-width key (25 bytes for
// years 0–9999), so byte order is time order.
const timeKeyLayout = "20060102T150405.000000000Z"

// timeKey returns t's index key segment.
func timeKey(t time.Time) string { return t.UTC().Format(timeKeyLayout) }

// Enqueue implements consent.Outbox: e is pending once Enqueue returns, its
// transaction fsync'd. Its time is kept in UTC. ECONFLICT for a duplicate
// id; EINVALID for an invalid id, an empty or malformed patientRef, or a
// time that is zero or outside years 0–9999.
func (s *RecordStore) Enqueue(ctx context.Context, e consent.AccessEntry) error {
	if err := validEntry(&e); err != nil {
		return err
	}
	e.Time = e.Time.UTC()
	o := &consent.OutboxEntry{
		Entry:    e,
		Status:   consent.OutboxPending,
		Enqueued: s.Now().UTC().Truncate(time.Millisecond),
	}
	return s.db.update(ctx, "enqueue access entry", func(tx *bbolt.Tx) error {
		return enqueue(tx, o)
	})
}

// PendingEntries implements consent.Outbox: up to limit (0 → 100) pending
// entries, oldest first by entry time then id. EINVALID for a negative
// limit.
func (s *RecordStore) PendingEntries(ctx context.Context, limit int) ([]consent.OutboxEntry, error) {
	return s.ListPending(ctx, "", "", limit)
}

// MarkEntriesAnchored implements consent.Outbox, in one transaction.
// Unknown ids are ignored; marking an entry again with the same tx and
// block writes nothing, and with others records the latest.
func (s *RecordStore) MarkEntriesAnchored(ctx context.Context, ids []string, anchorTx string, block uint64) error {
	if len(ids) == 0 {
		return nil
	}
	return s.db.update(ctx, "mark access entries anchored", func(tx *bbolt.Tx) error {
		for _, id := range ids {
			if err := markEntryAnchored(tx, id, anchorTx, block); err != nil {
				return err
			}
		}
		return nil
	})
}

// OutboxEntries implements consent.Outbox: one seek in the patient or time
// index, then one lookup per entry returned, so a page costs the same
// however large the outbox. EINVALID for a negative limit or an after
// cursor that names no entry.
func (s *RecordStore) OutboxEntries(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	b := bucketOutboxByTime
	if patientRef != "" {
		b = bucketOutboxByPatient
	}
	return s.listOutbox(ctx, b, patientRef, after, limit)
}

// listOutbox pages through the index bucket, under the prefix
// "<patientRef>/" unless patientRef is empty.
func (s *RecordStore) listOutbox(ctx context.Context, bucket []byte, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	limit, err := outboxLimit(limit)
	if err != nil {
		return nil, err
	}
	var out []consent.OutboxEntry
	err = s.db.view(ctx, "list outbox entries", func(tx *bbolt.Tx) error {
		prefix := []byte{}
		if patientRef != "" {
			prefix = []byte(patientRef + "/")
		}
		var from []byte
		if after != "" {
			a, err := getOutboxEntry(tx, after)
			if err != nil {
				return err
			}
			if a == nil {
				return consent.Errorf(consent.EINVALID, "outbox cursor %q names no entry", after)
			}
			from = append(bytes.Clone(prefix), entryKey(&a.Entry)...)
		}
		out, err = scanOutbox(tx, tx.Bucket(bucket).Cursor(), prefix, from, limit)
		return err
	})
	return out, err
}

// ListPending implements consent.Outbox: one seek in the index of
// pending entries (per patient when patientRef is set), then one lookup per
// entry returned. EINVALID for a negative limit or an after cursor that
// names no entry.
func (s *RecordStore) ListPending(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	b := bucketOutboxPending
	if patientRef != "" {
		b = bucketOutboxPendingByPatient
	}
	return s.listOutbox(ctx, b, patientRef, after, limit)
}

// validEntry checks what the outbox's keys rely on; the ledger validates
// the rest when the entry is anchored.
func validEntry(e *consent.AccessEntry) error {
	switch y := e.Time.UTC().Year(); {
	case !consent.ValidID(e.ID):
		return consent.Errorf(consent.EINVALID, "access entry id %q is invalid", e.ID)
	case !validRef(e.PatientRef):
		return consent.Errorf(consent.EINVALID, "access entry %s: patientRef is invalid", e.ID)
	case e.Time.IsZero() || y < 0 || y > 9999:
		return consent.Errorf(consent.EINVALID, "access entry %s: time is missing or out of range", e.ID)
	}
	return nil
}

// outboxLimit validates limit and returns its effective value.
func outboxLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, consent.Errorf(consent.EINVALID, "limit %d is negative", limit)
	case limit == 0:
		return defaultOutboxLimit, nil
	}
	return limit, nil
}

// entryKey returns "<timeKey>/<id>", e's key in the time-ordered indexes.
func entryKey(e *consent.AccessEntry) []byte {
	return []byte(timeKey(e.Time) + "/" + e.ID)
}

// enqueue writes o and its index keys. ECONFLICT if the id is taken.
func enqueue(tx *bbolt.Tx, o *consent.OutboxEntry) error {
	id := []byte(o.Entry.ID)
	if tx.Bucket(bucketOutbox).Get(id) != nil {
		return consent.Errorf(consent.ECONFLICT, "access entry %s is already in the outbox", o.Entry.ID)
	}
	if err := putOutboxEntry(tx, o); err != nil {
		return err
	}
	k := entryKey(&o.Entry)
	if err := tx.Bucket(bucketOutboxPending).Put(k, []byte{}); err != nil {
		return err
	}
	if err := tx.Bucket(bucketOutboxByTime).Put(k, []byte{}); err != nil {
		return err
	}
	pk := patientEntryKey(o.Entry.PatientRef, k)
	if err := tx.Bucket(bucketOutboxPendingByPatient).Put(pk, []byte{}); err != nil {
		return err
	}
	return tx.Bucket(bucketOutboxByPatient).Put(pk, []byte{})
}

// backfillPendingByPatient fills the index of pending entries per patient
// from outboxPending, for a file written before that index existed.
func backfillPendingByPatient(tx *bbolt.Tx) error {
	idx := tx.Bucket(bucketOutboxPendingByPatient)
	return tx.Bucket(bucketOutboxPending).ForEach(func(k, _ []byte) error {
		if len(k) <= len(timeKeyLayout)+1 {
			return consent.Errorf(consent.EINTEGRITY, "outbox index key %s is corrupt", k)
		}
		id := string(k[len(timeKeyLayout)+1:])
		o, err := getOutboxEntry(tx, id)
		if err != nil {
			return err
		}
		if o == nil {
			return consent.Errorf(consent.EINTEGRITY, "outbox index lists missing entry %s", id)
		}
		return idx.Put(patientEntryKey(o.Entry.PatientRef, k), []byte{})
	})
}

// patientEntryKey returns "<patientRef>/<entry key>", an entry's key in the
// per-patient indexes.
func patientEntryKey(patientRef string, entryKey []byte) []byte {
	return append([]byte(patientRef+"/"), entryKey...)
}

// putOutboxEntry writes o under its id.
func putOutboxEntry(tx *bbolt.Tx, o *consent.OutboxEntry) error {
	v, err := json.Marshal(o)
	if err != nil {
		return consent.WrapError(consent.EINVALID, err, "access entry %s: cannot encode", o.Entry.ID)
	}
	return tx.Bucket(bucketOutbox).Put([]byte(o.Entry.ID), v)
}

// getOutboxEntry returns the entry id, or nil. EINTEGRITY if it does not
// decode.
func getOutboxEntry(tx *bbolt.Tx, id string) (*consent.OutboxEntry, error) {
	v := tx.Bucket(bucketOutbox).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var o consent.OutboxEntry
	if err := json.Unmarshal(v, &o); err != nil {
		return nil, consent.WrapError(consent.EINTEGRITY, err, "stored access entry %s is corrupt", id)
	}
	return &o, nil
}

// markEntryAnchored sets one entry anchored and drops its pending key.
func markEntryAnchored(tx *bbolt.Tx, id, anchorTx string, block uint64) error {
	o, err := getOutboxEntry(tx, id)
	switch {
	case err != nil || o == nil:
		return err
	case o.Status == consent.OutboxAnchored && o.Tx == anchorTx && o.Block == block:
		return nil
	}
	o.Status, o.Tx, o.Block = consent.OutboxAnchored, anchorTx, block
	k := entryKey(&o.Entry)
	if err := tx.Bucket(bucketOutboxPending).Delete(k); err != nil {
		return err
	}
	if err := tx.Bucket(bucketOutboxPendingByPatient).Delete(patientEntryKey(o.Entry.PatientRef, k)); err != nil {
		return err
	}
	return putOutboxEntry(tx, o)
}

// scanOutbox returns up to limit entries listed by the index keys under
// prefix ("<prefix><timeKey>/<id>"), starting after the key from, or at the
// first key when from is nil.
func scanOutbox(tx *bbolt.Tx, c *bbolt.Cursor, prefix, from []byte, limit int) ([]consent.OutboxEntry, error) {
	out := []consent.OutboxEntry{}
	k, _ := c.Seek(prefix)
	if from != nil {
		if k, _ = c.Seek(from); bytes.Equal(k, from) {
			k, _ = c.Next()
		}
	}
	for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
		rest := k[len(prefix):]
		if len(rest) <= len(timeKeyLayout)+1 {
			return nil, consent.Errorf(consent.EINTEGRITY, "outbox index key %s is corrupt", k)
		}
		id := string(rest[len(timeKeyLayout)+1:])
		o, err := getOutboxEntry(tx, id)
		if err != nil {
			return nil, err
		}
		if o == nil {
			return nil, consent.Errorf(consent.EINTEGRITY, "outbox index lists missing entry %s", id)
		}
		out = append(out, *o)
	}
	return out, nil
}
