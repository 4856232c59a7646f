package consenttest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/medshare/medshare/consent"
)

// subscriberBuffer is how many events a subscriber may fall behind before
// MemLedger drops it.
const subscriberBuffer = 256

var _ consent.Ledger = (*MemLedger)(nil)

// MemLedger is an in-memory consent.Ledger for unit tests of the layers
// above the ledger. Each submitted transaction runs the contract under a
// mutex against a copy of the committed state; an accepted one is committed
// as a block of its own and published to subscribers, a rejected one leaves
// nothing behind, as on a real host. Copying the state makes Submit O(size
// of state): fine for tests, not for production.
type MemLedger struct {
	// Now stamps transactions; time.Now when nil. Set it before first use.
	Now func() time.Time

	mu     sync.RWMutex
	state  map[string][]byte
	height uint64
	blocks map[string]uint64 // tx id → block
	subs   map[chan consent.Event]struct{}
	closed bool
	done   chan struct{} // closed by Close, ends subscription watchers
}

// NewMemLedger returns an empty, open MemLedger.
func NewMemLedger() *MemLedger {
	return &MemLedger{
		state:  map[string][]byte{},
		blocks: map[string]uint64{},
		subs:   map[chan consent.Event]struct{}{},
		done:   make(chan struct{}),
	}
}

// Submit applies op to a copy of the state and commits the copy if the
// contract accepts it. It returns the contract's error (EINVALID for a query
// op), or EUNAVAILABLE when ctx is done or the ledger closed.
func (l *MemLedger) Submit(ctx context.Context, op string, args []byte) ([]byte, consent.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return nil, consent.Receipt{}, consent.WrapError(consent.EUNAVAILABLE, err, "submit %s", op)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, consent.Receipt{}, consent.Errorf(consent.EUNAVAILABLE, "ledger is closed")
	}
	block := l.height + 1
	st := &consent.MemState{
		Data: maps.Clone(l.state), ID: fmt.Sprintf("memtx-%d", block),
		Time: l.now(), Submitter: "memledger",
	}
	out, err := consent.Apply(st, op, args)
	if err != nil {
		return nil, consent.Receipt{}, err
	}
	l.state, l.height, l.blocks[st.ID] = st.Data, block, block
	l.publish(consent.Event{Op: op, TxID: st.ID, Block: block, Time: st.Time, Payload: slices.Clone(out)})
	return out, consent.Receipt{TxID: st.ID, Block: block}, nil
}

// Evaluate runs a query against the committed state: EINVALID for a
// state-changing op, EUNAVAILABLE when ctx is done or the ledger closed.
func (l *MemLedger) Evaluate(ctx context.Context, op string, args []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, consent.WrapError(consent.EUNAVAILABLE, err, "evaluate %s", op)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, consent.Errorf(consent.EUNAVAILABLE, "ledger is closed")
	}
	return consent.Query(readOnly{&consent.MemState{Data: l.state}}, op, args)
}

// TxBlock returns the block of a committed transaction, or ENOTFOUND.
func (l *MemLedger) TxBlock(ctx context.Context, txID string) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	b, ok := l.blocks[txID]
	if !ok {
		return 0, consent.Errorf(consent.ENOTFOUND, "transaction %q not found", txID)
	}
	return b, nil
}

// Subscribe delivers an event for each transaction committed after the
// call. The channel closes when ctx ends, when the ledger closes, or when
// the subscriber falls more than 256 events behind.
func (l *MemLedger) Subscribe(ctx context.Context) <-chan consent.Event {
	ch := make(chan consent.Event, subscriberBuffer)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		close(ch)
		return ch
	}
	l.subs[ch] = struct{}{}
	go func() {
		select {
		case <-ctx.Done():
		case <-l.done:
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.drop(ch)
	}()
	return ch
}

// Ping returns EUNAVAILABLE once the ledger is closed.
func (l *MemLedger) Ping(ctx context.Context) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return consent.Errorf(consent.EUNAVAILABLE, "ledger is closed")
	}
	return nil
}

// Close closes every subscription; later calls fail with EUNAVAILABLE.
// Closing twice is harmless.
func (l *MemLedger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
		for ch := range l.subs {
			l.drop(ch)
		}
	}
	return nil
}

func (l *MemLedger) now() time.Time {
	if l.Now != nil {
		return l.Now().UTC().Round(0)
	}
	return time.Now().UTC().Round(0)
}

// publish hands ev to every subscriber without blocking; one whose buffer
// is full is dropped, so a slow reader never stalls commits. l.mu is held.
func (l *MemLedger) publish(ev consent.Event) {
	for ch := range l.subs {
		select {
		case ch <- ev:
		default:
			l.drop(ch)
		}
	}
}

// drop ends a subscription once. l.mu is held.
func (l *MemLedger) drop(ch chan consent.Event) {
	if _, ok := l.subs[ch]; ok {
		delete(l.subs, ch)
		close(ch)
	}
}

// readOnly is the State MemLedger evaluates queries on: the contract never
// writes in a query, and this makes sure of it.
type readOnly struct{ *consent.MemState }

// Put refuses every write.
func (readOnly) Put(string, []byte) error {
	return consent.Errorf(consent.EINTERNAL, "write during a query")
}

// Dump returns every committed state key and value as text, for tests that
// play a ledger reader looking for what must not be there.
func (l *MemLedger) Dump() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(l.state)) {
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, l.state[k]...)
		b = append(b, '\n')
	}
	return string(b)
}
