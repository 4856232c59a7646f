package consent

import (
	"errors"
	"time"
)

// State is the world state and transaction metadata a contract call sees.
// Hosts implement it: the embedded ledger over a bbolt overlay, the Fabric
// chaincode over its stub. Keys are printable ASCII.
type State interface {
	// Get returns the value stored at key, or nil if there is none.
	Get(key string) ([]byte, error)
	// Put stores value at key. Values are never empty: Fabric treats an
	// empty value as a delete.
	Put(key string, value []byte) error
	// Range calls fn for each key in [start, end) in ascending key order,
	// stopping early without error when fn returns ErrStopRange.
	Range(start, end string, fn func(key string, value []byte) error) error
	// TxID is the id of the transaction being applied.
	TxID() string
	// TxTime is the transaction's time, fixed by its host before execution.
	TxTime() time.Time
	// Creator identifies the submitting node or client identity.
	Creator() string
}

// ErrStopRange, returned by a Range callback, ends the range without error.
var ErrStopRange = errors.New("stop range")

// prefixEnd returns the exclusive end key of the range of keys with prefix.
// Keys are printable ASCII, so DEL (0x7f) sorts after all of them.
func prefixEnd(prefix string) string { return prefix + "\x7f" }
