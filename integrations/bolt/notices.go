package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

var _ records.NoticeStore = (*RecordStore)(nil)

// SaveNotice implements records.NoticeStore, in one transaction: the first
// save of an id wins, and saving it again (even with other fields) changes
// nothing. EINVALID without an id or patientRef, or with a '/' in either.
func (s *RecordStore) SaveNotice(ctx context.Context, n *records.Notice) error {
	switch {
	case n == nil || n.ID == "" || n.PatientRef == "":
		return consent.Errorf(consent.EINVALID, "notice needs an id and a patientRef")
	case strings.Contains(n.ID, "/") || strings.Contains(n.PatientRef, "/"):
		return consent.Errorf(consent.EINVALID, "notice %q: id and patientRef must not contain '/'", n.ID)
	}
	v, err := json.Marshal(n)
	if err != nil {
		return consent.WrapError(consent.EINVALID, err, "notice %s: cannot encode", n.ID)
	}
	return s.db.update(ctx, "save notice", func(tx *bbolt.Tx) error {
		ids := tx.Bucket(bucketNoticeIDs)
		if ids.Get([]byte(n.ID)) != nil {
			return nil
		}
		if err := ids.Put([]byte(n.ID), []byte(n.PatientRef)); err != nil {
			return err
		}
		return tx.Bucket(bucketNotices).Put(noticeKey(n.PatientRef, n.ID), v)
	})
}

// Notices implements records.NoticeStore: one seek in the notices bucket,
// whose keys start with the patient. EINVALID without a patient or with a
// negative limit.
func (s *RecordStore) Notices(ctx context.Context, f records.NoticeFilter) ([]*records.Notice, error) {
	limit, err := f.PageLimit()
	if err != nil {
		return nil, err
	}
	ns := []*records.Notice{}
	err = s.db.view(ctx, "list notices", func(tx *bbolt.Tx) error {
		prefix := []byte(f.PatientRef + "/")
		c := tx.Bucket(bucketNotices).Cursor()
		for k, v := c.Seek(noticeKey(f.PatientRef, f.After)); k != nil && bytes.HasPrefix(k, prefix) && len(ns) < limit; k, v = c.Next() {
			if string(k[len(prefix):]) == f.After {
				continue
			}
			var n records.Notice
			if err := json.Unmarshal(v, &n); err != nil {
				return consent.WrapError(consent.EINTEGRITY, err, "stored notice %s is corrupt", k)
			}
			if n.PatientRef != f.PatientRef { // a ref with '/', which SaveNotice refuses
				continue
			}
			ns = append(ns, &n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ns, nil
}

// noticeKey returns "<patientRef>/<id>", a notice's key.
func noticeKey(patientRef, id string) []byte {
	return []byte(patientRef + "/" + id)
}
