package consenttest

// The outbox conformance suite: enqueue, list, mark anchored, page.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/medshare/medshare/consent"
)

// RunOutbox is the conformance suite for consent.Outbox alone, under the
// rules RunStores lists for it; RunStores runs it too. open must return a
// new, empty outbox on every call and arrange for its release with
// t.Cleanup.
func RunOutbox(t *testing.T, open func(t *testing.T) consent.Outbox) {
	groups := []struct {
		name  string
		tests []outboxTest
	}{
		{"Enqueue", enqueueTests},
		{"PendingEntries", pendingEntriesTests},
		{"MarkEntriesAnchored", markAnchoredTests},
		{"OutboxEntries", outboxEntriesTests},
		{"ListPending", listPendingTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
			}
		})
	}
}

// outboxTest is one subtest of RunOutbox; its name says what it proves.
type outboxTest struct {
	name string
	fn   func(t *testing.T, s consent.Outbox)
}

var enqueueTests = []outboxTest{
	{"OK_EveryFieldRoundTrips", func(t *testing.T, s consent.Outbox) {
		full := newEntry("e-1", "p-1", storeT0)
		full.BreakGlass, full.Decision = true, consent.DecisionDeny
		full.Reasons = []string{"no consent for lab", "break-glass does not reach restricted categories"}
		full.AnchoredAt, full.Tx = storeT0.Add(time.Hour), "tx-earlier"
		bare := consent.AccessEntry{
			ID: "e-2", Time: storeT0.Add(time.Second), Action: "list", PatientRef: pz.PatientRef("p-1"),
			ActorRef: pz.SubjectRef("p-1"), Role: "patient", Decision: consent.DecisionAllow,
		}
		before := time.Now()
		mustEnqueue(t, s, full, bare)
		after := time.Now()
		got := mustOutboxEntries(t, s, "", "", 0)
		want := []consent.OutboxEntry{
			{Entry: full, Status: consent.OutboxPending},
			{Entry: bare, Status: consent.OutboxPending},
		}
		if diff := gocmp.Diff(want, got, storeCmpOpts, cmpopts.IgnoreFields(consent.OutboxEntry{}, "Enqueued")); diff != "" {
			t.Fatalf("OutboxEntries mismatch (-want +got):\n%s", diff)
		}
		for _, o := range got {
			if o.Enqueued.Before(before.Truncate(time.Millisecond)) || o.Enqueued.After(after) || o.Enqueued.Location() != time.UTC {
				t.Errorf("entry %s: Enqueued = %v, want a UTC time in [%v, %v]", o.Entry.ID, o.Enqueued, before, after)
			}
			if o.Entry.Time.Location() != time.UTC {
				t.Errorf("entry %s: Time = %v, want UTC", o.Entry.ID, o.Entry.Time)
			}
		}
		wantPending(t, s, 0, "e-1", "e-2")
	}},
	{"OK_TimeKeptInUTC", func(t *testing.T, s consent.Outbox) {
		e := newEntry("e-1", "p-1", storeT0.In(time.FixedZone("UTC+5:30", 5*3600+1800)))
		mustEnqueue(t, s, e)
		got := mustOutboxEntries(t, s, "", "", 0)
		if len(got) != 1 || got[0].Entry.Time.Location() != time.UTC ||
			!got[0].Entry.Time.Truncate(time.Millisecond).Equal(storeT0.Truncate(time.Millisecond)) {
			t.Errorf("OutboxEntries = %+v, want one entry at %v in UTC", got, storeT0)
		}
	}},
	{"OK_ConcurrentEnqueuesAllLand", func(t *testing.T, s consent.Outbox) {
		want := enqueueMany(t, s, 8, 6, "p-1")
		wantOutbox(t, s, "", "", 1000, ids(want)...)
		wantPending(t, s, 1000, ids(want)...)
	}},
	{"ErrConflict_DuplicateID", func(t *testing.T, s consent.Outbox) {
		first := newEntry("e-1", "p-1", storeT0)
		mustEnqueue(t, s, first)
		dup := newEntry("e-1", "p-2", storeT0.Add(time.Minute))
		dup.Decision = consent.DecisionDeny
		wantStoreCode(t, "Enqueue(duplicate)", s.Enqueue(t.Context(), dup), consent.ECONFLICT)
		got := mustOutboxEntries(t, s, "", "", 0)
		if len(got) != 1 || !gocmp.Equal(got[0].Entry, first, storeCmpOpts) {
			t.Errorf("OutboxEntries after duplicate = %+v, want only the first entry", got)
		}
		wantOutbox(t, s, first.PatientRef, "", 0, "e-1")
		wantOutbox(t, s, dup.PatientRef, "", 0)
		wantPending(t, s, 0, "e-1")
	}},
	{"ErrInvalid", func(t *testing.T, s consent.Outbox) {
		for _, tt := range []struct {
			note string
			edit func(e *consent.AccessEntry)
		}{
			{"no id", func(e *consent.AccessEntry) { e.ID = "" }},
			{"id with a slash", func(e *consent.AccessEntry) { e.ID = "e/1" }},
			{"no patientRef", func(e *consent.AccessEntry) { e.PatientRef = "" }},
			{"zero time", func(e *consent.AccessEntry) { e.Time = time.Time{} }},
		} {
			e := newEntry("e-1", "p-1", storeT0)
			tt.edit(&e)
			wantStoreCode(t, tt.note, s.Enqueue(t.Context(), e), consent.EINVALID)
		}
		wantOutbox(t, s, "", "", 0)
	}},
}

