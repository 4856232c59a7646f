// Package recordstest is the conformance suite for records.Store. Every
// implementation (integrations/bolt, integrations/mongo) runs Run against a
// real instance of its dependency, so the two stores cannot drift apart.
package recordstest

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// Run runs the conformance suite against the stores open returns. open must
// return a new, empty store on every call and arrange for its release with
// t.Cleanup; Close must therefore tolerate a second call, because some
// subtests close the store themselves.
//
// Besides the error codes documented on records.Store, the suite holds
// implementations to rules the interface leaves implicit: EINVALID for a
// record with an empty id or a version below 1, a filter without a patient
// or with a negative limit, an alias with an empty ref or id; ECONFLICT when
// a ref is saved as the alias of another id; Records lists, per id, the
// highest anchored version of that patient (of that author organization
// when the filter names one), metadata only (empty Ciphertext, WrappedDEK
// and Salt); PendingRecords may come in any order; the first save of a notice
// id wins, a later one changes nothing; every error carries a
// *consent.Error with a message.
func Run(t *testing.T, open func(t *testing.T) records.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"CreateRecord", createTests},
		{"Record", recordTests},
		{"MarkAnchored", markAnchoredTests},
		{"DeleteRecord", deleteTests},
		{"Records", recordsTests},
		{"RecordsOfOrg", orgTests},
		{"PendingRecords", pendingTests},
		{"Aliases", aliasTests},
		{"Notices", noticeTests},
		{"Ping", pingTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
			}
		})
	}
}

// test is one subtest of the suite; its name says what it proves.
type test struct {
	name string
	fn   func(t *testing.T, s records.Store)
}

// cmpOpts compare records the way every store can keep them: times at the
// millisecond (MongoDB's precision) and nil slices equal to empty ones.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool {
		return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
	}),
	cmpopts.EquateEmpty(),
}

// createdAt is a fixed time with nanoseconds, so stores that keep only
// milliseconds are exercised.
var createdAt = time.Date(2025, time.March, 14, 15, 9, 26, 535_897_932, time.UTC)

// patientRef returns a pseudonym shaped like the real ones:
// base64url(sha256(name)), so refs contain '-' and '_' now and then.
func patientRef(name string) string {
	sum := sha256.Sum256([]byte("patient:" + name))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newRecord returns a pending record version with every field set.
func newRecord(id string, version int, ref string) *records.Record {
	return &records.Record{
		ID:          id,
		Version:     version,
		Patient:     "patient-of-" + ref[:6],
		PatientRef:  ref,
		Category:    "lab",
		ContentType: "application/fhir+json",
		Org:         "hospital-a",
		AuthorRef:   "author-ref-1",
		CreatedAt:   createdAt.Add(time.Duration(version) * time.Hour),
		Status:      records.StatusPending,
		Ciphertext:  []byte(fmt.Sprintf("ciphertext of %s v%d", id, version)),
		WrappedDEK:  []byte{0x00, 0x01, 0xfe, 0xff, byte(version)},
		KEKVersion:  2,
		Salt:        []byte("0123456789abcdef"),
		Hash:        "hash-" + id,
		Size:        1234 + version,
	}
}

// keysAndTx describes records as id@version:anchorTx, for messages.
func keysAndTx(rs []*records.Record) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s@%d:%s", r.ID, r.Version, r.AnchorTx))
	}
	return out
}

// anchored returns a copy of r as MarkAnchored leaves it.
func anchored(r *records.Record, tx string, block uint64) *records.Record {
	c := *r
	c.Status, c.AnchorTx, c.AnchorBlock = records.StatusAnchored, tx, block
	return &c
}

// mustCreate stores every record or fails the test.
func mustCreate(tb testing.TB, s records.Store, rs ...*records.Record) {
	tb.Helper()
	for _, r := range rs {
		if err := s.CreateRecord(tb.Context(), r); err != nil {
			tb.Fatalf("CreateRecord(%s v%d): %v", r.ID, r.Version, err)
		}
	}
}

// mustAnchor marks a record version anchored or fails the test.
func mustAnchor(tb testing.TB, s records.Store, id string, version int) {
	tb.Helper()
	if err := s.MarkAnchored(tb.Context(), id, version, anchorTx(id, version), uint64(version)); err != nil {
		tb.Fatalf("MarkAnchored(%s v%d): %v", id, version, err)
	}
}

// anchorTx is the tx id mustAnchor uses for a version.
func anchorTx(id string, version int) string { return fmt.Sprintf("tx-%s-%d", id, version) }

// mustRecord returns the latest version of id or fails the test.
func mustRecord(tb testing.TB, s records.Store, id string) *records.Record {
	tb.Helper()
	r, err := s.Record(tb.Context(), id)
	if err != nil {
		tb.Fatalf("Record(%s): %v", id, err)
	}
	return r
}

// mustRecords returns a page of records or fails the test.
func mustRecords(tb testing.TB, s records.Store, f records.RecordFilter) []*records.Record {
	tb.Helper()
	rs, err := s.Records(tb.Context(), f)
	if err != nil {
		tb.Fatalf("Records(%+v): %v", f, err)
	}
	return rs
}

// mustPending returns the pending records sorted by id and version.
func mustPending(tb testing.TB, s records.Store) []*records.Record {
	tb.Helper()
	rs, err := s.PendingRecords(tb.Context())
	if err != nil {
		tb.Fatalf("PendingRecords: %v", err)
	}
	slices.SortFunc(rs, func(a, b *records.Record) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return rs
}

// wantCode fails the test unless err carries code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := consent.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (err %v), want %q", got, err, code)
	}
	// Callers show Message to people, so it must say something.
	var e *consent.Error
	if !errors.As(err, &e) || e.Message == "" {
		tb.Fatalf("error %v is not a *consent.Error with a message", err)
	}
}

// wantRecord fails the test unless got equals want.
func wantRecord(tb testing.TB, got, want *records.Record) {
	tb.Helper()
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		tb.Errorf("record mismatch (-want +got):\n%s", diff)
	}
}

// wantKeys fails the test unless rs are exactly the given id@version keys
// in that order.
func wantKeys(tb testing.TB, rs []*records.Record, want ...string) {
	tb.Helper()
	got := make([]string, 0, len(rs))
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%s@%d", r.ID, r.Version))
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("records mismatch (-want +got):\n%s", diff)
	}
}
