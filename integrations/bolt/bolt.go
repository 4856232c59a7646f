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
	"github.com/medshare/medshare/integrations/bolt/residency"
)

// openTimeout bounds the wait for the file lock, so a second process (or a
// second Open in this one) fails clearly instead of hanging.
const openTimeout = 2 * time.Second

// schemaVersion is the layout of keys and values this package writes; Open
// refuses a file written with another.
const schemaVersion = "1"

// Bucket names. The layout is:
//
//	meta      "schema" → schemaVersion
//	records   "<id>/<version %010d>" → encoded record (see codec.go)
//	patients  "<patientRef>/<id>" → version (8 bytes, big-endian) of the latest
//	          anchored version of id for that patient; pending ids are absent
//	pending   "<id>/<version %010d>" → empty, one key per pending version
//	aliases   "<ref>" → id
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
// timeKey is fixed-width, so key order is entry time, then id. The indexes
// hold no values: every listing seeks its index and looks each id up.
var (
	bucketMeta     = []byte("meta")
	bucketRecords  = []byte("records")
	bucketPatients = []byte("patients")
	bucketPending  = []byte("pending")
	bucketAliases  = []byte("aliases")

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
	bucketMeta, bucketRecords, bucketPatients, bucketPending, bucketAliases,
	bucketConsents, bucketConsentsByPatient, bucketConsentsByGrantee, bucketCheckpoints,
	bucketOutbox, bucketOutboxPending, bucketOutboxByPatient, bucketOutboxByTime,
	bucketOutboxPendingByPatient,
}

// db is a bbolt file with medshare's buckets. Stores built on one file
// share it.
type db struct {
	bolt *bbolt.DB
	trim *residency.Trimmer // nil when disabled
}

// openDB opens or creates the file at path (0600, parent directories 0700),
// creates missing buckets and starts the residency trimmer o asks for.
// EUNAVAILABLE if another process holds the file; EINTEGRITY if the file has
// another schema version; EINTERNAL for anything else.
func openDB(path string, o Options) (*db, error) {
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
	d := &db{bolt: b}
	if o.ResidencyBudget >= 0 {
		d.trim = residency.Start(residency.Options{Budget: o.ResidencyBudget, Logger: o.Logger}, b)
	}
	return d, nil
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
	case string(v) != schemaVersion:
		return consent.Errorf(consent.EINTEGRITY, "store schema version %q, want %q", v, schemaVersion)
	}
	if backfill {
		return backfillPendingByPatient(tx)
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

// close stops the trimmer, then closes the file; closing twice is not an
// error.
func (d *db) close() error {
	if d.trim != nil {
		_ = d.trim.Close() // always nil
	}
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
