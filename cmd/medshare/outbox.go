package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/journal"
	"github.com/medshare/medshare/records"
)

// journalPath is the embedded ledger's access-log journal, beside the
// ledger file.
func journalPath(data string) string { return filepath.Join(data, "ledger", "access.journal") }

// embeddedAnchorInterval is how often the embedded stack cuts journaled
// access entries into a ledger block: entries wait at most about this long
// to be anchored, and a block holds every entry of the interval.
const embeddedAnchorInterval = 100 * time.Millisecond

// startAccessJournal makes reads on the embedded ledger log their access
// entries to the journal (one group-committed fsync before content leaves)
// and starts the worker that anchors them in ledger blocks.
func (m *Main) startAccessJournal(svc *records.Service) error {
	j, err := journal.Open(journal.Options{Path: journalPath(m.Config.Data), Logger: m.Logger})
	if err != nil {
		return fmt.Errorf("open access-log journal: %w", err)
	}
	m.closers = append(m.closers, j.Close)
	worker := consent.NewOutboxWorker(j, m.Consent, m.Logger)
	worker.Interval = embeddedAnchorInterval
	svc.Outbox = j
	svc.Access = records.OutboxAccessLog{Outbox: j}
	m.runWorkers(worker)
	return nil
}

// runWorkers runs the outbox worker and the given loops until Close, which
// stops them and then anchors what is still pending (bounded to 10 s; what
// remains is anchored after the next start).
func (m *Main) runWorkers(worker *consent.OutboxWorker, loops ...func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, len(loops)+1)
	for _, loop := range append(loops, func(ctx context.Context) { _ = worker.Run(ctx) }) {
		go func() {
			defer func() { done <- struct{}{} }()
			loop(ctx)
		}()
	}
	m.closers = append(m.closers, func() error {
		cancel()
		for range len(loops) + 1 {
			<-done
		}
		fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer fcancel()
		for {
			n, err := worker.Flush(fctx)
			if err != nil || n == 0 {
				return err
			}
		}
	})
}
