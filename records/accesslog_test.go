package records_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
	"github.com/medshare/medshare/records/recordstest"
)

// droppingCursor is an outbox whose first paged ListPending call finds its
// cursor gone, as when the journal compacts away an anchored entry between
// two pages.
type droppingCursor struct {
	*recordstest.MemStore
	dropped int
}

func (d *droppingCursor) ListPending(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	if after != "" && d.dropped == 0 {
		d.dropped++
		return nil, consent.Errorf(consent.EINVALID, "cursor %q names no access entry", after)
	}
	return d.MemStore.ListPending(ctx, patientRef, after, limit)
}

// Pending entries are shown after the last ledger page, every one of them
// once and in order, even past a page of the outbox and a lost cursor.
func TestAccessLogShowsEveryPendingEntry(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	ob := &droppingCursor{MemStore: e.store}
	e.svc.Outbox = ob
	e.svc.Access = records.OutboxAccessLog{Outbox: ob}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var want []string
	for i := range 1500 {
		id := fmt.Sprintf("a-%04d", i)
		for _, patient := range []string{"p-1", "p-2"} {
			err := ob.Enqueue(ctx, consent.AccessEntry{ID: id + "-" + patient, Time: t0.Add(time.Duration(i) * time.Millisecond),
				Action: "read", RecordID: "r-1", PatientRef: e.refs.PatientRef(patient), ActorRef: e.author.Ref,
				Role: "provider", Org: "hosp-a", Purpose: "TREAT", Decision: "allow", Reasons: []string{"ok"}, PolicyDigest: "d"})
			if err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, id+"-p-1")
	}
	if err := ob.MarkEntriesAnchored(ctx, []string{"a-0007-p-1"}, "tx-1", 1); err != nil {
		t.Fatal(err)
	}
	want = append(want[:7], want[8:]...)

	page, err := e.svc.AccessLog(ctx, e.pat, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ob.dropped != 1 {
		t.Fatalf("the listing never paged past its first outbox page (dropped = %d)", ob.dropped)
	}
	// The patient's registration with hosp-a (newEnv) is on the ledger
	// page; the reads follow it, all pending.
	reads := page.Entries[:0:0]
	for _, v := range page.Entries {
		if v.Action == "read" {
			reads = append(reads, v)
		}
	}
	if len(reads) != len(want) || len(page.Entries) != len(want)+1 {
		t.Fatalf("listed %d entries (%d reads), want the registration and the %d pending reads", len(page.Entries), len(reads), len(want))
	}
	for i, v := range reads {
		if v.ID != want[i] || v.Ledger.Status != consent.OutboxPending {
			t.Fatalf("entry %d = %s (%s), want %s pending", i, v.ID, v.Ledger.Status, want[i])
		}
	}
}
