package bolt

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// maxVersion is the largest version a 10-digit key can hold.
const maxVersion = 9_999_999_999

// recordKey returns "<id>/<version %010d>": zero-padding makes the byte
// order of one id's keys the numeric order of its versions.
func recordKey(id string, version int) []byte {
	return fmt.Appendf(nil, "%s/%010d", id, version)
}

// patientKey returns the patients-index key of id for patientRef.
func patientKey(patientRef, id string) []byte {
	return []byte(patientRef + "/" + id)
}

// createRecord stores r. EINVALID for an empty id or a version out of
// range; ECONFLICT if that version exists.
func createRecord(tx *bbolt.Tx, r *records.Record) error {
	switch {
	case r == nil || r.ID == "":
		return consent.Errorf(consent.EINVALID, "record id is empty")
	case strings.Contains(r.ID, "/"):
		return consent.Errorf(consent.EINVALID, "record id %q contains '/'", r.ID)
	case r.Version < 1 || r.Version > maxVersion:
		return consent.Errorf(consent.EINVALID, "record %s: version %d is out of range", r.ID, r.Version)
	}
	k := recordKey(r.ID, r.Version)
	if tx.Bucket(bucketRecords).Get(k) != nil {
		return consent.Errorf(consent.ECONFLICT, "record %s version %d already exists", r.ID, r.Version)
	}
	return putRecord(tx, k, r)
}

// putRecord writes r under k and brings the pending and patients indexes
// in line with its status.
func putRecord(tx *bbolt.Tx, k []byte, r *records.Record) error {
	v, err := encodeRecord(r)
	if err != nil {
		return consent.WrapError(consent.EINVALID, err, "record %s: cannot encode", r.ID)
	}
	if err := tx.Bucket(bucketRecords).Put(k, v); err != nil {
		return err
	}
	pending := tx.Bucket(bucketPending)
	if r.Status == records.StatusPending {
		err = pending.Put(k, []byte{})
	} else {
		err = pending.Delete(k)
	}
	if err != nil || r.Status != records.StatusAnchored {
		return err
	}
	// List the newest anchored version only.
	ik := patientKey(r.PatientRef, r.ID)
	patients := tx.Bucket(bucketPatients)
	if cur, ok := indexedVersion(patients.Get(ik)); ok && cur >= r.Version {
		return nil
	}
	return patients.Put(ik, binary.BigEndian.AppendUint64(nil, uint64(r.Version)))
}

// indexedVersion decodes a patients-index value.
func indexedVersion(v []byte) (int, bool) {
	if len(v) != 8 {
		return 0, false
	}
	return int(binary.BigEndian.Uint64(v)), true
}

// getRecord returns the record under k, or nil if there is none.
// EINTEGRITY if the stored value does not decode.
func getRecord(tx *bbolt.Tx, k []byte) (*records.Record, error) {
	v := tx.Bucket(bucketRecords).Get(k)
	if v == nil {
		return nil, nil
	}
	r, err := decodeRecord(v)
	if err != nil {
		return nil, consent.WrapError(consent.EINTEGRITY, err, "stored record %s is corrupt", k)
	}
	return r, nil
}

// markAnchored records the anchor of one version. ENOTFOUND if it does not
// exist. Repeating the same call writes nothing.
func markAnchored(tx *bbolt.Tx, id string, version int, anchorTx string, block uint64) error {
	k := recordKey(id, version)
	r, err := getRecord(tx, k)
	switch {
	case err != nil:
		return err
	case r == nil:
		return consent.Errorf(consent.ENOTFOUND, "record %s version %d not found", id, version)
	case r.Status == records.StatusAnchored && r.AnchorTx == anchorTx && r.AnchorBlock == block:
		return nil
	}
	r.Status, r.AnchorTx, r.AnchorBlock = records.StatusAnchored, anchorTx, block
	return putRecord(tx, k, r)
}