var pendingEntriesTests = []outboxTest{
	{"OK_OldestFirstWithLimit", func(t *testing.T, s consent.Outbox) {
		// Enqueued out of order; e-b and e-a share a time, so id decides.
		mustEnqueue(t, s,
			newEntry("e-3", "p-1", storeT0.Add(3*time.Second)),
			newEntry("e-b", "p-2", storeT0.Add(2*time.Second)),
			newEntry("e-1", "p-1", storeT0.Add(time.Second)),
			newEntry("e-a", "p-1", storeT0.Add(2*time.Second)),
			newEntry("e-0", "p-2", storeT0.Add(-time.Hour)),
		)
		wantPending(t, s, 3, "e-0", "e-1", "e-a")
		wantPending(t, s, 0, "e-0", "e-1", "e-a", "e-b", "e-3")
		wantPending(t, s, 1, "e-0")
	}},
	{"OK_DefaultLimit100", func(t *testing.T, s consent.Outbox) {
		want := enqueueMany(t, s, 8, 13, "p-1")
		wantPending(t, s, 0, ids(want)[:100]...)
	}},
	{"OK_NoneIsEmpty", func(t *testing.T, s consent.Outbox) {
		wantPending(t, s, 10)
	}},
	{"ErrInvalid_NegativeLimit", func(t *testing.T, s consent.Outbox) {
		_, err := s.PendingEntries(t.Context(), -1)
		wantStoreCode(t, "PendingEntries(-1)", err, consent.EINVALID)
	}},
}

