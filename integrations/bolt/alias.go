package bolt

import (
	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
)

// saveAlias stores ref → id. Saving the same pair again writes nothing.
// EINVALID if either is empty; ECONFLICT if ref stands for another id.
func saveAlias(tx *bbolt.Tx, ref, id string) error {
	if ref == "" || id == "" {
		return consent.Errorf(consent.EINVALID, "alias ref and id must not be empty")
	}
	b := tx.Bucket(bucketAliases)
	switch cur := b.Get([]byte(ref)); {
	case cur == nil:
		return b.Put([]byte(ref), []byte(id))
	case string(cur) != id:
		return consent.Errorf(consent.ECONFLICT, "alias %s already stands for another id", ref)
	}
	return nil
}

// aliases returns the id of every ref it knows.
func aliases(tx *bbolt.Tx, refs []string) map[string]string {
	b := tx.Bucket(bucketAliases)
	m := make(map[string]string, len(refs))
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		if id := b.Get([]byte(ref)); id != nil {
			m[ref] = string(id)
		}
	}
	return m
}
