package bolt

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
)

func TestConsentStoreAndOutbox(t *testing.T) {
	consenttest.RunStores(t, func(t *testing.T) interface {
		consent.ConsentStore
		consent.Outbox
	} {
		return MustOpen(t, filepath.Join(t.TempDir(), "store", "records.db"))
	})
}

func TestConcurrentConsentSaves(t *testing.T) {
	consenttest.RunConcurrentSaves(t, func(t *testing.T) consent.ConsentStore {
		return MustOpen(t, filepath.Join(t.TempDir(), "records.db"))
	})
}

func TestReadModelReopen(t *testing.T) {
	t.Run("OK_ReopenKeepsConsentsCheckpointsAndOutbox", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "records.db")
		ctx := t.Context()
		s := MustOpen(t, path)
		c := consent.Consent{ID: "c-1", PatientRef: "p", Grantee: consent.Grantee{Org: "org-a"}, Version: 1, Status: consent.StatusActive}
		at := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
		steps := []error{
			s.SaveConsent(ctx, c),
			s.SaveCheckpoint(ctx, "fabric", 42),
			s.Enqueue(ctx, consent.AccessEntry{ID: "e-1", PatientRef: "p", Time: at}),
			s.Enqueue(ctx, consent.AccessEntry{ID: "e-2", PatientRef: "p", Time: at.Add(time.Second)}),
			s.MarkEntriesAnchored(ctx, []string{"e-1"}, "tx-1", 3),
			s.Close(),
		}
		for i, err := range steps {
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}

		s = MustOpen(t, path)
		if cs, err := s.StoredConsents(ctx, consent.ConsentFilter{GranteeOrg: "org-a"}); err != nil || len(cs) != 1 || cs[0].ID != "c-1" {
			t.Errorf("StoredConsents after reopen = %+v, %v; want c-1", cs, err)
		}
		if b, err := s.Checkpoint(ctx, "fabric"); err != nil || b != 42 {
			t.Errorf("Checkpoint after reopen = %d, %v; want 42", b, err)
		}
		if p, err := s.PendingEntries(ctx, 0); err != nil || len(p) != 1 || p[0].Entry.ID != "e-2" {
			t.Errorf("PendingEntries after reopen = %+v, %v; want e-2", p, err)
		}
		if all, err := s.OutboxEntries(ctx, "p", "", 0); err != nil || len(all) != 2 || all[0].Tx != "tx-1" || all[0].Block != 3 {
			t.Errorf("OutboxEntries after reopen = %+v, %v; want e-1 anchored in tx-1, block 3, then e-2", all, err)
		}
	})
	t.Run("ErrUnavailable_Closed", func(t *testing.T) {
		s := MustOpen(t, filepath.Join(t.TempDir(), "records.db"))
		s.Close()
		err := s.Enqueue(t.Context(), consent.AccessEntry{ID: "e-1", PatientRef: "p", Time: time.Now()})
		if got := consent.ErrorCode(err); got != consent.EUNAVAILABLE {
			t.Errorf("Enqueue after Close = %v (code %q), want %q", err, got, consent.EUNAVAILABLE)
		}
	})
}

// A file written before the index of pending entries per patient existed
// gains it, filled from the pending entries it holds.
func TestPendingByPatientBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	ctx := t.Context()
	s := MustOpen(t, path)
	at := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	for i, e := range []consent.AccessEntry{
		{ID: "e-1", PatientRef: "p", Time: at},
		{ID: "e-2", PatientRef: "p", Time: at.Add(time.Second)},
		{ID: "e-3", PatientRef: "q", Time: at.Add(2 * time.Second)},
	} {
		if err := s.Enqueue(ctx, e); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	if err := s.MarkEntriesAnchored(ctx, []string{"e-1"}, "tx-1", 3); err != nil {
		t.Fatal(err)
	}
	if err := s.db.bolt.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketOutboxPendingByPatient) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = MustOpen(t, path)
	for ref, want := range map[string][]string{"p": {"e-2"}, "q": {"e-3"}} {
		got, err := s.ListPending(ctx, ref, "", 0)
		if err != nil {
			t.Fatalf("ListPending(%q): %v", ref, err)
		}
		var ids []string
		for _, o := range got {
			ids = append(ids, o.Entry.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("ListPending(%q) after backfill = %v, want %v", ref, ids, want)
		}
	}
}