var markAnchoredTests = []outboxTest{
	{"OK_MovesOutOfPending", func(t *testing.T, s consent.Outbox) {
		e1, e2, e3 := newEntry("e-1", "p-1", storeT0), newEntry("e-2", "p-1", storeT0.Add(time.Second)), newEntry("e-3", "p-2", storeT0.Add(2*time.Second))
		mustEnqueue(t, s, e1, e2, e3)
		mustMarkAnchored(t, s, []string{"e-3", "e-1"}, "tx-1", 7)
		wantPending(t, s, 0, "e-2")
		wantStatuses(t, s, "", []consent.OutboxEntry{
			{Entry: e1, Status: consent.OutboxAnchored, Tx: "tx-1", Block: 7},
			{Entry: e2, Status: consent.OutboxPending},
			{Entry: e3, Status: consent.OutboxAnchored, Tx: "tx-1", Block: 7},
		})
		mustMarkAnchored(t, s, []string{"e-2"}, "tx-2", 8)
		wantPending(t, s, 0)
		wantStatuses(t, s, e1.PatientRef, []consent.OutboxEntry{
			{Entry: e1, Status: consent.OutboxAnchored, Tx: "tx-1", Block: 7},
			{Entry: e2, Status: consent.OutboxAnchored, Tx: "tx-2", Block: 8},
		})
	}},
	{"OK_RepeatIsHarmless", func(t *testing.T, s consent.Outbox) {
		e1, e2 := newEntry("e-1", "p-1", storeT0), newEntry("e-2", "p-1", storeT0.Add(time.Second))
		mustEnqueue(t, s, e1, e2)
		for range 2 {
			mustMarkAnchored(t, s, []string{"e-1"}, "tx-1", 7)
			wantPending(t, s, 0, "e-2")
			wantStatuses(t, s, "", []consent.OutboxEntry{
				{Entry: e1, Status: consent.OutboxAnchored, Tx: "tx-1", Block: 7},
				{Entry: e2, Status: consent.OutboxPending},
			})
		}
	}},
	{"OK_UnknownIDsIgnored", func(t *testing.T, s consent.Outbox) {
		e1 := newEntry("e-1", "p-1", storeT0)
		mustEnqueue(t, s, e1)
		mustMarkAnchored(t, s, []string{"e-404", "e-1", "e-405"}, "tx-1", 7)
		mustMarkAnchored(t, s, []string{"e-406"}, "tx-2", 8)
		mustMarkAnchored(t, s, nil, "tx-3", 9)
		wantPending(t, s, 0)
		wantStatuses(t, s, "", []consent.OutboxEntry{{Entry: e1, Status: consent.OutboxAnchored, Tx: "tx-1", Block: 7}})
	}},
}

var outboxEntriesTests = []outboxTest{
	{"OK_PerPatientAndAll", func(t *testing.T, s consent.Outbox) {
		mustEnqueue(t, s,
			newEntry("e-4", "p-2", storeT0.Add(4*time.Second)),
			newEntry("e-1", "p-1", storeT0.Add(1*time.Second)),
			newEntry("e-3", "p-1", storeT0.Add(3*time.Second)),
			newEntry("e-2", "p-2", storeT0.Add(2*time.Second)),
			newEntry("e-0", "p-3", storeT0),
		)
		wantOutbox(t, s, pz.PatientRef("p-1"), "", 0, "e-1", "e-3")
		wantOutbox(t, s, pz.PatientRef("p-2"), "", 0, "e-2", "e-4")
		wantOutbox(t, s, pz.PatientRef("p-9"), "", 0)
		wantOutbox(t, s, "", "", 0, "e-0", "e-1", "e-2", "e-3", "e-4")
	}},
	{"OK_PagesWithAfter", func(t *testing.T, s consent.Outbox) {
		var all []consent.AccessEntry
		// Three share a time; p-2's entries interleave with p-1's.
		for i, off := range []int{5, 1, 3, 3, 3, 9, 2, 7, 4, 6} {
			patient := []string{"p-1", "p-2"}[i%3/2]
			all = append(all, newEntry(fmt.Sprintf("e-%02d", 10-i), patient, storeT0.Add(time.Duration(off)*time.Second)))
		}
		mustEnqueue(t, s, all...)
		sortEntries(all)
		p1 := pz.PatientRef("p-1")
		var mine []consent.AccessEntry
		for _, e := range all {
			if e.PatientRef == p1 {
				mine = append(mine, e)
			}
		}
		for _, limit := range []int{1, 3, 4, 100} {
			wantPages(t, s, "", limit, ids(all))
			wantPages(t, s, p1, limit, ids(mine))
		}
		// A cursor from the all-patients listing positions a patient's.
		wantOutbox(t, s, p1, ids(all)[4], 0, ids(after(mine, all[4]))...)
	}},
	{"OK_DefaultLimit100", func(t *testing.T, s consent.Outbox) {
		want := ids(enqueueMany(t, s, 8, 13, "p-1"))
		wantOutbox(t, s, "", "", 0, want[:100]...)
		wantOutbox(t, s, pz.PatientRef("p-1"), want[99], 0, want[100:]...)
	}},
	{"ErrInvalid", func(t *testing.T, s consent.Outbox) {
		mustEnqueue(t, s, newEntry("e-1", "p-1", storeT0))
		_, err := s.OutboxEntries(t.Context(), "", "", -1)
		wantStoreCode(t, "OutboxEntries(limit -1)", err, consent.EINVALID)
		_, err = s.OutboxEntries(t.Context(), "", "e-404", 0)
		wantStoreCode(t, "OutboxEntries(after unknown id)", err, consent.EINVALID)
	}},
}

