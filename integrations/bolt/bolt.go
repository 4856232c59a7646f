// Package bolt implements medshare's stores on bbolt, an embedded B+tree
// key/value file: the default document store, which needs no server.
//
// Exported methods are thin transaction wrappers over unexported helpers
// that take the *bbolt.Tx, so several helpers can share one transaction and
// an index is always written in the same transaction as what it indexes.
// Every write transaction is fsync'd before it returns.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// openTimeout bounds the wait for the file lock, so a second process (or a
// second Open in this one) fails clearly instead of hanging.
const openTimeout = 2 * time.Second

// schemaVersion is the layout of keys and values this package writes; Open
// migrates a file of schema 1 (migrateSchema1) and refuses any other.
const schemaVersion = "2"

// Bucket names. The layout is:
//
//	meta          "schema" → schemaVersion
//	records       "<id>/<version %010d>" → encoded record, content
//	              included (encodeRecord, codec.go)
//	byPatient     "<patientRef>/<id>" → metadata (encodeMeta: no
//	              Ciphertext, WrappedDEK or Salt) of the highest anchored
//	              version of id for that patient; pending ids are absent
//	byPatientOrg  "<patientRef>/<org>/<id>" → the same, of the highest
//	              anchored version of id for that patient authored by org
//	pending       "<id>/<version %010d>" → empty, one key per pending version
//	aliases       "<ref>" → id
//
//	notices    "<patientRef>/<notice id>" → records.Notice as JSON
//	noticeIDs  "<notice id>" → patientRef, so an id is saved once
//
//	consents           "<id>" → consent.Consent as JSON (the newest version)
//	consentsByPatient  "<patientRef>/<id>" → empty
//	consentsByGrantee  "<grantee org>/<id>" → empty
//	checkpoints        "<name>" → block (8 bytes, big-endian)
//
//	outbox             "<entry id>" → consent.OutboxEntry as JSON
//	outboxPending      "<timeKey>/<id>" → empty, pending entries only
//	outboxByPatient    "<patientRef>/<timeKey>/<id>" → empty
//	outboxByTime       "<timeKey>/<id>" → empty
//
// Ids are [A-Za-z0-9._-] and refs base64url, so '/' never occurs inside
// either and a prefix ending in '/' selects exactly one id or patient.
// timeKey is fixed-width, so key order is entry time, then id. The
// listing indexes of records hold their metadata, so listing a patient's
// records is one range scan that never touches content (which dominates
// the file); the other indexes hold no values: their listings seek the
// index and look each id up.
var (
	bucketMeta         = []byte("meta")
	bucketRecords      = []byte("records")
	bucketByPatient    = []byte("byPatient")
	bucketByPatientOrg = []byte("byPatientOrg")
	bucketPending      = []byte("pending")
	bucketAliases      = []byte("aliases")
	// bucketPatientsV1 is schema 1's listing index ("<patientRef>/<id>" →
	// version), which byPatient replaces; migrateSchema1 drops it.
	bucketPatientsV1 = []byte("patients")

	bucketNotices   = []byte("notices")
	bucketNoticeIDs = []byte("noticeIDs")

	bucketConsents          = []byte("consents")
	bucketConsentsByPatient = []byte("consentsByPatient")
	bucketConsentsByGrantee = []byte("consentsByGrantee")
	bucketCheckpoints       = []byte("checkpoints")

	bucketOutbox          = []byte("outbox")
	bucketOutboxPending   = []byte("outboxPending")
	bucketOutboxByPatient = []byte("outboxByPatient")
	bucketOutboxByTime    = []byte("outboxByTime")
	// bucketOutboxPendingByPatient indexes pending entries per patient
	// ("<patientRef>/<timeKey>/<id>"); files written before it existed
	// gain it filled from outboxPending (backfillPendingByPatient).
	bucketOutboxPendingByPatient = []byte("outboxPendingByPatient")
)

// allBuckets lists every bucket Open creates. Adding a bucket needs no new
// schema version: older files simply gain it, empty.
var allBuckets = [][]byte{
	bucketMeta, bucketRecords, bucketByPatient, bucketByPatientOrg, bucketPending, bucketAliases,
	bucketNotices, bucketNoticeIDs,
	bucketConsents, bucketConsentsByPatient, bucketConsentsByGrantee, bucketCheckpoints,
	bucketOutbox, bucketOutboxPending, bucketOutboxByPatient, bucketOutboxByTime,
	bucketOutboxPendingByPatient,
}

