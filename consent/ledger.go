package consent

import (
	"context"
	"encoding/json"
	"time"
)

// Receipt says where a submitted transaction was committed.
type Receipt struct {
	TxID  string `json:"tx"`
	Block uint64 `json:"block"`
}

// Event is published for every committed transaction.
type Event struct {
	Op      string          `json:"op"`
	TxID    string          `json:"tx"`
	Block   uint64          `json:"block"`
	Time    time.Time       `json:"time"`
	Payload json.RawMessage `json:"payload"` // the operation's result
}

// Ledger hosts the contract. Implementations: localledger.Ledger (embedded)
// and fabric.Ledger.
type Ledger interface {
	// Submit orders and commits op(args) and returns only once the
	// transaction is durable. It returns the contract's result and the
	// receipt. Contract rejections come back as *Error with the contract's
	// code; a ledger that cannot be reached gives EUNAVAILABLE.
	Submit(ctx context.Context, op string, args []byte) ([]byte, Receipt, error)
	// Evaluate runs the query op(args) against committed state.
	Evaluate(ctx context.Context, op string, args []byte) ([]byte, error)
	// TxBlock returns the block that committed transaction txID, or
	// ENOTFOUND.
	TxBlock(ctx context.Context, txID string) (uint64, error)
	// Subscribe delivers every event committed after the call until ctx
	// ends. A subscriber that falls behind loses events rather than stall
	// the ledger; its channel is then closed.
	Subscribe(ctx context.Context) <-chan Event
	// Ping returns EUNAVAILABLE when the ledger cannot serve requests.
	Ping(ctx context.Context) error
	// Close releases the ledger.
	Close() error
}