var listPendingTests = []outboxTest{
	{"OK_PendingOnly", func(t *testing.T, s consent.Outbox) {
		mustEnqueue(t, s,
			newEntry("e-6", "p-2", storeT0.Add(6*time.Second)),
			newEntry("e-4", "p-2", storeT0.Add(4*time.Second)),
			newEntry("e-1", "p-1", storeT0.Add(1*time.Second)),
			newEntry("e-3", "p-1", storeT0.Add(3*time.Second)),
			newEntry("e-5", "p-1", storeT0.Add(5*time.Second)),
			newEntry("e-2", "p-1", storeT0.Add(2*time.Second)),
		)
		p1 := pz.PatientRef("p-1")
		wantListPending(t, s, p1, "", 0, "e-1", "e-2", "e-3", "e-5")
		if err := s.MarkEntriesAnchored(t.Context(), []string{"e-2", "e-4", "e-5"}, "tx-9", 4); err != nil {
			t.Fatal(err)
		}
		wantListPending(t, s, p1, "", 0, "e-1", "e-3")
		wantListPending(t, s, pz.PatientRef("p-2"), "", 0, "e-6")
		wantListPending(t, s, pz.PatientRef("p-9"), "", 0)
		wantListPending(t, s, "", "", 0, "e-1", "e-3", "e-6")
		wantListPending(t, s, "", "e-1", 0, "e-3", "e-6")
	}},
	{"OK_PagesWithAfter", func(t *testing.T, s consent.Outbox) {
		var all []consent.AccessEntry
		for i := range 120 {
			// Times repeat in threes, so that ids break ties.
			all = append(all, newEntry(fmt.Sprintf("e-%03d", 119-i), "p-1", storeT0.Add(time.Duration(i/3)*time.Second)))
		}
		mustEnqueue(t, s, all...)
		mustEnqueue(t, s, newEntry("e-other", "p-2", storeT0.Add(time.Second)))
		sortEntries(all)
		want := ids(all)
		p1 := pz.PatientRef("p-1")
		wantListPending(t, s, p1, "", 0, want[:100]...)
		wantListPending(t, s, p1, want[99], 0, want[100:]...)
		wantListPending(t, s, p1, want[9], 7, want[10:17]...)
		// A cursor that is anchored meanwhile still positions the page.
		if err := s.MarkEntriesAnchored(t.Context(), want[:10], "tx-9", 4); err != nil {
			t.Fatal(err)
		}
		wantListPending(t, s, p1, want[9], 3, want[10:13]...)
		wantListPending(t, s, p1, "", 3, want[10:13]...)
	}},
	{"ErrInvalid", func(t *testing.T, s consent.Outbox) {
		mustEnqueue(t, s, newEntry("e-1", "p-1", storeT0))
		_, err := s.ListPending(t.Context(), pz.PatientRef("p-1"), "", -1)
		wantStoreCode(t, "ListPending(limit -1)", err, consent.EINVALID)
		_, err = s.ListPending(t.Context(), pz.PatientRef("p-1"), "e-404", 0)
		wantStoreCode(t, "ListPending(after unknown id)", err, consent.EINVALID)
	}},
}

