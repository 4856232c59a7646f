package localledger

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
)

// writeState is the consent.State a transaction sees inside the committer's
// bbolt write transaction. It keeps an undo log of the first old value of
// every key the current tx writes, so a tx the contract rejects can be
// rolled back without disturbing the other txs of its block.
type writeState struct {
	b       *bolt.Bucket
	id      string
	time    time.Time
	creator string
	undo    []undoEntry
	touched map[string]bool
}

// undoEntry restores one key: to old when existed, else by deleting it.
type undoEntry struct {
	key     string
	old     []byte
	existed bool
}

// begin starts a new tx with the given metadata and an empty undo log.
func (s *writeState) begin(id string, t time.Time, creator string) {
	s.id, s.time, s.creator = id, t, creator
	s.undo = s.undo[:0]
	s.touched = map[string]bool{}
}

// rollback undoes the current tx's writes, newest first.
func (s *writeState) rollback() error {
	for i := len(s.undo) - 1; i >= 0; i-- {
		u := s.undo[i]
		var err error
		if u.existed {
			err = s.b.Put([]byte(u.key), u.old)
		} else {
			err = s.b.Delete([]byte(u.key))
		}
		if err != nil {
			return fmt.Errorf("roll back key %q: %w", u.key, err)
		}
	}
	s.undo = s.undo[:0]
	return nil
}

// Get implements consent.State. The value is copied: bbolt's slices are only
// valid until the bucket changes.
func (s *writeState) Get(key string) ([]byte, error) {
	return bytes.Clone(s.b.Get([]byte(key))), nil
}

// Put implements consent.State, logging the key's old value on first touch.
func (s *writeState) Put(key string, value []byte) error {
	if !s.touched[key] {
		old := s.b.Get([]byte(key))
		s.undo = append(s.undo, undoEntry{key: key, old: bytes.Clone(old), existed: old != nil})
		s.touched[key] = true
	}
	if err := s.b.Put([]byte(key), bytes.Clone(value)); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	return nil
}

// Range implements consent.State.
func (s *writeState) Range(start, end string, fn func(string, []byte) error) error {
	return rangeBucket(s.b, start, end, fn)
}

// TxID implements consent.State.
func (s *writeState) TxID() string { return s.id }

// TxTime implements consent.State.
func (s *writeState) TxTime() time.Time { return s.time }

// Creator implements consent.State.
func (s *writeState) Creator() string { return s.creator }

// readState is the consent.State queries run on: committed state in a bbolt
// read transaction. Put always fails.
type readState struct {
	b   *bolt.Bucket
	now time.Time
}

// Get implements consent.State.
func (s readState) Get(key string) ([]byte, error) { return s.b.Get([]byte(key)), nil }

// Put implements consent.State by refusing: a query that writes is a bug.
func (s readState) Put(key string, _ []byte) error {
	return consent.Errorf(consent.EINTERNAL, "query tried to write %q", key)
}

// Range implements consent.State.
func (s readState) Range(start, end string, fn func(string, []byte) error) error {
	return rangeBucket(s.b, start, end, fn)
}

// TxID implements consent.State; queries have no transaction.
func (s readState) TxID() string { return "" }

// TxTime implements consent.State with the time the query started.
func (s readState) TxTime() time.Time { return s.now }

// Creator implements consent.State; queries have no creator.
func (s readState) Creator() string { return "" }

// rangeBucket calls fn for each key in [start, end) of b, in order, stopping
// quietly on consent.ErrStopRange.
func rangeBucket(b *bolt.Bucket, start, end string, fn func(string, []byte) error) error {
	c := b.Cursor()
	for k, v := c.Seek([]byte(start)); k != nil && string(k) < end; k, v = c.Next() {
		if err := fn(string(k), v); err != nil {
			if errors.Is(err, consent.ErrStopRange) {
				return nil
			}
			return err
		}
	}
	return nil
}
