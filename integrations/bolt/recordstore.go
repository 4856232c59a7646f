package bolt

import (
	"context"
	"time"

	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/records"
)

// RecordStore is records.Store on a bbolt file. Lookups by id and listings
// by patient (or patient and author org) are B+tree seeks (O(log n)),
// never scans; a listing reads metadata kept in its index, never content.
// It is safe for concurrent use; bbolt runs one writer at a time and
// readers alongside.
//
// It also keeps patients' notices (records.NoticeStore), the consent read
// model (consent.ConsentStore) and the access-log outbox (consent.Outbox)
// in the same file.
type RecordStore struct {
	// Now stamps outbox entries' Enqueued time; Open sets it to time.Now.
	// Replace it, if at all, before the store is used.
	Now func() time.Time

	db *db
}

var _ records.Store = (*RecordStore)(nil)

// Open opens the record store in the bbolt file at path, creating the file
// (mode 0600) and its directory (0700) if needed. EUNAVAILABLE if another
// process holds the file for longer than a couple of seconds; EINTEGRITY if
// the file was written by an incompatible version; EINTERNAL otherwise.
func Open(path string) (*RecordStore, error) {
	d, err := openDB(path)
	if err != nil {
		return nil, err
	}
	return &RecordStore{Now: time.Now, db: d}, nil
}

// CreateRecord implements records.Store. EINVALID for an empty id or a
// version outside 1..9999999999; ECONFLICT if that version exists.
func (s *RecordStore) CreateRecord(ctx context.Context, r *records.Record) error {
	return s.db.update(ctx, "create record", func(tx *bbolt.Tx) error {
		return createRecord(tx, r)
	})
}

// MarkAnchored implements records.Store. ENOTFOUND if the version does not
// exist.
func (s *RecordStore) MarkAnchored(ctx context.Context, id string, version int, anchorTx string, block uint64) error {
	return s.db.update(ctx, "mark record anchored", func(tx *bbolt.Tx) error {
		return markAnchored(tx, id, version, anchorTx, block)
	})
}

// DeleteRecord implements records.Store.
func (s *RecordStore) DeleteRecord(ctx context.Context, id string, version int) error {
	return s.db.update(ctx, "delete record", func(tx *bbolt.Tx) error {
		return deleteRecord(tx, id, version)
	})
}

// Record implements records.Store. ENOTFOUND if id has no version.
func (s *RecordStore) Record(ctx context.Context, id string) (*records.Record, error) {
	var r *records.Record
	err := s.db.view(ctx, "get record", func(tx *bbolt.Tx) (err error) {
		r, err = latestRecord(tx, id)
		return err
	})
	return r, err
}

// Records implements records.Store: one range of the byPatient index, or
// of byPatientOrg when f names an org, whose entries hold the metadata, so
// no record's content is read or copied. EINVALID without a patient or
// with a negative limit.
func (s *RecordStore) Records(ctx context.Context, f records.RecordFilter) ([]*records.Record, error) {
	var rs []*records.Record
	err := s.db.view(ctx, "list records", func(tx *bbolt.Tx) (err error) {
		rs, err = findRecords(tx, f)
		return err
	})
	return rs, err
}

// PendingRecords implements records.Store, ordered by id and version.
func (s *RecordStore) PendingRecords(ctx context.Context) ([]*records.Record, error) {
	var rs []*records.Record
	err := s.db.view(ctx, "list pending records", func(tx *bbolt.Tx) (err error) {
		rs, err = pendingRecords(tx)
		return err
	})
	return rs, err
}

// SaveAlias implements records.Store. EINVALID if ref or id is empty;
// ECONFLICT if ref is already the alias of another id.
func (s *RecordStore) SaveAlias(ctx context.Context, ref, id string) error {
	return s.db.update(ctx, "save alias", func(tx *bbolt.Tx) error {
		return saveAlias(tx, ref, id)
	})
}

// Aliases implements records.Store.
func (s *RecordStore) Aliases(ctx context.Context, refs []string) (map[string]string, error) {
	var m map[string]string
	err := s.db.view(ctx, "get aliases", func(tx *bbolt.Tx) error {
		m = aliases(tx, refs)
		return nil
	})
	return m, err
}

// Ping implements records.Store: EUNAVAILABLE once the store is closed.
func (s *RecordStore) Ping(ctx context.Context) error { return s.db.ping(ctx) }

// Close closes the file. Closing twice is not an error. EINTERNAL if the
// file cannot be closed cleanly.
func (s *RecordStore) Close() error { return s.db.close() }
