package bolt

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// benchRecords and benchPatients size the benchmark store: the target scale
// of a single embedded node.
const benchRecords, benchPatients = 200_000, 20_000

// mustFill stores benchRecords anchored records of 4 KiB ciphertext spread
// over benchPatients patients, in large transactions to keep set-up short.
func mustFill(b *testing.B) *RecordStore {
	b.Helper()
	s := MustOpen(b, filepath.Join(b.TempDir(), "records.db"))
	ciphertext := make([]byte, 4096)
	const batch = 10_000
	for start := 0; start < benchRecords; start += batch {
		err := s.db.bolt.Update(func(tx *bbolt.Tx) error {
			for i := start; i < start+batch; i++ {
				r := &records.Record{
					ID: fmt.Sprintf("r%07d", i), Version: 1, PatientRef: fmt.Sprintf("p%05d", i%benchPatients),
					Status: records.StatusAnchored, AnchorTx: "tx", Ciphertext: ciphertext,
				}
				if err := createRecord(tx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("fill: %v", err)
		}
	}
	return s
}

func BenchmarkRecordStore(b *testing.B) {
	s := mustFill(b)
	b.Run("Record", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Record(b.Context(), fmt.Sprintf("r%07d", rand.IntN(benchRecords))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Records", func(b *testing.B) {
		for b.Loop() {
			f := records.RecordFilter{PatientRef: fmt.Sprintf("p%05d", rand.IntN(benchPatients))}
			if rs, err := s.Records(b.Context(), f); err != nil || len(rs) != benchRecords/benchPatients {
				b.Fatalf("Records = %d records, %v", len(rs), err)
			}
		}
	})
}

// benchEntries and benchEntryPatients size the outbox benchmark: a backlog
// far beyond one page, so a listing that scanned would show.
const benchEntries, benchEntryPatients = 200_000, 2_000

// mustFillOutbox enqueues benchEntries pending entries, one a second,
// spread over benchEntryPatients patients, in large transactions.
func mustFillOutbox(b *testing.B) *RecordStore {
	b.Helper()
	s := MustOpen(b, filepath.Join(b.TempDir(), "records.db"))
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	const batch = 10_000
	for start := 0; start < benchEntries; start += batch {
		err := s.db.bolt.Update(func(tx *bbolt.Tx) error {
			for i := start; i < start+batch; i++ {
				e := consent.AccessEntry{
					ID: fmt.Sprintf("e%07d", i), Time: t0.Add(time.Duration(i) * time.Second),
					PatientRef: fmt.Sprintf("p%05d", i%benchEntryPatients), Reasons: []string{"consent c-1"},
				}
				if err := enqueue(tx, &consent.OutboxEntry{Entry: e, Status: consent.OutboxPending, Enqueued: t0}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("fill: %v", err)
		}
	}
	return s
}

// BenchmarkOutbox measures one page of each listing deep inside a large
// outbox; each costs a seek plus a lookup per entry returned.
func BenchmarkOutbox(b *testing.B) {
	s := mustFillOutbox(b)
	b.Run("PendingEntries", func(b *testing.B) {
		for b.Loop() {
			if es, err := s.PendingEntries(b.Context(), 100); err != nil || len(es) != 100 {
				b.Fatalf("PendingEntries = %d entries, %v", len(es), err)
			}
		}
	})
	b.Run("OutboxEntriesAfter", func(b *testing.B) {
		for b.Loop() {
			after := fmt.Sprintf("e%07d", rand.IntN(benchEntries/2))
			if _, err := s.OutboxEntries(b.Context(), "", after, 100); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OutboxEntriesOfPatient", func(b *testing.B) {
		for b.Loop() {
			ref := fmt.Sprintf("p%05d", rand.IntN(benchEntryPatients))
			if es, err := s.OutboxEntries(b.Context(), ref, "", 100); err != nil || len(es) != benchEntries/benchEntryPatients {
				b.Fatalf("OutboxEntries = %d entries, %v", len(es), err)
			}
		}
	})
}