// db is a bbolt file with medshare's buckets. Stores built on one file
// share it.
type db struct {
	bolt *bbolt.DB
}

// openDB opens or creates the file at path (0600, parent directories 0700)
// and creates missing buckets. EUNAVAILABLE if another process holds the
// file; EINTEGRITY if the file has another schema version; EINTERNAL for
// anything else.
func openDB(path string) (*db, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "create store directory")
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: openTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, consent.WrapError(consent.EUNAVAILABLE, err,
			"store file %s is locked by another process", filepath.Base(path))
	}
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "open store file %s", filepath.Base(path))
	}
	if err := b.Update(initBuckets); err != nil {
		b.Close()
		return nil, fmt.Errorf("open store file %s: %w", filepath.Base(path), err)
	}
	return &db{bolt: b}, nil
}

// initBuckets creates missing buckets and checks the schema version.
func initBuckets(tx *bbolt.Tx) error {
	backfill := tx.Bucket(bucketOutbox) != nil && tx.Bucket(bucketOutboxPendingByPatient) == nil
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return consent.WrapError(consent.EINTERNAL, err, "create bucket %s", name)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get([]byte("schema")); {
	case v == nil:
		return meta.Put([]byte("schema"), []byte(schemaVersion))
	case string(v) == "1":
		if err := migrateSchema1(tx); err != nil {
			return err
		}
		if err := meta.Put([]byte("schema"), []byte(schemaVersion)); err != nil {
			return err
		}
	case string(v) != schemaVersion:
		return consent.Errorf(consent.EINTEGRITY, "store schema version %q, want %q", v, schemaVersion)
	}
	if backfill {
		return backfillPendingByPatient(tx)
	}
	return nil
}

// migrateSchema1 turns a schema-1 file into a schema-2 one, in Open's
// transaction: it fills the listing indexes byPatient and byPatientOrg
// from every anchored record version (one pass over the records, content
// included, once), then drops schema 1's patients index.
func migrateSchema1(tx *bbolt.Tx) error {
	err := tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		r, err := decodeRecord(v)
		if err != nil {
			return consent.WrapError(consent.EINTEGRITY, err, "stored record %s is corrupt", k)
		}
		if r.Status != records.StatusAnchored {
			return nil
		}
		return indexAnchored(tx, r)
	})
	if err != nil {
		return err
	}
	if tx.Bucket(bucketPatientsV1) == nil {
		return nil
	}
	if err := tx.DeleteBucket(bucketPatientsV1); err != nil {
		return consent.WrapError(consent.EINTERNAL, err, "drop bucket %s", bucketPatientsV1)
	}
	return nil
}

// view runs fn in a read-only transaction; update in a read-write one,
// committed and fsync'd when fn returns nil. Both return ctx's error
// without starting when ctx is done, and name op in the errors they wrap.
func (d *db) view(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return wrapError(op, d.bolt.View(fn))
}

func (d *db) update(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return wrapError(op, d.bolt.Update(fn))
}

// ping returns EUNAVAILABLE unless a read transaction can start.
func (d *db) ping(ctx context.Context) error {
	if err := d.view(ctx, "ping store", func(*bbolt.Tx) error { return nil }); err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "store is unavailable")
	}
	return nil
}

// close closes the file; closing twice is not an error.
func (d *db) close() error {
	if err := d.bolt.Close(); err != nil {
		return consent.WrapError(consent.EINTERNAL, err, "close store file")
	}
	return nil
}

// wrapError names op in err and gives every error a domain code: a closed
// file is EUNAVAILABLE, a *consent.Error keeps its code, anything else from
// bbolt (I/O, full disk) is EINTERNAL.
func wrapError(op string, err error) error {
	var e *consent.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen):
		return consent.WrapError(consent.EUNAVAILABLE, err, "%s: store is closed", op)
	default:
		return consent.WrapError(consent.EINTERNAL, err, "%s", op)
	}
}