// deleteRecord removes one version and its index entries; if it was the
// version the patients index listed, the next older anchored version of the
// same patient takes its place.
func deleteRecord(tx *bbolt.Tx, id string, version int) error {
	k := recordKey(id, version)
	r, err := getRecord(tx, k)
	if err != nil || r == nil {
		return err
	}
	if err := tx.Bucket(bucketRecords).Delete(k); err != nil {
		return err
	}
	if err := tx.Bucket(bucketPending).Delete(k); err != nil {
		return err
	}
	patients := tx.Bucket(bucketPatients)
	ik := patientKey(r.PatientRef, id)
	if cur, ok := indexedVersion(patients.Get(ik)); !ok || cur != version {
		return nil
	}
	prev, err := previousAnchored(tx, r)
	switch {
	case err != nil:
		return err
	case prev == nil:
		return patients.Delete(ik)
	default:
		return patients.Put(ik, binary.BigEndian.AppendUint64(nil, uint64(prev.Version)))
	}
}

// previousAnchored returns the newest anchored version of r.ID older than
// r with r's patient, or nil. It runs after r's key is deleted. Records
// have few versions; this walks them.
func previousAnchored(tx *bbolt.Tx, r *records.Record) (*records.Record, error) {
	prefix := []byte(r.ID + "/")
	c := tx.Bucket(bucketRecords).Cursor()
	// Step back from the first key after r's (r's own key is gone).
	var k, v []byte
	if k, _ = c.Seek(recordKey(r.ID, r.Version)); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		p, err := decodeRecord(v)
		if err != nil {
			return nil, consent.WrapError(consent.EINTEGRITY, err, "stored record %s is corrupt", k)
		}
		if p.Status == records.StatusAnchored && p.PatientRef == r.PatientRef {
			return p, nil
		}
	}
	return nil, nil
}

// latestRecord returns the highest version of id. ENOTFOUND if none.
func latestRecord(tx *bbolt.Tx, id string) (*records.Record, error) {
	prefix := []byte(id + "/")
	c := tx.Bucket(bucketRecords).Cursor()
	// '0' is the byte after '/', so this seeks just past id's last key.
	k, _ := c.Seek([]byte(id + "0"))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if id == "" || k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, consent.Errorf(consent.ENOTFOUND, "record %s not found", id)
	}
	return getRecord(tx, k)
}

// findRecords pages through the patients index: one seek, then one lookup
// per record returned. EINVALID without a patient or with a negative limit.
func findRecords(tx *bbolt.Tx, f records.RecordFilter) ([]*records.Record, error) {
	limit, err := f.PageLimit()
	if err != nil {
		return nil, err
	}
	prefix := []byte(f.PatientRef + "/")
	c := tx.Bucket(bucketPatients).Cursor()
	rs := []*records.Record{}
	for k, v := c.Seek(append(prefix, f.After...)); k != nil && bytes.HasPrefix(k, prefix) && len(rs) < limit; k, v = c.Next() {
		id := string(k[len(prefix):])
		version, ok := indexedVersion(v)
		if id == f.After {
			continue
		}
		if !ok {
			return nil, consent.Errorf(consent.EINTEGRITY, "patients index entry %s is corrupt", k)
		}
		r, err := getRecord(tx, recordKey(id, version))
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, consent.Errorf(consent.EINTEGRITY, "patients index lists missing record %s version %d", id, version)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// pendingRecords loads every version the pending index lists, ordered by
// id then version (the key order differs where one id prefixes another).
func pendingRecords(tx *bbolt.Tx) ([]*records.Record, error) {
	rs := []*records.Record{}
	err := tx.Bucket(bucketPending).ForEach(func(k, _ []byte) error {
		r, err := getRecord(tx, k)
		if err != nil {
			return err
		}
		if r == nil {
			return consent.Errorf(consent.EINTEGRITY, "pending index lists missing record %s", k)
		}
		rs = append(rs, r)
		return nil
	})
	slices.SortFunc(rs, func(a, b *records.Record) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), cmp.Compare(a.Version, b.Version))
	})
	return rs, err
}
