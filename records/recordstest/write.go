package recordstest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

var createTests = []test{
	{"OK_RoundTripsEveryField", func(t *testing.T, s records.Store) {
		r := newRecord("r1", 1, patientRef("p-7"))
		mustCreate(t, s, r)
		wantRecord(t, mustRecord(t, s, "r1"), r)
	}},
	{"OK_AnchoredOnCreate", func(t *testing.T, s records.Store) {
		r := anchored(newRecord("r1", 1, patientRef("p-7")), "tx-1", 9)
		mustCreate(t, s, r)
		wantRecord(t, mustRecord(t, s, "r1"), r)
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: r.PatientRef}), "r1@1")
		wantKeys(t, mustPending(t, s))
	}},
	{"OK_BytesRoundTripExactly", func(t *testing.T, s records.Store) {
		r := newRecord("r1", 1, patientRef("p-7"))
		r.Ciphertext = make([]byte, 0, 512)
		for i := range 512 {
			r.Ciphertext = append(r.Ciphertext, byte(i))
		}
		r.WrappedDEK = []byte{0, 0, 0, 0xff, 0xff, 0}
		r.Salt = []byte{0x80, 0x7f, 0xc3, 0x28} // invalid UTF-8 on purpose
		mustCreate(t, s, r)
		wantRecord(t, mustRecord(t, s, "r1"), r)
	}},
	{"OK_TimesRoundTripToTheMillisecond", func(t *testing.T, s records.Store) {
		zone := time.FixedZone("UTC+5:30", 5*3600+1800)
		r := newRecord("r1", 1, patientRef("p-7"))
		r.CreatedAt = time.Date(2031, time.December, 31, 23, 59, 59, 999_999_999, zone)
		mustCreate(t, s, r)
		got := mustRecord(t, s, "r1").CreatedAt
		if !got.Truncate(time.Millisecond).Equal(r.CreatedAt.Truncate(time.Millisecond)) {
			t.Errorf("CreatedAt = %v, want %v at millisecond precision", got, r.CreatedAt)
		}
	}},
	{"OK_KeepsNoReferenceToCallerBytes", func(t *testing.T, s records.Store) {
		r := newRecord("r1", 1, patientRef("p-7"))
		want := *r
		want.Ciphertext = append([]byte(nil), r.Ciphertext...)
		mustCreate(t, s, r)
		r.Ciphertext[0] ^= 0xff
		wantRecord(t, mustRecord(t, s, "r1"), &want)
	}},
	{"OK_ConcurrentDistinctIDs", func(t *testing.T, s records.Store) {
		const workers, each = 8, 5
		ref := patientRef("p-7")
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					r := newRecord(fmt.Sprintf("w%d-r%02d", w, i), 1, ref)
					if err := s.CreateRecord(t.Context(), r); err != nil {
						errs <- fmt.Errorf("CreateRecord(%s): %w", r.ID, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := len(mustPending(t, s)); got != workers*each {
			t.Errorf("%d pending records, want %d", got, workers*each)
		}
		for w := range workers {
			for i := range each {
				mustRecord(t, s, fmt.Sprintf("w%d-r%02d", w, i))
			}
		}
	}},
	{"ErrConflict_SameIDAndVersion", func(t *testing.T, s records.Store) {
		first := newRecord("r1", 1, patientRef("p-7"))
		mustCreate(t, s, first)
		second := newRecord("r1", 1, patientRef("p-8"))
		second.Ciphertext = []byte("other")
		wantCode(t, s.CreateRecord(t.Context(), second), consent.ECONFLICT)
		wantRecord(t, mustRecord(t, s, "r1"), first)
	}},
	{"ErrConflict_ConcurrentSameVersion", func(t *testing.T, s records.Store) {
		const n = 8
		var wg sync.WaitGroup
		codes := make(chan string, n)
		for range n {
			wg.Go(func() {
				codes <- consent.ErrorCode(s.CreateRecord(t.Context(), newRecord("r1", 1, patientRef("p-7"))))
			})
		}
		wg.Wait()
		close(codes)
		count := map[string]int{}
		for c := range codes {
			count[c]++
		}
		if count[""] != 1 || count[consent.ECONFLICT] != n-1 {
			t.Errorf("outcomes by code = %v, want one success and %d conflicts", count, n-1)
		}
	}},
	{"ErrInvalid_EmptyID", func(t *testing.T, s records.Store) {
		wantCode(t, s.CreateRecord(t.Context(), newRecord("", 1, patientRef("p-7"))), consent.EINVALID)
	}},
	{"ErrInvalid_VersionBelowOne", func(t *testing.T, s records.Store) {
		for _, v := range []int{0, -1} {
			wantCode(t, s.CreateRecord(t.Context(), newRecord("r1", v, patientRef("p-7"))), consent.EINVALID)
		}
	}},
}

var markAnchoredTests = []test{
	{"OK_SetsStatusTxAndBlock", func(t *testing.T, s records.Store) {
		r := newRecord("r1", 1, patientRef("p-7"))
		mustCreate(t, s, r)
		const block = 1<<40 + 3 // beyond 32 bits
		if err := s.MarkAnchored(t.Context(), "r1", 1, "tx-abc", block); err != nil {
			t.Fatalf("MarkAnchored: %v", err)
		}
		wantRecord(t, mustRecord(t, s, "r1"), anchored(r, "tx-abc", block))
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: r.PatientRef}), "r1@1")
		wantKeys(t, mustPending(t, s))
	}},
	{"OK_Idempotent", func(t *testing.T, s records.Store) {
		r := newRecord("r1", 1, patientRef("p-7"))
		mustCreate(t, s, r)
		mustAnchor(t, s, "r1", 1)
		mustAnchor(t, s, "r1", 1)
		wantRecord(t, mustRecord(t, s, "r1"), anchored(r, anchorTx("r1", 1), 1))
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: r.PatientRef}), "r1@1")
	}},
	{"OK_OnlyThatVersion", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		mustCreate(t, s, newRecord("r1", 1, ref), newRecord("r1", 2, ref))
		mustAnchor(t, s, "r1", 1)
		if got := mustRecord(t, s, "r1"); got.Version != 2 || got.Status != records.StatusPending {
			t.Errorf("latest = v%d %s, want v2 pending", got.Version, got.Status)
		}
		wantKeys(t, mustPending(t, s), "r1@2")
	}},
	{"ErrNotFound_MissingID", func(t *testing.T, s records.Store) {
		wantCode(t, s.MarkAnchored(t.Context(), "nope", 1, "tx", 1), consent.ENOTFOUND)
	}},
	{"ErrNotFound_MissingVersion", func(t *testing.T, s records.Store) {
		mustCreate(t, s, newRecord("r1", 1, patientRef("p-7")))
		wantCode(t, s.MarkAnchored(t.Context(), "r1", 2, "tx", 1), consent.ENOTFOUND)
	}},
}

