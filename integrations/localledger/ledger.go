// Package localledger is medshare's embedded, single-node ledger: it hosts
// the consent contract over one bbolt file that holds a chain of signed
// blocks, the world state and a tx index.
//
// A single committer goroutine groups submitted transactions (up to
// Options.MaxBatch, or for Options.MaxDelay after the first), runs each
// through consent.Apply, and writes the block, the state changes and the tx
// index in one fsync'd bbolt transaction. A tx the contract rejects is rolled
// back and left out of the block. Submitters hear back only after the commit,
// so an acknowledged tx survives a crash. Verify replays the file from
// genesis and checks every hash, link, signature and the resulting state.
package localledger

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/medshare/medshare/consent"
)

// Defaults for zero Options fields.
const (
	DefaultMaxBatch = 256
	DefaultMaxDelay = time.Duration(0)
	DefaultNodeID   = "local"
)

// openTimeout bounds the wait for the file lock, so a second process gets a
// clear error instead of hanging.
const openTimeout = 2 * time.Second

// subscriberBuffer is each event channel's capacity; a subscriber further
// behind than this is dropped.
const subscriberBuffer = 1024

// Options configure Open.
type Options struct {
	// Path of the bbolt file; its directory is created 0700, the file 0600.
	Path string
	// Key is the node's P-256 key that signs every block. Required.
	Key *ecdsa.PrivateKey
	// NodeID is recorded as the creator of every tx; a consent.ValidID.
	// Default DefaultNodeID.
	NodeID string
	// MaxBatch caps the txs per block. Default DefaultMaxBatch.
	MaxBatch int
	// MaxDelay is how long the committer waits for more txs after taking
	// those already queued. Default DefaultMaxDelay (0): commit at once;
	// batches still form while the previous block is being fsync'd.
	MaxDelay time.Duration
	// Now is the clock for block times. Default time.Now.
	Now func() time.Time
	// Logger receives commit failures and debug traces. Default discards.
	Logger *slog.Logger
}

// Ledger is the embedded ledger. It is safe for concurrent use.
type Ledger struct {
	db       *bolt.DB
	path     string
	key      *ecdsa.PrivateKey
	nodeID   string
	maxBatch int
	maxDelay time.Duration
	now      func() time.Time
	log      *slog.Logger

	queue   chan *request // unbuffered: a send succeeds only into a live committer
	closing chan struct{} // closed by Close
	stopped chan struct{} // closed when the committer has exited
	height  atomic.Uint64

	// Committer-owned: the tip the next block chains on.
	tipHash string
	tipTime time.Time

	mu     sync.RWMutex // guards closed against db.Close during reads
	closed bool

	subs subscribers

	closeOnce sync.Once
	closeErr  error
}

var _ consent.Ledger = (*Ledger)(nil)

// Open opens or creates the ledger at o.Path, writing a signed genesis block
// on first use, and starts the committer. Errors: EINVALID for bad options or
// a ledger signed by another key, EUNAVAILABLE when the file cannot be opened
// or is locked by another process, EINTEGRITY when it is not a sound ledger.
func Open(ctx context.Context, o Options) (*Ledger, error) {
	l, err := newLedger(o)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, consent.WrapError(consent.EUNAVAILABLE, err, "open ledger")
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o700); err != nil {
		return nil, consent.WrapError(consent.EUNAVAILABLE, err, "open ledger: create directory")
	}
	l.db, err = bolt.Open(o.Path, 0o600, &bolt.Options{Timeout: openTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, consent.WrapError(consent.EUNAVAILABLE, err, "open ledger: %s is in use by another process", o.Path)
	} else if err != nil {
		return nil, consent.WrapError(consent.EUNAVAILABLE, err, "open ledger %s", o.Path)
	}
	if err := l.load(); err != nil {
		_ = l.db.Close()
		return nil, err
	}
	go l.run()
	l.log.Debug("ledger open", "path", o.Path, "height", l.Height())
	return l, nil
}