// wantListPending fails unless ListPending lists exactly want.
func wantListPending(tb testing.TB, s consent.Outbox, patientRef, after string, limit int, want ...string) {
	tb.Helper()
	page, err := s.ListPending(tb.Context(), patientRef, after, limit)
	if err != nil {
		tb.Fatalf("ListPending(%q, %q, %d): %v", patientRef, after, limit, err)
	}
	if page == nil {
		tb.Errorf("ListPending(%q, %q, %d) = nil, want a non-nil slice", patientRef, after, limit)
	}
	for _, o := range page {
		if o.Status != consent.OutboxPending {
			tb.Errorf("ListPending listed %s with status %q", o.Entry.ID, o.Status)
		}
	}
	if diff := gocmp.Diff(want, outboxIDs(page), cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("ListPending(%q, %q, %d) ids mismatch (-want +got):\n%s", patientRef, after, limit, diff)
	}
}

// newEntry returns an allowed read of a record by a provider, at t.
func newEntry(id, patient string, at time.Time) consent.AccessEntry {
	return consent.AccessEntry{
		ID: id, Time: at, Action: "read", RecordID: "r-1", PatientRef: pz.PatientRef(patient),
		ActorRef: pz.SubjectRef("dr-1"), Role: "provider", Org: orgA, Purpose: consent.PurposeTreat,
		Decision: consent.DecisionAllow, Reasons: []string{"consent c-1 grants lab for TREAT"},
		ConsentID: "c-1", ConsentVersion: 1, PolicyDigest: strings.Repeat("ab", 32),
	}
}

