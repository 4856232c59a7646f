package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
)

var _ consent.ConsentStore = (*RecordStore)(nil)

// SaveConsent implements consent.ConsentStore: it stores c unless the
// stored copy has the same or a higher version, and moves c's index keys in
// the same transaction. EINVALID unless c has a valid id and grantee org, a
// patientRef and a version of at least 1.
func (s *RecordStore) SaveConsent(ctx context.Context, c consent.Consent) error {
	return s.db.update(ctx, "save consent", func(tx *bbolt.Tx) error {
		return saveConsent(tx, &c)
	})
}

// StoredConsents implements consent.ConsentStore: the consents of one
// patient or of one grantee org, ordered by id. EINVALID unless exactly one
// filter field is set.
func (s *RecordStore) StoredConsents(ctx context.Context, f consent.ConsentFilter) ([]consent.Consent, error) {
	var cs []consent.Consent
	err := s.db.view(ctx, "list stored consents", func(tx *bbolt.Tx) (err error) {
		cs, err = storedConsents(tx, f)
		return err
	})
	return cs, err
}

// SaveCheckpoint implements consent.ConsentStore. EINVALID for an empty
// name.
func (s *RecordStore) SaveCheckpoint(ctx context.Context, name string, block uint64) error {
	if name == "" {
		return consent.Errorf(consent.EINVALID, "checkpoint name is empty")
	}
	return s.db.update(ctx, "save checkpoint", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketCheckpoints).Put([]byte(name), binary.BigEndian.AppendUint64(nil, block))
	})
}

// Checkpoint implements consent.ConsentStore: 0 when name has none.
// EINTEGRITY if the stored value is not 8 bytes.
func (s *RecordStore) Checkpoint(ctx context.Context, name string) (uint64, error) {
	var block uint64
	err := s.db.view(ctx, "get checkpoint", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketCheckpoints).Get([]byte(name))
		switch {
		case v == nil:
			return nil
		case len(v) != 8:
			return consent.Errorf(consent.EINTEGRITY, "checkpoint %s is corrupt", name)
		}
		block = binary.BigEndian.Uint64(v)
		return nil
	})
	return block, err
}

// validConsent checks what the store's keys rely on; the ledger has
// validated the rest.
func validConsent(c *consent.Consent) error {
	switch {
	case !consent.ValidID(c.ID):
		return consent.Errorf(consent.EINVALID, "consent id %q is invalid", c.ID)
	case !validRef(c.PatientRef):
		return consent.Errorf(consent.EINVALID, "consent %s: patientRef is invalid", c.ID)
	case !consent.ValidID(c.Grantee.Org):
		return consent.Errorf(consent.EINVALID, "consent %s: grantee org %q is invalid", c.ID, c.Grantee.Org)
	case c.Version < 1:
		return consent.Errorf(consent.EINVALID, "consent %s: version %d is below 1", c.ID, c.Version)
	}
	return nil
}

// validRef reports whether ref can be a key segment: not empty, no '/'.
func validRef(ref string) bool { return ref != "" && !strings.Contains(ref, "/") }

// saveConsent writes c and its index keys unless the stored copy is as new.
// A newer version normally keeps patient and grantee; if it does not, the
// old index keys go, so the indexes never list a consent twice.
func saveConsent(tx *bbolt.Tx, c *consent.Consent) error {
	if err := validConsent(c); err != nil {
		return err
	}
	old, err := getConsent(tx, c.ID)
	if err != nil {
		return err
	}
	if old != nil {
		if old.Version >= c.Version {
			return nil // a late or repeated event
		}
		if err := deleteConsentIndex(tx, old); err != nil {
			return err
		}
	}
	v, err := json.Marshal(c)
	if err != nil {
		return consent.WrapError(consent.EINVALID, err, "consent %s: cannot encode", c.ID)
	}
	if err := tx.Bucket(bucketConsents).Put([]byte(c.ID), v); err != nil {
		return err
	}
	if err := tx.Bucket(bucketConsentsByPatient).Put(indexKey(c.PatientRef, c.ID), []byte{}); err != nil {
		return err
	}
	return tx.Bucket(bucketConsentsByGrantee).Put(indexKey(c.Grantee.Org, c.ID), []byte{})
}

// deleteConsentIndex removes c's index keys.
func deleteConsentIndex(tx *bbolt.Tx, c *consent.Consent) error {
	if err := tx.Bucket(bucketConsentsByPatient).Delete(indexKey(c.PatientRef, c.ID)); err != nil {
		return err
	}
	return tx.Bucket(bucketConsentsByGrantee).Delete(indexKey(c.Grantee.Org, c.ID))
}

// indexKey returns "<owner>/<id>".
func indexKey(owner, id string) []byte { return []byte(owner + "/" + id) }

// getConsent returns the stored consent id, or nil. EINTEGRITY if it does
// not decode.
func getConsent(tx *bbolt.Tx, id string) (*consent.Consent, error) {
	v := tx.Bucket(bucketConsents).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var c consent.Consent
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, consent.WrapError(consent.EINTEGRITY, err, "stored consent %s is corrupt", id)
	}
	return &c, nil
}

// storedConsents seeks the index the filter names and looks each id up.
func storedConsents(tx *bbolt.Tx, f consent.ConsentFilter) ([]consent.Consent, error) {
	var b *bbolt.Bucket
	var owner string
	switch {
	case f.PatientRef != "" && f.GranteeOrg == "":
		b, owner = tx.Bucket(bucketConsentsByPatient), f.PatientRef
	case f.GranteeOrg != "" && f.PatientRef == "":
		b, owner = tx.Bucket(bucketConsentsByGrantee), f.GranteeOrg
	default:
		return nil, consent.Errorf(consent.EINVALID, "list consents by exactly one of patientRef or granteeOrg")
	}
	prefix := []byte(owner + "/")
	cs := []consent.Consent{}
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := string(k[len(prefix):])
		got, err := getConsent(tx, id)
		if err != nil {
			return nil, err
		}
		if got == nil {
			return nil, consent.Errorf(consent.EINTEGRITY, "consent index lists missing consent %s", id)
		}
		cs = append(cs, *got)
	}
	return cs, nil
}
