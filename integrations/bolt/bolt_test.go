package bolt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
	"github.com/medshare/medshare/records/recordstest"
)

func TestRecordStore(t *testing.T) {
	recordstest.Run(t, func(t *testing.T) records.Store {
		return MustOpen(t, filepath.Join(t.TempDir(), "store", "records.db"))
	})
}

func TestOpen(t *testing.T) {
	t.Run("OK_ReopenKeepsData", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "records.db")
		s := MustOpen(t, path)
		r := &records.Record{ID: "r1", Version: 1, PatientRef: "p", Status: records.StatusPending, Ciphertext: []byte{0, 1, 2}}
		if err := s.CreateRecord(t.Context(), r); err != nil {
			t.Fatalf("CreateRecord: %v", err)
		}
		if err := s.MarkAnchored(t.Context(), "r1", 1, "tx-1", 7); err != nil {
			t.Fatalf("MarkAnchored: %v", err)
		}
		if err := s.SaveAlias(t.Context(), "p", "patient-1"); err != nil {
			t.Fatalf("SaveAlias: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s = MustOpen(t, path)
		got, err := s.Records(t.Context(), records.RecordFilter{PatientRef: "p"})
		if err != nil || len(got) != 1 || got[0].AnchorTx != "tx-1" {
			t.Errorf("Records after reopen = %+v, %v; want r1 anchored in tx-1", got, err)
		}
		if r, err := s.Record(t.Context(), "r1"); err != nil || !bytes.Equal(r.Ciphertext, []byte{0, 1, 2}) {
			t.Errorf("Record after reopen = %+v, %v; want r1 with its ciphertext", r, err)
		}
		if m, err := s.Aliases(t.Context(), []string{"p"}); err != nil || m["p"] != "patient-1" {
			t.Errorf("Aliases after reopen = %v, %v; want p → patient-1", m, err)
		}
	})
	t.Run("OK_PrivateFileAndDirectory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "store")
		MustOpen(t, filepath.Join(dir, "records.db"))
		for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "records.db"): 0o600} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("mode of %s = %v, want %v", path, got, want)
			}
		}
	})
	t.Run("ErrUnavailable_FileLocked", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "records.db")
		MustOpen(t, path)
		s, err := Open(path)
		if err == nil {
			s.Close()
		}
		if got := consent.ErrorCode(err); got != consent.EUNAVAILABLE {
			t.Errorf("second Open error = %v (code %q), want %q", err, got, consent.EUNAVAILABLE)
		}
	})
	t.Run("ErrIntegrity_OtherSchema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "records.db")
		b, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Update(func(tx *bbolt.Tx) error {
			meta, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return meta.Put([]byte("schema"), []byte("99"))
		})
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		s, err := Open(path)
		if err == nil {
			s.Close()
		}
		if got := consent.ErrorCode(err); got != consent.EINTEGRITY {
			t.Errorf("Open error = %v (code %q), want %q", err, got, consent.EINTEGRITY)
		}
	})
}

// MustOpen opens the store at path and closes it when the test ends.
func MustOpen(tb testing.TB, path string) *RecordStore {
	tb.Helper()
	s, err := Open(path)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}