// enqueueMany enqueues workers×each entries of patient from as many
// goroutines and returns them sorted as the outbox lists them.
func enqueueMany(t *testing.T, s consent.Outbox, workers, each int, patient string) []consent.AccessEntry {
	t.Helper()
	all := make([]consent.AccessEntry, 0, workers*each)
	for w := range workers {
		for i := range each {
			// Times repeat across workers so that ids break ties.
			all = append(all, newEntry(fmt.Sprintf("e-%02d-%02d", w, i), patient, storeT0.Add(time.Duration(i)*time.Second)))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(all))
	for w := range workers {
		wg.Go(func() {
			for _, e := range all[w*each : (w+1)*each] {
				if err := s.Enqueue(t.Context(), e); err != nil {
					errs <- fmt.Errorf("Enqueue(%s): %w", e.ID, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	sortEntries(all)
	return all
}

// sortEntries orders es as the outbox lists them: by time, then id.
func sortEntries(es []consent.AccessEntry) {
	slices.SortFunc(es, func(a, b consent.AccessEntry) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
	})
}

// after returns the entries of es (sorted) that come after pos.
func after(es []consent.AccessEntry, pos consent.AccessEntry) []consent.AccessEntry {
	var out []consent.AccessEntry
	for _, e := range es {
		if c := cmp.Or(e.Time.Compare(pos.Time), strings.Compare(e.ID, pos.ID)); c > 0 {
			out = append(out, e)
		}
	}
	return out
}

// ids returns the ids of es in order.
func ids(es []consent.AccessEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// outboxIDs returns the entry ids of page in order.
func outboxIDs(page []consent.OutboxEntry) []string {
	out := make([]string, len(page))
	for i, o := range page {
		out[i] = o.Entry.ID
	}
	return out
}

// mustEnqueue enqueues es in order or fails the test.
func mustEnqueue(tb testing.TB, s consent.Outbox, es ...consent.AccessEntry) {
	tb.Helper()
	for _, e := range es {
		if err := s.Enqueue(tb.Context(), e); err != nil {
			tb.Fatalf("Enqueue(%s): %v", e.ID, err)
		}
	}
}

// mustMarkAnchored marks ids anchored or fails the test.
func mustMarkAnchored(tb testing.TB, s consent.Outbox, ids []string, tx string, block uint64) {
	tb.Helper()
	if err := s.MarkEntriesAnchored(tb.Context(), ids, tx, block); err != nil {
		tb.Fatalf("MarkEntriesAnchored(%v, %s, %d): %v", ids, tx, block, err)
	}
}

// mustOutboxEntries lists the outbox or fails the test; the result must be
// non-nil.
func mustOutboxEntries(tb testing.TB, s consent.Outbox, patientRef, after string, limit int) []consent.OutboxEntry {
	tb.Helper()
	got, err := s.OutboxEntries(tb.Context(), patientRef, after, limit)
	if err != nil {
		tb.Fatalf("OutboxEntries(%q, %q, %d): %v", patientRef, after, limit, err)
	}
	if got == nil {
		tb.Errorf("OutboxEntries(%q, %q, %d) = nil, want a non-nil slice", patientRef, after, limit)
	}
	return got
}

// wantOutbox fails unless OutboxEntries lists exactly the entry ids want.
func wantOutbox(tb testing.TB, s consent.Outbox, patientRef, after string, limit int, want ...string) {
	tb.Helper()
	got := outboxIDs(mustOutboxEntries(tb, s, patientRef, after, limit))
	if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("OutboxEntries(%q, %q, %d) ids mismatch (-want +got):\n%s", patientRef, after, limit, diff)
	}
}

// wantPages pages through OutboxEntries limit at a time, each page after
// the last id of the one before, and fails unless they list want.
func wantPages(tb testing.TB, s consent.Outbox, patientRef string, limit int, want []string) {
	tb.Helper()
	var got []string
	cursor := ""
	for range len(want) + 2 {
		page := mustOutboxEntries(tb, s, patientRef, cursor, limit)
		if len(page) > limit {
			tb.Fatalf("OutboxEntries(%q, %q, %d) returned %d entries", patientRef, cursor, limit, len(page))
		}
		got = append(got, outboxIDs(page)...)
		if len(page) < limit {
			break
		}
		cursor = page[len(page)-1].Entry.ID
	}
	if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("pages of %d from OutboxEntries(%q) mismatch (-want +got):\n%s", limit, patientRef, diff)
	}
}

// wantPending fails unless PendingEntries(limit) lists exactly ids want,
// every one pending and unanchored.
func wantPending(tb testing.TB, s consent.Outbox, limit int, want ...string) {
	tb.Helper()
	got, err := s.PendingEntries(tb.Context(), limit)
	if err != nil {
		tb.Fatalf("PendingEntries(%d): %v", limit, err)
	}
	if got == nil {
		tb.Errorf("PendingEntries(%d) = nil, want a non-nil slice", limit)
	}
	if diff := gocmp.Diff(want, outboxIDs(got), cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("PendingEntries(%d) ids mismatch (-want +got):\n%s", limit, diff)
	}
	for _, o := range got {
		if o.Status != consent.OutboxPending || o.Tx != "" || o.Block != 0 {
			tb.Errorf("PendingEntries(%d) lists %s with status %q, tx %q, block %d", limit, o.Entry.ID, o.Status, o.Tx, o.Block)
		}
	}
}

// wantStatuses fails unless OutboxEntries of patientRef lists want,
// Enqueued aside.
func wantStatuses(tb testing.TB, s consent.Outbox, patientRef string, want []consent.OutboxEntry) {
	tb.Helper()
	got := mustOutboxEntries(tb, s, patientRef, "", 0)
	if diff := gocmp.Diff(want, got, storeCmpOpts, cmpopts.IgnoreFields(consent.OutboxEntry{}, "Enqueued")); diff != "" {
		tb.Errorf("OutboxEntries(%q) mismatch (-want +got):\n%s", patientRef, diff)
	}
}
