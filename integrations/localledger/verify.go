package localledger

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/medshare/medshare/consent"
)

// Report summarizes a ledger that passed Verify.
type Report struct {
	Blocks int    // blocks checked, genesis included
	Txs    int    // transactions replayed
	Height uint64 // height of the last block
}

// VerifyError says why a ledger failed Verify and names the first block at
// fault. A missing block is named by its height; state or index entries that
// differ from the replay are named by the block that last wrote them (the
// tip when no block did). Its cause is an EINTEGRITY *consent.Error.
type VerifyError struct {
	Height uint64
	Reason string
}

// Error implements error.
func (e *VerifyError) Error() string {
	return fmt.Sprintf("ledger verification failed at block %d: %s", e.Height, e.Reason)
}

// Unwrap lets consent.ErrorCode report EINTEGRITY.
func (e *VerifyError) Unwrap() error {
	return consent.Errorf(consent.EINTEGRITY, "ledger failed verification at block %d", e.Height)
}

// Verify opens the ledger file at path read-only and checks it from genesis:
// contiguous heights up to the recorded height, each block's canonical
// encoding, header hash, link to its predecessor, Merkle root and signature
// by pub, and that every tx still applies when replayed through the contract.
// It then compares the replayed world state and tx index with the stored
// ones byte for byte. The file must not be open elsewhere (not even by a
// Ledger in this process). Errors: *VerifyError for a ledger that fails;
// ENOTFOUND for a missing file; EUNAVAILABLE when it is locked or ctx ends;
// EINVALID for a bad key.
func Verify(ctx context.Context, path string, pub *ecdsa.PublicKey) (*Report, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, consent.Errorf(consent.EINVALID, "verify ledger: node key must be ECDSA P-256")
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, consent.Errorf(consent.ENOTFOUND, "verify ledger: %s does not exist", path)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: openTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, consent.WrapError(consent.EUNAVAILABLE, err, "verify ledger: %s is in use by another process", path)
	} else if err != nil {
		return nil, consent.WrapError(consent.EUNAVAILABLE, err, "verify ledger: open %s", path)
	}
	defer func() { _ = db.Close() }()
	v := &verifier{
		pub: pub, ms: consent.NewMemState(),
		writer: map[string]uint64{}, index: map[string]uint64{},
	}
	err = db.View(func(tx *bolt.Tx) error { return v.run(ctx, tx) })
	if err != nil {
		return nil, err
	}
	return &v.rep, nil
}

// verifier carries the replay from block to block.
type verifier struct {
	pub      *ecdsa.PublicKey
	ms       *consent.MemState
	writer   map[string]uint64 // state key → height of the block that last wrote it
	index    map[string]uint64 // tx id → height, from the replay
	prevHash string
	prevTime time.Time
	rep      Report
}

// run walks every block, then compares state and index.
func (v *verifier) run(ctx context.Context, tx *bolt.Tx) error {
	bs, err := openBuckets(tx)
	if err != nil {
		return &VerifyError{Height: 0, Reason: err.Error()}
	}
	top, err := bs.height()
	if err != nil {
		return &VerifyError{Height: 0, Reason: err.Error()}
	}
	next := uint64(0)
	c := bs.blocks.Cursor()
	for k, data := c.First(); k != nil; k, data = c.Next() {
		if err := ctx.Err(); err != nil {
			return consent.WrapError(consent.EUNAVAILABLE, err, "verify ledger")
		}
		h, err := parseHeight(k)
		switch {
		case err != nil:
			return &VerifyError{Height: next, Reason: "malformed block key"}
		case h != next:
			return &VerifyError{Height: next, Reason: "block missing"}
		case h > top:
			return &VerifyError{Height: h, Reason: fmt.Sprintf("block above the recorded height %d", top)}
		}
		if reason := v.block(h, data); reason != "" {
			return &VerifyError{Height: h, Reason: reason}
		}
		next++
	}
	if next != top+1 {
		return &VerifyError{Height: next, Reason: fmt.Sprintf("block missing (recorded height %d)", top)}
	}
	v.rep.Height = top
	if bad := v.compare(bs, top); bad != nil {
		return bad
	}
	return nil
}

