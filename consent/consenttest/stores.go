package consenttest

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

// store is what RunStores checks: the consent read model and the outbox,
// which every document store implements together.
type store = interface {
	consent.ConsentStore
	consent.Outbox
}

// RunStores is the conformance suite for consent.ConsentStore and
// consent.Outbox. Every document store (integrations/bolt,
// integrations/mongo, recordstest.MemStore) runs it against a real instance
// of its dependency. open must return a new, empty store on every call and
// arrange for its release with t.Cleanup.
//
// Besides what the interfaces document, the suite holds implementations to
// rules they leave implicit:
//   - SaveConsent: EINVALID for a consent without a valid id or grantee
//     org, without a patientRef, or with a version below 1.
//   - StoredConsents returns an empty, non-nil slice when nothing matches.
//   - SaveCheckpoint: EINVALID for an empty name; a later save overwrites.
//   - Enqueue: EINVALID for an invalid id, an empty patientRef or a zero
//     time; the entry's time comes back in UTC; Enqueued is stamped by the
//     store, in UTC.
//   - PendingEntries, OutboxEntries and ListPending: a limit of 0 means
//     100, a negative one is EINVALID; all order by entry time, then id. An
//     After cursor that names no entry is EINVALID. Listings are non-nil
//     slices.
//   - MarkEntriesAnchored with no ids does nothing.
//   - Times are compared at millisecond precision (MongoDB's); every other
//     field, nil and empty slices included, round-trips exactly.
//
// Racing saves of one consent are checked apart, by RunConcurrentSaves.
func RunStores(t *testing.T, open func(t *testing.T) interface {
	consent.ConsentStore
	consent.Outbox
}) {
	groups := []struct {
		name  string
		tests []storeTest
	}{
		{"SaveConsent", saveConsentTests},
		{"StoredConsents", storedConsentsTests},
		{"Checkpoints", checkpointTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
			}
		})
	}
	RunOutbox(t, func(t *testing.T) consent.Outbox { return open(t) })
}

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

// RunConcurrentSaves checks that racing saves of one consent's versions
// leave the newest: events from the block listener and the committing
// node's write-through can arrive together. open must return a new, empty
// store and arrange for its release with t.Cleanup.
//
// It is apart from RunStores because FerretDB cannot pass it: it applies a
// conditional update as a read, then an unconditional write, so two
// updates of one document can both match and the older can land last.
// MongoDB evaluates the filter and writes atomically per document, which is
// what mongo.RecordStore relies on.
func RunConcurrentSaves(t *testing.T, open func(t *testing.T) consent.ConsentStore) {
	t.Run("OK_NewestVersionWins", func(t *testing.T) {
		s := open(t)
		const consents, versions = 4, 6
		var want []consent.Consent
		var wg sync.WaitGroup
		errs := make(chan error, consents*versions)
		for i := range consents {
			c := newConsent(fmt.Sprintf("c-%d", i), "p-1", orgA, 1)
			for v := 1; v <= versions; v++ {
				next := c
				next.Version, next.Tx = v, fmt.Sprintf("tx-%d-%d", i, v)
				wg.Go(func() {
					if err := s.SaveConsent(t.Context(), next); err != nil {
						errs <- fmt.Errorf("SaveConsent(%s v%d): %w", next.ID, next.Version, err)
					}
				})
				if v == versions {
					want = append(want, next)
				}
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		wantConsents(t, s, consent.ConsentFilter{PatientRef: pz.PatientRef("p-1")}, want...)
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgA}, want...)
	})
}

// storeTest is one subtest of RunStores; its name says what it proves.
type storeTest struct {
	name string
	fn   func(t *testing.T, s store)
}

// outboxTest is one subtest of RunOutbox; its name says what it proves.
type outboxTest struct {
	name string
	fn   func(t *testing.T, s consent.Outbox)
}

// storeCmpOpts compare what a store returns with what it was given: times
// at the millisecond, which is all MongoDB keeps.
var storeCmpOpts = gocmp.Options{
	gocmp.Comparer(func(a, b time.Time) bool {
		return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
	}),
	cmpopts.IgnoreUnexported(consent.AccessEntry{}),
}

// storeT0 is the base of every time the suite stores; its nanoseconds
// exercise stores that keep only milliseconds.
var storeT0 = time.Date(2025, time.June, 1, 8, 0, 0, 123_456_789, time.UTC)

// Organizations the suite's consents name.
const (
	orgA = "hospital-a"
	orgB = "clinic-b"
)

