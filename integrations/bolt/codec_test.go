package bolt

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/records"
)

func TestRecordCodec(t *testing.T) {
	tests := []struct {
		note string
		r    *records.Record
	}{
		{"zero record", &records.Record{}},
		{"nil and empty slices stay apart", &records.Record{ID: "r", Ciphertext: []byte{}, Salt: nil}},
		{"every field", &records.Record{
			ID: "r1.a-b_c", Version: 9_999_999_999, Patient: "p-7", PatientRef: "abc-_", Category: "lab",
			ContentType: "text/plain", Org: "h", AuthorRef: "a", Status: records.StatusAnchored,
			CreatedAt:  time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("", -3600)),
			Ciphertext: []byte{0, 255, 128}, WrappedDEK: []byte{1}, KEKVersion: -2, Salt: []byte{2},
			Hash: "h", Size: 1 << 40, AnchorTx: "tx", AnchorBlock: 1<<64 - 1,
		}},
	}
	for _, tt := range tests {
		b, err := encodeRecord(tt.r)
		if err != nil {
			t.Fatalf("%s: encode: %v", tt.note, err)
		}
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", tt.note, err)
		}
		if diff := cmp.Diff(tt.r, got); diff != "" {
			t.Errorf("%s: round trip mismatch (-want +got):\n%s", tt.note, diff)
		}
		if _, err := decodeRecord(b[:len(b)-1]); err == nil {
			t.Errorf("%s: truncated encoding decoded without error", tt.note)
		}
		if _, err := decodeRecord(append(b, 0)); err == nil {
			t.Errorf("%s: encoding with trailing byte decoded without error", tt.note)
		}
	}
}

// FuzzDecodeRecord checks that no stored value makes decoding panic, and
// that whatever decodes survives another round trip unchanged.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []*records.Record{
		{},
		{ID: "r1", Version: 3, Ciphertext: []byte("x"), CreatedAt: time.Unix(1e9, 5).UTC()},
	} {
		b, err := encodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := encodeRecord(r)
		if err != nil {
			return // a zone offset time.MarshalBinary refuses
		}
		r2, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Errorf("round trip mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestMetaCodec(t *testing.T) {
	full := &records.Record{
		ID: "r1.a-b_c", Version: 9_999_999_999, Patient: "p-7", PatientRef: "abc-_", Category: "lab",
		ContentType: "text/plain", Org: "h", AuthorRef: "a", Status: records.StatusAnchored,
		CreatedAt:  time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("", -3600)),
		Ciphertext: []byte{0, 255, 128}, WrappedDEK: []byte{1}, KEKVersion: -2, Salt: []byte{2},
		Hash: "h", Size: 1 << 40, AnchorTx: "tx", AnchorBlock: 1<<64 - 1,
	}
	for _, r := range []*records.Record{{}, full} {
		b, err := encodeMeta(r)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if bytes.Contains(b, []byte{0, 255, 128}) {
			t.Errorf("metadata encoding %x holds the ciphertext", b)
		}
		got, err := decodeMeta(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		want := *r
		want.Ciphertext, want.WrappedDEK, want.Salt = nil, nil, nil
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("round trip mismatch (-want +got):\n%s", diff)
		}
		if _, err := decodeMeta(b[:len(b)-1]); err == nil {
			t.Error("truncated encoding decoded without error")
		}
		if _, err := decodeMeta(append(b, 0)); err == nil {
			t.Error("encoding with trailing byte decoded without error")
		}
		if rec, err := encodeRecord(r); err != nil {
			t.Fatal(err)
		} else if _, err := decodeMeta(rec); err == nil {
			t.Error("a full record encoding decoded as metadata")
		}
	}
}
