package consent

import (
	"context"
	"log/slog"
	"time"
)

// OutboxWorker anchors access entries from an Outbox on the ledger with
// LogAccessBatch (on Fabric; see docs/ARCHITECTURE.md). Entries are durable in the outbox
// before any content leaves; the worker only moves them to the ledger. A
// crash anywhere loses nothing: pending entries are picked up again, and a
// retried batch anchors nothing twice because the contract skips ids it
// already holds.
type OutboxWorker struct {
	Outbox   Outbox
	Ledger   *Service
	Batch    int           // entries per transaction; 0 → 500
	Interval time.Duration // idle poll interval; 0 → 200 ms
	Logger   *slog.Logger

	wake chan struct{}
}

// NewOutboxWorker returns a worker over outbox and ledger with defaults.
func NewOutboxWorker(outbox Outbox, ledger *Service, logger *slog.Logger) *OutboxWorker {
	if logger == nil {
		logger = slog.Default()
	}
	return &OutboxWorker{Outbox: outbox, Ledger: ledger, Logger: logger, wake: make(chan struct{}, 1)}
}

// Notify wakes the worker early; it never blocks.
func (w *OutboxWorker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run anchors pending entries until ctx ends: a batch at once when it
// starts, then after each Interval or Notify, and back to back while
// batches come out full. Failures are logged and retried with backoff; Run
// returns only ctx's error.
func (w *OutboxWorker) Run(ctx context.Context) error {
	interval := w.Interval
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	backoff := interval
	for {
		n, err := w.Flush(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			w.Logger.Warn("anchoring access entries failed; will retry", "err", err, "backoff", backoff)
			backoff = min(2*backoff, 10*time.Second)
			if !sleep(ctx, backoff, nil) {
				return ctx.Err()
			}
			continue
		case n >= w.batchSize():
			backoff = interval
			continue // a full batch: more are waiting, keep the delay bounded
		}
		backoff = interval
		if !sleep(ctx, interval, w.wake) {
			return ctx.Err()
		}
	}
}

// sleep waits d, or until wake fires; false when ctx ended.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// batchSize is Batch or its default.
func (w *OutboxWorker) batchSize() int {
	if w.Batch <= 0 {
		return 500
	}
	return w.Batch
}

// Flush anchors one batch of pending entries and returns how many it
// settled.
func (w *OutboxWorker) Flush(ctx context.Context) (int, error) {
	pending, err := w.Outbox.PendingEntries(ctx, w.batchSize())
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	entries := make([]AccessEntry, len(pending))
	for i, p := range pending {
		entries[i] = p.Entry
	}
	res, rcpt, err := w.Ledger.LogAccessBatch(ctx, entries)
	if err != nil {
		return 0, err
	}
	if err := w.Outbox.MarkEntriesAnchored(ctx, res.Logged, rcpt.TxID, rcpt.Block); err != nil {
		return 0, err
	}
	// Skipped entries were anchored by an earlier batch whose outcome was
	// lost (a crash between commit and marking): record where they went.
	for _, id := range res.Skipped {
		e, err := w.Ledger.Access(ctx, id)
		if err != nil {
			return 0, err
		}
		block, err := w.Ledger.Ledger.TxBlock(ctx, e.Tx)
		if err != nil {
			return 0, err
		}
		if err := w.Outbox.MarkEntriesAnchored(ctx, []string{id}, e.Tx, block); err != nil {
			return 0, err
		}
	}
	return len(pending), nil
}
