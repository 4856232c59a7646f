package consenttest

// The consent read model and checkpoint conformance cases.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

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
