package consent_test

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
)

// memOutbox is a minimal consent.Outbox for testing the worker.
type memOutbox struct {
	mu sync.Mutex
	m  map[string]*consent.OutboxEntry
}

func (o *memOutbox) Enqueue(_ context.Context, e consent.AccessEntry) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.m[e.ID]; ok {
		return consent.Errorf(consent.ECONFLICT, "dup")
	}
	o.m[e.ID] = &consent.OutboxEntry{Entry: e, Status: consent.OutboxPending}
	return nil
}

func (o *memOutbox) list(pending bool) []consent.OutboxEntry {
	var out []consent.OutboxEntry
	for _, e := range o.m {
		if !pending || e.Status == consent.OutboxPending {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Entry.ID < out[j].Entry.ID })
	return out
}

func (o *memOutbox) PendingEntries(_ context.Context, limit int) ([]consent.OutboxEntry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.list(true)
	return out[:min(limit, len(out))], nil
}

func (o *memOutbox) MarkEntriesAnchored(_ context.Context, ids []string, tx string, block uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range ids {
		if e, ok := o.m[id]; ok {
			e.Status, e.Tx, e.Block = consent.OutboxAnchored, tx, block
		}
	}
	return nil
}

func (o *memOutbox) OutboxEntries(_ context.Context, _, _ string, _ int) ([]consent.OutboxEntry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.list(false), nil
}

func (o *memOutbox) ListPending(_ context.Context, _, _ string, _ int) ([]consent.OutboxEntry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.list(true), nil
}

func outboxFixture(t *testing.T, n int) (*memOutbox, *consent.Service, []consent.AccessEntry) {
	t.Helper()
	refs, err := consent.NewPseudonymizer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ob := &memOutbox{m: map[string]*consent.OutboxEntry{}}
	svc := consent.NewService(consenttest.NewMemLedger())
	var es []consent.AccessEntry
	for i := range n {
		e := consent.AccessEntry{ID: "a-" + string(rune('a'+i)), Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC),
			Action: "read", RecordID: "r-1", PatientRef: refs.PatientRef("p-1"), ActorRef: refs.SubjectRef("dr"),
			Role: "provider", Org: "h", Purpose: "TREAT", Decision: "allow", Reasons: []string{"ok"}, PolicyDigest: "d"}
		if err := ob.Enqueue(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return ob, svc, es
}

func TestOutboxWorkerFlush(t *testing.T) {
	ctx := context.Background()
	t.Run("OK_AnchorsPendingInOneBatch", func(t *testing.T) {
		ob, svc, es := outboxFixture(t, 5)
		w := consent.NewOutboxWorker(ob, svc, nil)
		n, err := w.Flush(ctx)
		if err != nil || n != 5 {
			t.Fatalf("Flush = %d, %v", n, err)
		}
		all, _ := ob.OutboxEntries(ctx, "", "", 0)
		txs := map[string]bool{}
		for _, e := range all {
			if e.Status != consent.OutboxAnchored || e.Tx == "" {
				t.Fatalf("entry %+v not anchored", e)
			}
			txs[e.Tx] = true
		}
		if len(txs) != 1 {
			t.Fatalf("entries spread over %d txs, want one batch", len(txs))
		}
		for _, e := range es {
			if _, err := svc.Access(ctx, e.ID); err != nil {
				t.Fatalf("entry %s not on ledger: %v", e.ID, err)
			}
		}
		if n, err := w.Flush(ctx); n != 0 || err != nil {
			t.Fatalf("second Flush = %d, %v; want nothing to do", n, err)
		}
	})
	t.Run("OK_RetryAfterLostOutcomeAnchorsNothingTwice", func(t *testing.T) {
		ob, svc, es := outboxFixture(t, 3)
		// A batch committed but the worker crashed before marking it.
		_, rcpt, err := svc.LogAccessBatch(ctx, es[:2])
		if err != nil {
			t.Fatal(err)
		}
		w := consent.NewOutboxWorker(ob, svc, nil)
		if _, err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		all, _ := ob.OutboxEntries(ctx, "", "", 0)
		for _, e := range all {
			if e.Status != consent.OutboxAnchored {
				t.Fatalf("entry %s still pending", e.Entry.ID)
			}
			if slices.ContainsFunc(es[:2], func(x consent.AccessEntry) bool { return x.ID == e.Entry.ID }) && e.Tx != rcpt.TxID {
				t.Fatalf("entry %s marked with tx %s, want its original %s", e.Entry.ID, e.Tx, rcpt.TxID)
			}
		}
		page, err := svc.AccessLog(ctx, consent.AccessFilter{Limit: 100})
		if err != nil || len(page.Entries) != 3 {
			t.Fatalf("ledger holds %d entries (%v), want 3", len(page.Entries), err)
		}
	})
	t.Run("OK_RunAnchorsWithoutWaitingForInterval", func(t *testing.T) {
		ob, svc, _ := outboxFixture(t, 2)
		w := consent.NewOutboxWorker(ob, svc, nil)
		w.Interval = time.Hour // the first pass runs at once, with no idle wait
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			p, _ := ob.PendingEntries(ctx, 10)
			if len(p) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("worker never anchored the entries")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("Run returned %v", err)
		}
	})
}
