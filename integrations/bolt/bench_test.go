package bolt

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

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
