package consent

import (
	"maps"
	"slices"
	"time"
)

// MemState is an in-memory State for tests and for replaying a ledger. It is
// not safe for concurrent use.
type MemState struct {
	Data      map[string][]byte
	ID        string
	Time      time.Time
	Submitter string
}

// NewMemState returns an empty MemState.
func NewMemState() *MemState { return &MemState{Data: map[string][]byte{}} }

// Get implements State.
func (m *MemState) Get(key string) ([]byte, error) { return m.Data[key], nil }

// Put implements State.
func (m *MemState) Put(key string, value []byte) error {
	m.Data[key] = slices.Clone(value)
	return nil
}

// Range implements State, in ascending key order.
func (m *MemState) Range(start, end string, fn func(string, []byte) error) error {
	for _, k := range slices.Sorted(maps.Keys(m.Data)) {
		if k < start || k >= end {
			continue
		}
		if err := fn(k, m.Data[k]); err != nil {
			if err == ErrStopRange {
				return nil
			}
			return err
		}
	}
	return nil
}

// TxID implements State.
func (m *MemState) TxID() string { return m.ID }

// TxTime implements State.
func (m *MemState) TxTime() time.Time { return m.Time }

// Creator implements State.
func (m *MemState) Creator() string { return m.Submitter }
