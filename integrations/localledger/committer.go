package localledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/medshare/medshare/consent"
)

// request is one submitted transaction waiting for its block.
type request struct {
	op   string
	args []byte
	done chan outcome // capacity 1: the committer never blocks on a submitter
}

// outcome is what the committer tells a submitter after the commit.
type outcome struct {
	out  []byte
	rcpt consent.Receipt
	err  error
}

// Submit hands op(args) to the committer and waits until the block holding
// it is durable. Errors: EINVALID for a query op; the contract's *Error when
// it rejects the tx (nothing of the tx is kept); EUNAVAILABLE when the ledger
// is closed, the commit failed, or ctx ended. When ctx ends after the
// committer took the tx, Submit returns EUNAVAILABLE but the tx may still
// commit: look it up by its effect, not by the error.
func (l *Ledger) Submit(ctx context.Context, op string, args []byte) ([]byte, consent.Receipt, error) {
	if consent.IsQuery(op) {
		return nil, consent.Receipt{}, consent.Errorf(consent.EINVALID, "submit: %q is a query; evaluate it", op)
	}
	if err := ctx.Err(); err != nil {
		return nil, consent.Receipt{}, consent.WrapError(consent.EUNAVAILABLE, err, "submit %s: not submitted", op)
	}
	req := &request{op: op, args: bytes.Clone(args), done: make(chan outcome, 1)}
	select {
	case l.queue <- req:
	case <-l.closing:
		return nil, consent.Receipt{}, consent.Errorf(consent.EUNAVAILABLE, "submit %s: ledger is closed", op)
	case <-ctx.Done():
		return nil, consent.Receipt{}, consent.WrapError(consent.EUNAVAILABLE, ctx.Err(), "submit %s: not submitted", op)
	}
	select {
	case o := <-req.done:
		if o.err != nil {
			return nil, consent.Receipt{}, fmt.Errorf("submit %s: %w", op, o.err)
		}
		return o.out, o.rcpt, nil
	case <-ctx.Done():
		return nil, consent.Receipt{}, consent.WrapError(consent.EUNAVAILABLE, ctx.Err(),
			"submit %s: stopped waiting; the transaction may still commit", op)
	}
}

// run is the committer loop: one batch at a time until Close.
func (l *Ledger) run() {
	defer close(l.stopped)
	for {
		select {
		case <-l.closing:
			return
		case first := <-l.queue:
			l.commit(l.gather(first))
		}
	}
}

// gather collects requests after first: everything already queued, up to
// MaxBatch, and then, if MaxDelay is set, whatever arrives within it. With
// no delay, batches still form under load: requests queue up while the
// previous block is being fsync'd, so one fsync serves them all.
func (l *Ledger) gather(first *request) []*request {
	batch := []*request{first}
drain:
	for len(batch) < l.maxBatch {
		select {
		case r := <-l.queue:
			batch = append(batch, r)
		default:
			break drain
		}
	}
	if l.maxDelay <= 0 {
		return batch
	}
	timer := time.NewTimer(l.maxDelay)
	defer timer.Stop()
	for len(batch) < l.maxBatch {
		select {
		case r := <-l.queue:
			batch = append(batch, r)
		case <-timer.C:
			return batch
		case <-l.closing:
			return batch
		}
	}
	return batch
}

// commit applies batch, writes its block in one bbolt transaction and only
// then answers the submitters and publishes events.
func (l *Ledger) commit(batch []*request) {
	t := l.blockTime(l.tipTime)
	height := l.height.Load() + 1
	outs := make([]outcome, len(batch))
	block, err := l.write(batch, outs, height, t)
	if err != nil {
		l.log.Error("ledger commit failed", "height", height, "txs", len(batch), "err", err)
		for i := range outs {
			outs[i] = outcome{err: consent.WrapError(consent.EUNAVAILABLE, err, "commit failed")}
		}
	}
	if block != nil {
		l.tipHash, l.tipTime = block.Hash, t
		l.height.Store(height)
		l.log.Debug("block committed", "height", height, "txs", len(block.Txs), "rejected", len(batch)-len(block.Txs))
	}
	// Publish before answering: a subscriber that subscribes after its
	// Submit returned must not see that tx, and one that subscribed before
	// has the event buffered by the time Submit returns.
	events := make([]consent.Event, 0, len(batch))
	for i, req := range batch {
		if outs[i].err == nil {
			events = append(events, consent.Event{Op: req.op, TxID: outs[i].rcpt.TxID, Block: height, Time: t, Payload: outs[i].out})
		}
	}
	l.subs.publish(events)
	for i, req := range batch {
		req.done <- outs[i]
	}
}

// write runs batch through the contract in one bbolt write transaction and
// commits it with the block; it fills outs with each tx's result or
// rejection. It returns a nil block, committing nothing, when every tx was
// rejected.
func (l *Ledger) write(batch []*request, outs []outcome, height uint64, t time.Time) (*Block, error) {
	btx, err := l.db.Begin(true)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = btx.Rollback() }() // no-op after Commit
	bs, err := openBuckets(btx)
	if err != nil {
		return nil, err
	}
	st := &writeState{b: bs.state}
	txs := make([]Tx, 0, len(batch))
	for i, req := range batch {
		id := newTxID()
		st.begin(id, t, l.nodeID)
		out, err := applySafely(st, req.op, req.args)
		if err != nil {
			if rbErr := st.rollback(); rbErr != nil {
				return nil, rbErr
			}
			outs[i].err = err
			continue
		}
		outs[i] = outcome{out: out, rcpt: consent.Receipt{TxID: id, Block: height}}
		txs = append(txs, Tx{ID: id, Op: req.op, Args: req.args, Creator: l.nodeID, Time: t})
	}
	if len(txs) == 0 {
		return nil, nil
	}
	block, err := newBlock(l.key, height, l.tipHash, t, txs)
	if err != nil {
		return nil, err
	}
	if err := bs.putBlock(block); err != nil {
		return nil, err
	}
	if err := btx.Commit(); err != nil {
		return nil, fmt.Errorf("commit block %d: %w", height, err)
	}
	return block, nil
}

// applySafely runs consent.Apply, turning a panic into EINTERNAL so one bad
// tx cannot kill the committer; the caller rolls its writes back.
func applySafely(st consent.State, op string, args []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, consent.WrapError(consent.EINTERNAL, fmt.Errorf("panic: %v", r), "apply %s", op)
		}
	}()
	out, err = consent.Apply(st, op, args)
	var ce *consent.Error
	if err != nil && !errors.As(err, &ce) {
		err = consent.WrapError(consent.EINTERNAL, err, "apply %s", op)
	}
	return out, err
}

// newTxID returns 16 random bytes in hex. Randomness is fine here: the host
// picks ids, the contract only reads them.
func newTxID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
