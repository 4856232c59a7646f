package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// TestRecordsReadsNoContent: listing a patient's records reads only the
// listing index, never the records bucket where content lives. Every
// stored record is overwritten with garbage; the listing is unchanged,
// while Record, which reads content, reports the corruption.
func TestRecordsReadsNoContent(t *testing.T) {
	s := MustOpen(t, filepath.Join(t.TempDir(), "records.db"))
	for i := range 20 {
		r := &records.Record{
			ID: fmt.Sprintf("r%02d", i), Version: 1, PatientRef: "p", Org: []string{"h-a", "h-b"}[i%2],
			Status: records.StatusAnchored, AnchorTx: "tx", Ciphertext: bytes.Repeat([]byte{7}, 4096),
			WrappedDEK: []byte{1, 2}, Salt: []byte{3, 4},
		}
		if err := s.CreateRecord(t.Context(), r); err != nil {
			t.Fatalf("CreateRecord: %v", err)
		}
	}
	err := s.db.bolt.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		var keys [][]byte
		if err := b.ForEach(func(k, _ []byte) error { keys = append(keys, bytes.Clone(k)); return nil }); err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Put(k, []byte{0xEE}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[records.RecordFilter]int{{PatientRef: "p"}: 20, {PatientRef: "p", Org: "h-a"}: 10} {
		got, err := s.Records(t.Context(), f)
		if err != nil || len(got) != want {
			t.Fatalf("Records(%+v) = %d records, %v; want them listed from the index alone", f, len(got), err)
		}
		for _, r := range got {
			if r.AnchorTx != "tx" || r.Ciphertext != nil || r.WrappedDEK != nil || r.Salt != nil {
				t.Errorf("listed %+v; want metadata only", r)
			}
		}
	}
	if _, err := s.Record(t.Context(), "r00"); consent.ErrorCode(err) != consent.EINTEGRITY {
		t.Errorf("Record of a corrupt record = %v, want EINTEGRITY", err)
	}
}

// TestRecordsMemoryDoesNotGrowWithContent: a page of 100 records of 256
// KiB each costs far less than their content.
func TestRecordsMemoryDoesNotGrowWithContent(t *testing.T) {
	s := MustOpen(t, filepath.Join(t.TempDir(), "records.db"))
	content := make([]byte, 256<<10)
	err := s.db.bolt.Update(func(tx *bbolt.Tx) error {
		for i := range 100 {
			r := &records.Record{ID: fmt.Sprintf("r%03d", i), Version: 1, PatientRef: "p",
				Status: records.StatusAnchored, Ciphertext: content}
			if err := createRecord(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := s.Records(t.Context(), records.RecordFilter{PatientRef: "p"})
	runtime.ReadMemStats(&after)
	if err != nil || len(got) != 100 {
		t.Fatalf("Records = %d records, %v", len(got), err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("listing 100 records allocated %d bytes; content is %d bytes and must not be read", alloc, 100*len(content))
	}
}

// TestOpenMigratesSchema1: a file written with schema 1 (the patients
// index of versions) gains the listing indexes on Open, filled from its
// anchored records, and loses the old index.
func TestOpenMigratesSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	b, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	rec := func(id string, v int, ref, org, status string) *records.Record {
		return &records.Record{ID: id, Version: v, PatientRef: ref, Org: org, Status: status, CreatedAt: at,
			Category: "lab", Ciphertext: []byte("secret"), WrappedDEK: []byte{1}, Salt: []byte{2}, AnchorTx: "tx-" + id}
	}
	stored := []*records.Record{
		rec("r1", 1, "p", "h-a", records.StatusAnchored),
		rec("r1", 2, "p", "h-b", records.StatusAnchored),
		rec("r2", 1, "p", "h-a", records.StatusPending),
		rec("r3", 1, "q", "h-a", records.StatusAnchored),
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketRecords, bucketPatientsV1, bucketPending, bucketAliases} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put([]byte("schema"), []byte("1")); err != nil {
			return err
		}
		for _, r := range stored {
			v, err := encodeRecord(r)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketRecords).Put(recordKey(r.ID, r.Version), v); err != nil {
				return err
			}
			if r.Status == records.StatusPending {
				err = tx.Bucket(bucketPending).Put(recordKey(r.ID, r.Version), []byte{})
			} else {
				err = tx.Bucket(bucketPatientsV1).Put(patientKey(r.PatientRef, r.ID), binary.BigEndian.AppendUint64(nil, uint64(r.Version)))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()

	s := MustOpen(t, path)
	list := func(ref, org string) []string {
		t.Helper()
		rs, err := s.Records(t.Context(), records.RecordFilter{PatientRef: ref, Org: org})
		if err != nil {
			t.Fatalf("Records(%s, %s): %v", ref, org, err)
		}
		var out []string
		for _, r := range rs {
			if r.Ciphertext != nil || r.CreatedAt.IsZero() || r.AnchorTx != "tx-"+r.ID {
				t.Errorf("listed %+v; want its metadata only", r)
			}
			out = append(out, fmt.Sprintf("%s@%d", r.ID, r.Version))
		}
		return out
	}
	for _, c := range []struct {
		ref, org string
		want     string
	}{{"p", "", "[r1@2]"}, {"p", "h-a", "[r1@1]"}, {"p", "h-b", "[r1@2]"}, {"q", "", "[r3@1]"}, {"q", "h-b", "[]"}} {
		if got := fmt.Sprint(list(c.ref, c.org)); got != c.want {
			t.Errorf("after migration, Records(%s, org %q) = %s, want %s", c.ref, c.org, got, c.want)
		}
	}
	err = s.db.bolt.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketPatientsV1) != nil {
			t.Error("schema 1's patients index survived the migration")
		}
		if v := tx.Bucket(bucketMeta).Get([]byte("schema")); string(v) != schemaVersion {
			t.Errorf("schema after migration = %q, want %q", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRecord(t.Context(), "r1", 2); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	if got := fmt.Sprint(list("p", "")); got != "[r1@1]" {
		t.Errorf("after deleting r1 v2, Records(p) = %s, want [r1@1]", got)
	}
}