var saveConsentTests = []storeTest{
	{"OK_InsertRoundTripsEveryField", func(t *testing.T, s store) {
		c := newConsent("c-1", "p-1", orgA, 1)
		c.Grantee.SubjectRef = pz.SubjectRef("dr-1")
		c.Records = []string{"r-1", "r-2"}
		mustSaveConsent(t, s, c)
		wantConsents(t, s, consent.ConsentFilter{PatientRef: c.PatientRef}, c)
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgA}, c)
	}},
	{"OK_NilAndOpenEndedFields", func(t *testing.T, s store) {
		c := newConsent("c-1", "p-1", orgA, 1)
		c.ValidUntil, c.Records, c.Categories = nil, nil, []string{}
		mustSaveConsent(t, s, c)
		wantConsents(t, s, consent.ConsentFilter{PatientRef: c.PatientRef}, c)
	}},
	{"OK_NewerVersionReplaces", func(t *testing.T, s store) {
		v1 := newConsent("c-1", "p-1", orgA, 1)
		v2 := revoked(v1)
		mustSaveConsent(t, s, v1)
		mustSaveConsent(t, s, v2)
		wantConsents(t, s, consent.ConsentFilter{PatientRef: v1.PatientRef}, v2)
	}},
	{"OK_OlderVersionIgnored", func(t *testing.T, s store) {
		v1 := newConsent("c-1", "p-1", orgA, 1)
		v2 := revoked(v1)
		mustSaveConsent(t, s, v2)
		mustSaveConsent(t, s, v1) // a late event
		wantConsents(t, s, consent.ConsentFilter{PatientRef: v1.PatientRef}, v2)
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgA}, v2)
	}},
	{"OK_SameVersionIgnored", func(t *testing.T, s store) {
		c := newConsent("c-1", "p-1", orgA, 1)
		mustSaveConsent(t, s, c)
		other := c
		other.Tx, other.Purposes = "tx-other", []string{consent.PurposeResearch}
		mustSaveConsent(t, s, other) // a duplicate event must not change the first
		wantConsents(t, s, consent.ConsentFilter{PatientRef: c.PatientRef}, c)
		mustSaveConsent(t, s, c)
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgA}, c)
	}},
	{"ErrInvalid", func(t *testing.T, s store) {
		for _, tt := range []struct {
			note string
			edit func(c *consent.Consent)
		}{
			{"no id", func(c *consent.Consent) { c.ID = "" }},
			{"id with a slash", func(c *consent.Consent) { c.ID = "c/1" }},
			{"no patientRef", func(c *consent.Consent) { c.PatientRef = "" }},
			{"no grantee org", func(c *consent.Consent) { c.Grantee.Org = "" }},
			{"version 0", func(c *consent.Consent) { c.Version = 0 }},
		} {
			c := newConsent("c-1", "p-1", orgA, 1)
			tt.edit(&c)
			wantStoreCode(t, tt.note, s.SaveConsent(t.Context(), c), consent.EINVALID)
		}
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgA})
	}},
}

var storedConsentsTests = []storeTest{
	{"OK_ByPatientAndByGrantee", func(t *testing.T, s store) {
		// Saved out of id order, across two patients and two grantees.
		c3 := newConsent("c-3", "p-1", orgA, 1)
		c1 := newConsent("c-1", "p-1", orgB, 1)
		c10 := newConsent("c-10", "p-1", orgA, 1)
		c2 := newConsent("c-2", "p-2", orgA, 1)
		c4 := newConsent("c-4", "p-2", orgB, 1)
		for _, c := range []consent.Consent{c3, c1, c10, c2, c4} {
			mustSaveConsent(t, s, c)
		}
		p1, p2 := pz.PatientRef("p-1"), pz.PatientRef("p-2")
		wantConsents(t, s, consent.ConsentFilter{PatientRef: p1}, c1, c10, c3)
		wantConsents(t, s, consent.ConsentFilter{PatientRef: p2}, c2, c4)
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgA}, c10, c2, c3)
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgB}, c1, c4)
	}},
	{"OK_NoneIsEmpty", func(t *testing.T, s store) {
		mustSaveConsent(t, s, newConsent("c-1", "p-1", orgA, 1))
		wantConsents(t, s, consent.ConsentFilter{PatientRef: pz.PatientRef("p-2")})
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: "insurer-x"})
		// An org whose id extends another's is another org.
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: "hospital"})
	}},
	{"OK_RevokeVisibleViaBothIndexes", func(t *testing.T, s store) {
		c := newConsent("c-1", "p-1", orgA, 1)
		other := newConsent("c-2", "p-1", orgA, 1)
		mustSaveConsent(t, s, c)
		mustSaveConsent(t, s, other)
		r := revoked(c)
		mustSaveConsent(t, s, r)
		wantConsents(t, s, consent.ConsentFilter{PatientRef: c.PatientRef}, r, other)
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgA}, r, other)
	}},
	{"OK_NewerVersionMovesBetweenIndexes", func(t *testing.T, s store) {
		// Not something the contract does today, but a store's indexes
		// must follow whatever the newest version says.
		c := newConsent("c-1", "p-1", orgA, 1)
		mustSaveConsent(t, s, c)
		moved := revoked(c)
		moved.PatientRef, moved.Grantee.Org = pz.PatientRef("p-2"), orgB
		mustSaveConsent(t, s, moved)
		wantConsents(t, s, consent.ConsentFilter{PatientRef: c.PatientRef})
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgA})
		wantConsents(t, s, consent.ConsentFilter{PatientRef: moved.PatientRef}, moved)
		wantConsents(t, s, consent.ConsentFilter{GranteeOrg: orgB}, moved)
	}},
	{"ErrInvalid_NotExactlyOneFilter", func(t *testing.T, s store) {
		for _, f := range []consent.ConsentFilter{{}, {PatientRef: pz.PatientRef("p-1"), GranteeOrg: orgA}} {
			_, err := s.StoredConsents(t.Context(), f)
			wantStoreCode(t, fmt.Sprintf("StoredConsents(%+v)", f), err, consent.EINVALID)
		}
	}},
}