var deleteTests = []test{
	{"OK_RemovesFromEveryView", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		mustCreate(t, s, newRecord("r1", 1, ref), newRecord("r2", 1, ref))
		mustAnchor(t, s, "r1", 1)
		for _, id := range []string{"r1", "r2"} {
			if err := s.DeleteRecord(t.Context(), id, 1); err != nil {
				t.Fatalf("DeleteRecord(%s): %v", id, err)
			}
			_, err := s.Record(t.Context(), id)
			wantCode(t, err, consent.ENOTFOUND)
		}
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: ref}))
		wantKeys(t, mustPending(t, s))
	}},
	{"OK_MissingIsNoError", func(t *testing.T, s records.Store) {
		if err := s.DeleteRecord(t.Context(), "nope", 1); err != nil {
			t.Errorf("DeleteRecord(missing id) = %v, want nil", err)
		}
		mustCreate(t, s, newRecord("r1", 1, patientRef("p-7")))
		if err := s.DeleteRecord(t.Context(), "r1", 2); err != nil {
			t.Errorf("DeleteRecord(missing version) = %v, want nil", err)
		}
		mustRecord(t, s, "r1")
	}},
	{"OK_PreviousVersionBecomesLatest", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		v1 := newRecord("r1", 1, ref)
		mustCreate(t, s, v1, newRecord("r1", 2, ref))
		if err := s.DeleteRecord(t.Context(), "r1", 2); err != nil {
			t.Fatalf("DeleteRecord: %v", err)
		}
		wantRecord(t, mustRecord(t, s, "r1"), v1)
	}},
	{"OK_ListFallsBackToPreviousAnchoredVersion", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		mustCreate(t, s, newRecord("r1", 1, ref), newRecord("r1", 2, ref), newRecord("r1", 3, ref))
		mustAnchor(t, s, "r1", 1)
		mustAnchor(t, s, "r1", 3)
		f := records.RecordFilter{PatientRef: ref}
		wantKeys(t, mustRecords(t, s, f), "r1@3")
		if err := s.DeleteRecord(t.Context(), "r1", 3); err != nil {
			t.Fatalf("DeleteRecord: %v", err)
		}
		wantKeys(t, mustRecords(t, s, f), "r1@1")
		if err := s.DeleteRecord(t.Context(), "r1", 1); err != nil {
			t.Fatalf("DeleteRecord: %v", err)
		}
		wantKeys(t, mustRecords(t, s, f))
		wantKeys(t, mustPending(t, s), "r1@2")
	}},
}
