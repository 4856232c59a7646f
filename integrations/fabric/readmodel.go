package fabric

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/medshare/medshare/consent"
)

// progressEvery is how often RunReadModel logs how far it has come.
const progressEvery = 30 * time.Second

// RunReadModel keeps store's consents in step with the channel: it follows
// blocks from the one after store.Checkpoint(name), so blocks committed
// while it was not running are replayed, saves the consent carried by
// every GrantConsent and RevokeConsent event (SaveConsent ignores stale
// versions, so replays are harmless), and records each block with
// SaveCheckpoint(name, block) once applied. Store failures are retried with
// backoff: a block is never skipped. It returns nil when ctx ends or the
// Ledger closes; EINVALID for a nil store or an empty name. Progress is in
// LastEventBlock and in the log.
func (l *Ledger) RunReadModel(ctx context.Context, store consent.ConsentStore, name string) error {
	if store == nil || name == "" {
		return consent.Errorf(consent.EINVALID, "read model needs a store and a name")
	}
	ctx, cancel, ok := l.listen(ctx)
	if !ok {
		if l.closed() {
			return errClosed()
		}
		return nil
	}
	defer l.wg.Done()
	defer cancel()
	log := l.log.With("readmodel", name)

	var cp uint64
	if !l.retryStore(ctx, log, "read checkpoint", func() (err error) {
		cp, err = store.Checkpoint(ctx, name)
		return err
	}) {
		return nil
	}
	log.Info("fabric read model started", "checkpoint", cp)
	lastLog := time.Now()
	l.follow(ctx, "readmodel "+name, cp+1, func(ctx context.Context, b parsedBlock) error {
		for _, ev := range b.events {
			if ev.Op != consent.OpGrantConsent && ev.Op != consent.OpRevokeConsent {
				continue
			}
			var c consent.Consent
			if err := json.Unmarshal(ev.Payload, &c); err != nil {
				// Committed data cannot be fixed by retrying: report and go on.
				log.Error("fabric read model: undecodable consent event", "block", b.number, "tx", ev.TxID, "err", errText(err))
				continue
			}
			if !l.retryStore(ctx, log, "save consent", func() error { return store.SaveConsent(ctx, c) }) {
				return ctx.Err()
			}
			log.Debug("fabric read model applied", "op", ev.Op, "consent", c.ID, "version", c.Version, "block", b.number)
		}
		if !l.retryStore(ctx, log, "save checkpoint", func() error { return store.SaveCheckpoint(ctx, name, b.number) }) {
			return ctx.Err()
		}
		if time.Since(lastLog) >= progressEvery {
			log.Info("fabric read model progress", "block", b.number)
			lastLog = time.Now()
		}
		return nil
	})
	log.Info("fabric read model stopped", "block", l.LastEventBlock())
	return nil
}

// retryStore runs fn until it succeeds, backing off between failures;
// false when ctx ended first.
func (l *Ledger) retryStore(ctx context.Context, log *slog.Logger, what string, fn func() error) bool {
	for n := 0; ; n++ {
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("fabric read model: store failed, retrying", "op", what, "err", errText(err))
		if !sleep(ctx, listenBackoff(n)) {
			return false
		}
	}
}