var checkpointTests = []storeTest{
	{"OK_ZeroWhenNone", func(t *testing.T, s store) {
		wantCheckpoint(t, s, "fabric-listener", 0)
	}},
	{"OK_SaveAndOverwrite", func(t *testing.T, s store) {
		mustSaveCheckpoint(t, s, "fabric-listener", 5)
		wantCheckpoint(t, s, "fabric-listener", 5)
		mustSaveCheckpoint(t, s, "fabric-listener", 9)
		wantCheckpoint(t, s, "fabric-listener", 9)
		mustSaveCheckpoint(t, s, "fabric-listener", 1<<40)
		wantCheckpoint(t, s, "fabric-listener", 1<<40)
	}},
	{"OK_PerName", func(t *testing.T, s store) {
		mustSaveCheckpoint(t, s, "a", 3)
		mustSaveCheckpoint(t, s, "b", 8)
		wantCheckpoint(t, s, "a", 3)
		wantCheckpoint(t, s, "b", 8)
		wantCheckpoint(t, s, "c", 0)
	}},
	{"ErrInvalid_EmptyName", func(t *testing.T, s store) {
		wantStoreCode(t, "SaveCheckpoint(\"\")", s.SaveCheckpoint(t.Context(), "", 1), consent.EINVALID)
	}},
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

// newConsent returns the given version of consent id, by patient for org,
// active, with every field set.
func newConsent(id, patient, org string, version int) consent.Consent {
	until := storeT0.AddDate(1, 0, 0)
	return consent.Consent{
		ID: id, PatientRef: pz.PatientRef(patient), Grantee: consent.Grantee{Org: org},
		Categories: []string{"lab", "imaging"}, Records: []string{},
		Purposes:  []string{consent.PurposeTreat, consent.PurposePayment},
		ValidFrom: storeT0, ValidUntil: &until, Status: consent.StatusActive, Version: version,
		CreatedAt: storeT0, UpdatedAt: storeT0, Tx: "tx-" + id + "-" + fmt.Sprint(version),
	}
}

// revoked returns the next version of c: revoked, as RevokeConsent makes it.
func revoked(c consent.Consent) consent.Consent {
	c.Status, c.Version = consent.StatusRevoked, c.Version+1
	c.UpdatedAt, c.Tx = c.UpdatedAt.Add(time.Hour), fmt.Sprintf("tx-%s-%d", c.ID, c.Version)
	return c
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

// mustSaveConsent saves c or fails the test.
func mustSaveConsent(tb testing.TB, s store, c consent.Consent) {
	tb.Helper()
	if err := s.SaveConsent(tb.Context(), c); err != nil {
		tb.Fatalf("SaveConsent(%s v%d): %v", c.ID, c.Version, err)
	}
}

// wantConsents fails unless StoredConsents(f) returns exactly want, in
// order, as a non-nil slice.
func wantConsents(tb testing.TB, s consent.ConsentStore, f consent.ConsentFilter, want ...consent.Consent) {
	tb.Helper()
	got, err := s.StoredConsents(tb.Context(), f)
	if err != nil {
		tb.Fatalf("StoredConsents(%+v): %v", f, err)
	}
	if got == nil {
		tb.Errorf("StoredConsents(%+v) = nil, want a non-nil slice", f)
	}
	if want == nil {
		want = []consent.Consent{}
	}
	if diff := gocmp.Diff(want, got, storeCmpOpts); diff != "" {
		tb.Errorf("StoredConsents(%+v) mismatch (-want +got):\n%s", f, diff)
	}
}

// mustSaveCheckpoint saves a checkpoint or fails the test.
func mustSaveCheckpoint(tb testing.TB, s store, name string, block uint64) {
	tb.Helper()
	if err := s.SaveCheckpoint(tb.Context(), name, block); err != nil {
		tb.Fatalf("SaveCheckpoint(%s, %d): %v", name, block, err)
	}
}

// wantCheckpoint fails unless Checkpoint(name) is want.
func wantCheckpoint(tb testing.TB, s store, name string, want uint64) {
	tb.Helper()
	got, err := s.Checkpoint(tb.Context(), name)
	if err != nil {
		tb.Fatalf("Checkpoint(%s): %v", name, err)
	}
	if got != want {
		tb.Errorf("Checkpoint(%s) = %d, want %d", name, got, want)
	}
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

// wantStoreCode fails unless err carries code.
func wantStoreCode(tb testing.TB, what string, err error, code string) {
	tb.Helper()
	if got := consent.ErrorCode(err); got != code {
		tb.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}
