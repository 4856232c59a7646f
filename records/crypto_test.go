package records

import (
	"bytes"
	"testing"

	"github.com/medshare/medshare/consent"
)

func mustRing(tb testing.TB, fill byte) *LocalKeyRing {
	tb.Helper()
	r, err := NewLocalKeyRing(map[int][]byte{1: bytes.Repeat([]byte{fill}, 32)}, 1)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func mustSealed(tb testing.TB, ring KeyRing, id, patientRef, category string, content []byte) *Record {
	tb.Helper()
	r := &Record{ID: id, Version: 1, PatientRef: patientRef, Category: category, ContentType: "application/fhir+json", Org: "hospital-a"}
	if err := Seal(ring, r, content); err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestSealOpen(t *testing.T) {
	ring := mustRing(t, 1)
	content := []byte(`{"resourceType":"Observation","valueQuantity":{"value":5.4}}`)
	r := mustSealed(t, ring, "r-1", "ref-a", "lab", content)
	if bytes.Contains(r.Ciphertext, []byte("Observation")) {
		t.Fatal("ciphertext contains plaintext")
	}
	got, err := Open(ring, r, r.Hash)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(got, content) {
		t.Fatalf("Open = %q, want %q", got, content)
	}
	// Two seals of the same content differ (fresh DEK, nonce, salt).
	r2 := mustSealed(t, ring, "r-1", "ref-a", "lab", content)
	if bytes.Equal(r.Ciphertext, r2.Ciphertext) || bytes.Equal(r.WrappedDEK, r2.WrappedDEK) || r.Hash == r2.Hash {
		t.Fatal("two seals of the same content are not independent")
	}
}

// TestOpenFailsClosed tampers with every protected part of a sealed record
// and checks that Open returns EINTEGRITY and no data.
func TestOpenFailsClosed(t *testing.T) {
	ring := mustRing(t, 1)
	a := mustSealed(t, ring, "r-a", "ref-a", "lab", []byte(`{"a":1}`))
	b := mustSealed(t, ring, "r-b", "ref-b", "lab", []byte(`{"b":2}`))
	tests := []struct {
		note   string
		tamper func(r *Record) (ring KeyRing, anchor string)
	}{
		{"flipped ciphertext byte", func(r *Record) (KeyRing, string) { r.Ciphertext[len(r.Ciphertext)/2] ^= 1; return ring, r.Hash }},
		{"flipped wrapped DEK byte", func(r *Record) (KeyRing, string) { r.WrappedDEK[20] ^= 0x80; return ring, r.Hash }},
		{"ciphertext swapped from another record", func(r *Record) (KeyRing, string) { r.Ciphertext = b.Ciphertext; return ring, r.Hash }},
		{"wrapped DEK swapped from another record", func(r *Record) (KeyRing, string) { r.WrappedDEK = b.WrappedDEK; return ring, r.Hash }},
		{"both swapped from another record", func(r *Record) (KeyRing, string) {
			r.Ciphertext, r.WrappedDEK, r.Salt, r.Hash = b.Ciphertext, b.WrappedDEK, b.Salt, b.Hash
			return ring, b.Hash
		}},
		{"patient changed (AAD)", func(r *Record) (KeyRing, string) { r.PatientRef = "ref-b"; return ring, r.Hash }},
		{"category changed (AAD)", func(r *Record) (KeyRing, string) { r.Category = "imaging"; return ring, r.Hash }},
		{"content type changed (AAD)", func(r *Record) (KeyRing, string) { r.ContentType = "text/plain"; return ring, r.Hash }},
		{"version changed (AAD)", func(r *Record) (KeyRing, string) { r.Version = 2; return ring, r.Hash }},
		{"wrong KEK", func(r *Record) (KeyRing, string) { return mustRing(t, 2), r.Hash }},
		{"anchor hash differs", func(r *Record) (KeyRing, string) { return ring, b.Hash }},
		{"stored hash and salt changed together", func(r *Record) (KeyRing, string) {
			r.Salt[0] ^= 1
			r.Hash = ContentHash(r.Salt, []byte(`{"a":1}`))
			return ring, a.Hash
		}},
		{"truncated ciphertext", func(r *Record) (KeyRing, string) { r.Ciphertext = r.Ciphertext[:5]; return ring, r.Hash }},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			r := cloneRecord(a)
			k, anchor := tt.tamper(r)
			got, err := Open(k, r, anchor)
			if code := consent.ErrorCode(err); code != consent.EINTEGRITY {
				t.Fatalf("Open error code = %q (%v), want %q", code, err, consent.EINTEGRITY)
			}
			if got != nil {
				t.Fatalf("Open returned data on failure")
			}
		})
	}
	t.Run("unknown KEK version", func(t *testing.T) {
		r := cloneRecord(a)
		r.KEKVersion = 9
		if _, err := Open(ring, r, r.Hash); consent.ErrorCode(err) != consent.ENOTFOUND {
			t.Fatalf("err = %v, want ENOTFOUND", err)
		}
	})
}

func TestLocalKeyRingRotation(t *testing.T) {
	old := mustRing(t, 1)
	r := mustSealed(t, old, "r-1", "ref", "lab", []byte("x"))
	rotated, err := NewLocalKeyRing(map[int][]byte{1: bytes.Repeat([]byte{1}, 32), 2: bytes.Repeat([]byte{2}, 32)}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(rotated, r, r.Hash); err != nil {
		t.Fatalf("record sealed under KEK 1 does not open after rotation: %v", err)
	}
	n := mustSealed(t, rotated, "r-2", "ref", "lab", []byte("y"))
	if n.KEKVersion != 2 {
		t.Fatalf("new record wrapped with KEK %d, want 2", n.KEKVersion)
	}
	if _, err := NewLocalKeyRing(map[int][]byte{1: make([]byte, 16)}, 1); consent.ErrorCode(err) != consent.EINVALID {
		t.Fatalf("short KEK accepted: %v", err)
	}
	if _, err := NewLocalKeyRing(map[int][]byte{1: make([]byte, 32)}, 3); consent.ErrorCode(err) != consent.EINVALID {
		t.Fatalf("missing current KEK accepted: %v", err)
	}
}