// newLedger validates o and fills in defaults.
func newLedger(o Options) (*Ledger, error) {
	if o.Path == "" {
		return nil, consent.Errorf(consent.EINVALID, "open ledger: no path")
	}
	if o.Key == nil || o.Key.Curve != elliptic.P256() {
		return nil, consent.Errorf(consent.EINVALID, "open ledger: node key must be ECDSA P-256")
	}
	l := &Ledger{
		path: o.Path, key: o.Key, nodeID: o.NodeID, maxBatch: o.MaxBatch, maxDelay: o.MaxDelay,
		now: o.Now, log: o.Logger,
		queue: make(chan *request), closing: make(chan struct{}), stopped: make(chan struct{}),
	}
	if l.nodeID == "" {
		l.nodeID = DefaultNodeID
	}
	if !consent.ValidID(l.nodeID) {
		return nil, consent.Errorf(consent.EINVALID, "open ledger: node id %q is invalid", l.nodeID)
	}
	if l.maxBatch <= 0 {
		l.maxBatch = DefaultMaxBatch
	}
	if l.maxDelay < 0 {
		l.maxDelay = DefaultMaxDelay
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.subs.m = map[*subscriber]struct{}{}
	return l, nil
}

// load creates the buckets and genesis on first use, then reads the tip and
// checks that it was signed by this node's key.
func (l *Ledger) load() error {
	err := l.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketMeta)) != nil {
			return nil
		}
		for _, name := range []string{bucketBlocks, bucketState, bucketTxs, bucketMeta} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		g, err := newBlock(l.key, 0, zeroHash, l.blockTime(time.Time{}), nil)
		if err != nil {
			return err
		}
		return bs.putBlock(g)
	})
	if err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "open ledger: write genesis")
	}
	var tip *Block
	err = l.db.View(func(tx *bolt.Tx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		h, err := bs.height()
		if err != nil {
			return err
		}
		tip, err = bs.block(h)
		return err
	})
	if err != nil {
		return consent.WrapError(consent.EINTEGRITY, err, "open ledger: read tip")
	}
	if reason := tip.check(&l.key.PublicKey); reason != "" {
		return consent.Errorf(consent.EINVALID, "open ledger: tip block %d: %s (another node's key?)", tip.Header.Height, reason)
	}
	l.tipHash, l.tipTime = tip.Hash, tip.Header.Time
	l.height.Store(tip.Header.Height)
	return nil
}

// blockTime is the time for a block after one at prev: now in UTC at
// microsecond precision, never earlier than prev so block times only grow.
func (l *Ledger) blockTime(prev time.Time) time.Time {
	t := l.now().UTC().Truncate(time.Microsecond)
	if t.Before(prev) {
		return prev
	}
	return t
}

// Path returns the ledger file's path.
func (l *Ledger) Path() string { return l.path }

// Height returns the height of the last committed block (0: only genesis).
func (l *Ledger) Height() uint64 { return l.height.Load() }

// Evaluate runs the query op(args) against committed state. Errors: EINVALID
// when op is not a query, the contract's errors, EUNAVAILABLE when closed or
// ctx has ended.
func (l *Ledger) Evaluate(ctx context.Context, op string, args []byte) ([]byte, error) {
	if !consent.IsQuery(op) {
		return nil, consent.Errorf(consent.EINVALID, "evaluate: %q is not a query", op)
	}
	var out []byte
	err := l.view(ctx, func(bs *buckets) error {
		var err error
		out, err = consent.Query(readState{b: bs.state, now: l.now().UTC()}, op, args)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", op, err)
	}
	return out, nil
}

// TxBlock returns the height of the block that committed txID. Errors:
// ENOTFOUND for an unknown tx, EUNAVAILABLE when closed.
func (l *Ledger) TxBlock(ctx context.Context, txID string) (uint64, error) {
	var h uint64
	err := l.view(ctx, func(bs *buckets) error {
		v := bs.txs.Get([]byte(txID))
		if v == nil {
			return consent.Errorf(consent.ENOTFOUND, "transaction %q not found", txID)
		}
		var err error
		h, err = parseHeight(v)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("tx block: %w", err)
	}
	return h, nil
}

// Block returns the committed block at height. Errors: ENOTFOUND above the
// current height, EUNAVAILABLE when closed.
func (l *Ledger) Block(ctx context.Context, height uint64) (*Block, error) {
	var b *Block
	err := l.view(ctx, func(bs *buckets) error {
		top, err := bs.height()
		if err != nil {
			return err
		}
		if height > top {
			return consent.Errorf(consent.ENOTFOUND, "block %d not found", height)
		}
		b, err = bs.block(height)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("block: %w", err)
	}
	return b, nil
}

// view runs fn in a bbolt read transaction while the ledger is open. Errors
// that are not already *consent.Error become EINTERNAL.
func (l *Ledger) view(ctx context.Context, fn func(*buckets) error) error {
	if err := ctx.Err(); err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "request ended")
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return consent.Errorf(consent.EUNAVAILABLE, "ledger is closed")
	}
	err := l.db.View(func(tx *bolt.Tx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		return fn(bs)
	})
	var ce *consent.Error
	if err != nil && !errors.As(err, &ce) {
		return consent.WrapError(consent.EINTERNAL, err, "read ledger")
	}
	return err
}

// Ping returns nil while the ledger is open and EUNAVAILABLE after Close.
func (l *Ledger) Ping(ctx context.Context) error {
	select {
	case <-l.closing:
		return consent.Errorf(consent.EUNAVAILABLE, "ledger is closed")
	default:
		return nil
	}
}

// Close finishes the batch being committed, stops the committer, closes
// every event channel and the file. Submits waiting to be picked up get
// EUNAVAILABLE. Calling Close again returns the first call's result.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.stopped
		l.subs.closeAll()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.closed = true
		if err := l.db.Close(); err != nil {
			l.closeErr = consent.WrapError(consent.EINTERNAL, err, "close ledger")
		}
	})
	return l.closeErr
}