// block checks one stored block and replays its txs, returning a reason
// when it is at fault.
func (v *verifier) block(h uint64, data []byte) string {
	b, err := decodeBlock(data)
	if err != nil {
		return err.Error()
	}
	hd := b.Header
	switch {
	case hd.Height != h:
		return fmt.Sprintf("header says height %d", hd.Height)
	case h == 0 && (hd.Prev != zeroHash || len(b.Txs) != 0):
		return "genesis must have no predecessor and no txs"
	case h > 0 && hd.Prev != v.prevHash:
		return "previous-hash link broken"
	case h > 0 && len(b.Txs) == 0:
		return "block without txs"
	case hd.Time.Before(v.prevTime):
		return "block time earlier than its predecessor's"
	}
	if reason := b.check(v.pub); reason != "" {
		return reason
	}
	for _, t := range b.Txs {
		if reason := v.replay(h, t, hd.Time); reason != "" {
			return reason
		}
	}
	v.prevHash, v.prevTime = b.Hash, hd.Time
	v.rep.Blocks++
	v.rep.Txs += len(b.Txs)
	return ""
}

// replay applies one tx of block h to the replayed state.
func (v *verifier) replay(h uint64, t Tx, blockTime time.Time) string {
	if !t.Time.Equal(blockTime) {
		return fmt.Sprintf("tx %s time differs from the block time", t.ID)
	}
	if _, dup := v.index[t.ID]; dup || t.ID == "" {
		return fmt.Sprintf("tx id %q empty or already used", t.ID)
	}
	v.ms.ID, v.ms.Time, v.ms.Submitter = t.ID, t.Time, t.Creator
	if _, err := consent.Apply(recorder{v.ms, v.writer, h}, t.Op, t.Args); err != nil {
		return fmt.Sprintf("tx %s no longer applies: %v", t.ID, err)
	}
	v.index[t.ID] = h
	return ""
}

// compare checks the stored state and tx index against the replay and
// returns the mismatch naming the lowest block, or nil.
func (v *verifier) compare(bs *buckets, top uint64) *VerifyError {
	bad := &VerifyError{Height: math.MaxUint64}
	note := func(h uint64, reason string) {
		if h < bad.Height {
			bad.Height, bad.Reason = h, reason
		}
	}
	heightOf := func(m map[string]uint64, k string) uint64 {
		if h, ok := m[k]; ok {
			return h
		}
		return top
	}
	stored := map[string]bool{}
	_ = bs.state.ForEach(func(k, val []byte) error {
		key := string(k)
		stored[key] = true
		if want, ok := v.ms.Data[key]; !ok {
			note(top, fmt.Sprintf("state key %q was written by no tx", key))
		} else if !bytes.Equal(val, want) {
			note(heightOf(v.writer, key), fmt.Sprintf("state key %q differs from the replay", key))
		}
		return nil
	})
	for _, key := range slices.Sorted(maps.Keys(v.ms.Data)) {
		if !stored[key] {
			note(heightOf(v.writer, key), fmt.Sprintf("state key %q missing", key))
		}
	}
	indexed := map[string]bool{}
	_ = bs.txs.ForEach(func(k, val []byte) error {
		id := string(k)
		indexed[id] = true
		want, ok := v.index[id]
		if got, err := parseHeight(val); !ok || err != nil || got != want {
			note(heightOf(v.index, id), fmt.Sprintf("tx index entry %q is wrong", id))
		}
		return nil
	})
	for _, id := range slices.Sorted(maps.Keys(v.index)) {
		if !indexed[id] {
			note(v.index[id], fmt.Sprintf("tx %s missing from the index", id))
		}
	}
	if bad.Height == math.MaxUint64 {
		return nil
	}
	return bad
}

// recorder is the replay's State: a MemState that remembers which block
// last wrote each key, so a state mismatch can name a block.
type recorder struct {
	*consent.MemState
	writer map[string]uint64
	height uint64
}

// Put implements consent.State.
func (r recorder) Put(key string, value []byte) error {
	r.writer[key] = r.height
	return r.MemState.Put(key, value)
}
