package consenttest

import (
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

// storeTest is one subtest of RunStores; its name says what it proves.
type storeTest struct {
	name string
	fn   func(t *testing.T, s store)
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

// wantStoreCode fails unless err carries code.
func wantStoreCode(tb testing.TB, what string, err error, code string) {
	tb.Helper()
	if got := consent.ErrorCode(err); got != code {
		tb.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}
