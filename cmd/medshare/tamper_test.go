package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/bolt"
	"github.com/medshare/medshare/integrations/journal"
	"github.com/medshare/medshare/records"
)

// uploadTwo stores two records of p-7 and returns their ids.
func uploadTwo(tb testing.TB, j *journeys) (string, string) {
	tb.Helper()
	var ids []string
	for _, c := range []string{`{"a":"first"}`, `{"b":"second"}`} {
		r, err := j.expect(context.Background(), 201, "POST", "/v1/records", drAsh, map[string]any{
			"patient": "p-7", "category": "lab", "contentType": "application/json", "content": c})
		if err != nil {
			tb.Fatal(err)
		}
		var out struct{ ID string }
		if err := r.JSON(&out); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, out.ID)
	}
	return ids[0], ids[1]
}

// rewrite replaces a stored record through the store's own API, as an
// attacker with write access to the database would.
func rewrite(tb testing.TB, s *bolt.RecordStore, id string, fn func(r *records.Record)) {
	tb.Helper()
	ctx := context.Background()
	r, err := s.Record(ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	fn(r)
	if err := s.DeleteRecord(ctx, id, r.Version); err != nil {
		tb.Fatal(err)
	}
	status, tx, block := r.Status, r.AnchorTx, r.AnchorBlock
	r.Status = records.StatusPending
	if err := s.CreateRecord(ctx, r); err != nil {
		tb.Fatal(err)
	}
	if status == records.StatusAnchored {
		if err := s.MarkAnchored(ctx, id, r.Version, tx, block); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestTamperedStoreFailsClosed edits the stored records behind medshare's
// back; every read then fails closed with an integrity problem, returns no
// content, and is logged as denied.
func TestTamperedStoreFailsClosed(t *testing.T) {
	tests := []struct {
		note   string
		tamper func(a, b *records.Record)
	}{
		{"ciphertext byte flipped", func(a, _ *records.Record) { a.Ciphertext[len(a.Ciphertext)/2] ^= 1 }},
		{"wrapped DEK swapped with another record's", func(a, b *records.Record) { a.WrappedDEK = b.WrappedDEK }},
		{"ciphertext swapped with another record's", func(a, b *records.Record) { a.Ciphertext = b.Ciphertext }},
		{"everything swapped with another record's", func(a, b *records.Record) {
			a.Ciphertext, a.WrappedDEK, a.Salt, a.Hash = b.Ciphertext, b.WrappedDEK, b.Salt, b.Hash
		}},
		{"category changed", func(a, _ *records.Record) { a.Category = "notes" }},
		{"patient changed", func(a, _ *records.Record) { a.Patient, a.PatientRef = "p-8", strings.Repeat("Q", 43) }},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			dir := t.TempDir()
			m := MustStart(t, testConfig(dir))
			j := setupOrgs(t, m)
			idA, idB := uploadTwo(t, j)
			m.Close()

			s, err := bolt.Open(storePath(dir))
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.Record(context.Background(), idB)
			if err != nil {
				t.Fatal(err)
			}
			rewrite(t, s, idA, func(a *records.Record) { tt.tamper(a, b) })
			s.Close()

			m2 := MustStart(t, testConfig(dir))
			j2 := newJourneys(t, m2)
			j2.tokens = map[string]string{}
			r, err := j2.expect(context.Background(), 500, "GET", "/v1/records/"+idA, drAsh, nil, treat...)
			if err != nil {
				t.Fatal(err)
			}
			assertProblem(t, r)
			if !strings.Contains(string(r.Body), "integrity") || strings.Contains(string(r.Body), "first") {
				t.Fatalf("integrity problem expected, no content: %s", r.Body)
			}
			// The untouched record still reads.
			if _, err := j2.expect(context.Background(), 200, "GET", "/v1/records/"+idB, drAsh, nil, treat...); err != nil {
				t.Fatal(err)
			}
			log, err := j2.expect(context.Background(), 200, "GET", "/v1/access-log", auditor1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(log.Body), "integrity check") {
				t.Fatalf("integrity failure not in the access log: %s", log.Body)
			}
		})
	}
}

// TestTamperedLedgerIsNamed edits and deletes committed blocks; `medshare
// ledger verify` fails and names the damaged block.
func TestTamperedLedgerIsNamed(t *testing.T) {
	for _, tt := range []struct {
		note   string
		tamper func(b *bbolt.Bucket) uint64
	}{
		{"byte changed in block 3", func(b *bbolt.Bucket) uint64 {
			k := binary.BigEndian.AppendUint64(nil, 3)
			v := bytes.Clone(b.Get(k))
			i := bytes.Index(v, []byte(`"Op":"`))
			if i < 0 {
				i = len(v) / 2
			}
			v[i+7] ^= 0x01
			if err := b.Put(k, v); err != nil {
				panic(err)
			}
			return 3
		}},
		{"block 2 deleted", func(b *bbolt.Bucket) uint64 {
			if err := b.Delete(binary.BigEndian.AppendUint64(nil, 2)); err != nil {
				panic(err)
			}
			return 2
		}},
	} {
		t.Run(tt.note, func(t *testing.T) {
			dir := t.TempDir()
			m := MustStart(t, testConfig(dir))
			setupOrgs(t, m)
			m.Close()
			db, err := bbolt.Open(ledgerPath(dir), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			var want uint64
			if err := db.Update(func(tx *bbolt.Tx) error { want = tt.tamper(tx.Bucket([]byte("blocks"))); return nil }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			var out, errOut bytes.Buffer
			if code := run(context.Background(), []string{"ledger", "verify", "--data", dir}, &out, &errOut); code == 0 {
				t.Fatalf("verify passed a tampered ledger: %s", out.String())
			}
			if !strings.Contains(errOut.String(), "at block "+strconv.FormatUint(want, 10)) {
				t.Fatalf("verify did not name block %d: %s", want, errOut.String())
			}
		})
	}
}

// TestTamperedJournalIsNamed: ledger verify reports the access-log
// journal's pending entries, and fails naming the offset of a damaged
// frame.
func TestTamperedJournalIsNamed(t *testing.T) {
	dir := t.TempDir()
	m := MustStart(t, testConfig(dir))
	j := newJourneys(t, m)
	if err := j.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Close() // anchors what was pending: the journal still holds the entries until compaction
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"ledger", "verify", "--data", dir}, &out, &errOut); code != 0 {
		t.Fatalf("verify failed on an intact data dir: %s", errOut.String())
	}
	if !strings.Contains(out.String(), "access-log journal OK: 0 entries waiting") {
		t.Fatalf("verify output lacks the journal: %s", out.String())
	}
	// More than a commit's worth of frames after the damaged one: damage
	// in the last commit's window is indistinguishable from a torn write.
	jr, err := journal.Open(journal.Options{Path: journalPath(dir)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		e := consent.AccessEntry{ID: fmt.Sprintf("a-extra-%03d", i), Time: time.Now(), Action: "read", RecordID: "r-1",
			PatientRef: "ref-1", ActorRef: "ref-2", Role: "provider", Org: "hospital-a", Purpose: "TREAT",
			Decision: "allow", Reasons: []string{strings.Repeat("a reason long enough to fill the journal ", 10)}, PolicyDigest: "d"}
		if err := jr.Enqueue(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := jr.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(journalPath(dir))
	if err != nil || len(bytes.TrimRight(b, "\x00")) < 100<<10 {
		t.Fatalf("journal: %d bytes, %v", len(b), err)
	}
	b[20] ^= 0x01 // inside the first frame
	if err := os.WriteFile(journalPath(dir), b, 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"ledger", "verify", "--data", dir}, &out, &errOut); code == 0 {
		t.Fatalf("verify passed a damaged journal: %s", out.String())
	}
	if !strings.Contains(errOut.String(), "corrupt at offset 0") {
		t.Fatalf("verify did not name the damaged frame: %s", errOut.String())
	}
	// The node refuses to start on it rather than drop acknowledged entries.
	if _, err := Open(context.Background(), testConfig(dir), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Open on a damaged journal: %v", err)
	}
}
