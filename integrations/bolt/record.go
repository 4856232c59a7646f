package bolt

import (
	"bytes"
	"cmp"
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

// patientKey returns the key of id in the byPatient index.
func patientKey(patientRef, id string) []byte {
	return []byte(patientRef + "/" + id)
}

// patientOrgKey returns the key of id in the byPatientOrg index.
func patientOrgKey(patientRef, org, id string) []byte {
	return []byte(patientRef + "/" + org + "/" + id)
}

// listing is one of the two listing indexes as it concerns one record
// version: its bucket, the key of the version's id there, and which other
// versions of the id the entry may stand for.
type listing struct {
	bucket []byte
	key    []byte
	match  func(p *records.Record) bool
}

// listingsOf returns r's entries in the listing indexes: byPatient lists
// per patient and id the highest anchored version of that patient;
// byPatientOrg the same per patient, author org and id.
func listingsOf(r *records.Record) []listing {
	return []listing{
		{bucketByPatient, patientKey(r.PatientRef, r.ID), func(p *records.Record) bool {
			return p.PatientRef == r.PatientRef
		}},
		{bucketByPatientOrg, patientOrgKey(r.PatientRef, r.Org, r.ID), func(p *records.Record) bool {
			return p.PatientRef == r.PatientRef && p.Org == r.Org
		}},
	}
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

// putRecord writes r under k and brings the pending and listing indexes
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
	return indexAnchored(tx, r)
}

// indexAnchored writes anchored r's metadata into each listing index
// where no higher version of its id is listed (the same version is
// rewritten: its anchor may have changed).
func indexAnchored(tx *bbolt.Tx, r *records.Record) error {
	m, err := encodeMeta(r)
	if err != nil {
		return consent.WrapError(consent.EINVALID, err, "record %s: cannot encode", r.ID)
	}
	for _, l := range listingsOf(r) {
		b := tx.Bucket(l.bucket)
		cur, err := listedVersion(b, l.key)
		if err != nil {
			return err
		}
		if cur > r.Version {
			continue
		}
		if err := b.Put(l.key, m); err != nil {
			return err
		}
	}
	return nil
}

// listedVersion returns the version a listing index lists under k, 0 if
// none. EINTEGRITY if the entry does not decode.
func listedVersion(b *bbolt.Bucket, k []byte) (int, error) {
	v := b.Get(k)
	if v == nil {
		return 0, nil
	}
	m, err := decodeMeta(v)
	if err != nil {
		return 0, consent.WrapError(consent.EINTEGRITY, err, "listing index entry %s is corrupt", k)
	}
	return m.Version, nil
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

// deleteRecord removes one version and its index entries; where a listing
// index listed that version, the next older anchored version the entry may
// stand for (same patient; same patient and org) takes its place.
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
	for _, l := range listingsOf(r) {
		if err := unlist(tx, l, r); err != nil {
			return err
		}
	}
	return nil
}

// unlist replaces deleted r in listing l, if l listed it, by the next older
// anchored version l may stand for, or removes the entry if there is none.
func unlist(tx *bbolt.Tx, l listing, r *records.Record) error {
	b := tx.Bucket(l.bucket)
	cur, err := listedVersion(b, l.key)
	if err != nil || cur != r.Version {
		return err
	}
	prev, err := previousAnchored(tx, r, l.match)
	if err != nil {
		return err
	}
	if prev == nil {
		return b.Delete(l.key)
	}
	m, err := encodeMeta(prev)
	if err != nil {
		return consent.WrapError(consent.EINTERNAL, err, "record %s: cannot encode", prev.ID)
	}
	return b.Put(l.key, m)
}

// previousAnchored returns the newest anchored version of r.ID older than
// r that match accepts, or nil. It runs after r's key is deleted. Records
// have few versions; this walks them.
func previousAnchored(tx *bbolt.Tx, r *records.Record, match func(p *records.Record) bool) (*records.Record, error) {
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
		if p.Status == records.StatusAnchored && match(p) {
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

// findRecords pages through a listing index (byPatientOrg when f names an
// org, else byPatient): one seek, then the metadata kept in the index
// itself, so a listing never reads a record's content. EINVALID without a
// patient or with a negative limit.
func findRecords(tx *bbolt.Tx, f records.RecordFilter) ([]*records.Record, error) {
	limit, err := f.PageLimit()
	if err != nil {
		return nil, err
	}
	bucket, prefix := bucketByPatient, []byte(f.PatientRef+"/")
	if f.Org != "" {
		bucket, prefix = bucketByPatientOrg, []byte(f.PatientRef+"/"+f.Org+"/")
	}
	c := tx.Bucket(bucket).Cursor()
	rs := []*records.Record{}
	for k, v := c.Seek(append(prefix, f.After...)); k != nil && bytes.HasPrefix(k, prefix) && len(rs) < limit; k, v = c.Next() {
		id := string(k[len(prefix):])
		if id == f.After {
			continue
		}
		r, err := decodeMeta(v)
		if err != nil {
			return nil, consent.WrapError(consent.EINTEGRITY, err, "listing index entry %s is corrupt", k)
		}
		// A '/' in a ref or org (which no caller writes) could make a key
		// of another patient or org share the prefix.
		if r.ID != id || r.PatientRef != f.PatientRef || f.Org != "" && r.Org != f.Org {
			continue
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
