package consent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/medshare/medshare/consent"
)

// Transaction metadata: fixtures are written by tx "seed" at tSeed, a row's
// own setup by txSetup at tSetup, and the transaction under test is txTest
// at tNow.
var (
	tSeed  = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	tSetup = time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)
	tNow   = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

const (
	txSeed    = "seed"
	txSetup   = "setup"
	txTest    = "tx-under-test"
	submitter = "node-1"
)

// Fixture organizations and consents (see seeded).
const (
	orgHosp     = "hosp-1"    // active hospital
	orgIns      = "ins-1"     // active insurer
	orgInactive = "lab-off"   // inactive lab
	consentP1   = "c-p1-hosp" // patient1 → orgHosp, lab, TREAT
	recordSeed  = "rec-seed"  // anchored at version 1 by orgHosp
	entrySeed   = "e-seed"    // logged access entry for patient1
)

var pz = func() *consent.Pseudonymizer {
	p, err := consent.NewPseudonymizer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		panic(err)
	}
	return p
}()

var (
	patient1 = pz.PatientRef("p-1")
	patient2 = pz.PatientRef("p-2")
	actor1   = pz.SubjectRef("dr-1")
	hash1    = pz.SubjectRef("content-hash-1") // any 43-char base64url will do
)

// cmpOpts compares domain values: AccessEntry carries an unexported paging
// cursor that is no part of its value.
var cmpOpts = []cmp.Option{cmpopts.IgnoreUnexported(consent.AccessEntry{})}

// world is a MemState plus helpers to drive the contract.
type world struct {
	tb testing.TB
	st *consent.MemState
}

// newWorld returns an empty state whose next transaction is a seed.
func newWorld(tb testing.TB) *world {
	tb.Helper()
	st := consent.NewMemState()
	st.ID, st.Time, st.Submitter = txSeed, tSeed, submitter
	return &world{tb: tb, st: st}
}

// seeded returns a state holding the fixtures, ready for txTest at tNow.
func seeded(tb testing.TB) *world {
	tb.Helper()
	w := newWorld(tb)
	w.mustApply(consent.OpRegisterOrg, consent.RegisterOrgArgs{ID: orgHosp, Name: "General Hospital", Type: consent.OrgHospital})
	w.mustApply(consent.OpRegisterOrg, consent.RegisterOrgArgs{ID: orgIns, Name: "Insurer", Type: consent.OrgInsurer})
	w.mustApply(consent.OpRegisterOrg, consent.RegisterOrgArgs{ID: orgInactive, Name: "Closed Lab", Type: consent.OrgLab})
	w.mustApply(consent.OpSetOrgStatus, consent.SetOrgStatusArgs{ID: orgInactive, Status: consent.StatusInactive})
	w.mustApply(consent.OpGrantConsent, consent.GrantConsentArgs{
		ID: consentP1, PatientRef: patient1, Grantee: consent.Grantee{Org: orgHosp},
		Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat},
	})
	w.mustApply(consent.OpAnchorRecord, consent.Anchor{
		RecordID: recordSeed, Version: 1, PatientRef: patient1, Org: orgHosp, Category: "lab", Hash: hash1,
	})
	w.mustApply(consent.OpLogAccess, entry(entrySeed, tSeed))
	w.st.ID, w.st.Time = txTest, tNow
	return w
}

// apply runs op (a submit op, or a query when consent.IsQuery says so) with
// args: raw JSON when args is []byte, else its JSON encoding.
func (w *world) apply(op string, args any) ([]byte, error) {
	w.tb.Helper()
	b, ok := args.([]byte)
	if !ok {
		b = mustJSON(w.tb, args)
	}
	if consent.IsQuery(op) {
		return consent.Query(w.st, op, b)
	}
	return consent.Apply(w.st, op, b)
}

// mustApply is apply that fails the test on error.
func (w *world) mustApply(op string, args any) []byte {
	w.tb.Helper()
	out, err := w.apply(op, args)
	if err != nil {
		w.tb.Fatalf("%s: %v", op, err)
	}
	return out
}

// mustQuery runs a query and decodes its result into R.
func mustQuery[R any](w *world, op string, args any) R {
	w.tb.Helper()
	return mustDecode[R](w.tb, w.mustApply(op, args))
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustDecode[R any](tb testing.TB, b []byte) R {
	tb.Helper()
	var r R
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatalf("decode %T from %s: %v", r, b, err)
	}
	return r
}

// entry returns a valid access entry for patient1 read by actor1 at t.
func entry(id string, t time.Time) consent.AccessEntry {
	return consent.AccessEntry{
		ID: id, Time: t, Action: "read", RecordID: recordSeed, PatientRef: patient1,
		ActorRef: actor1, Role: "clinician", Org: orgHosp, Purpose: consent.PurposeTreat,
		Decision: consent.DecisionAllow, Reasons: []string{"consent " + consentP1},
		ConsentID: consentP1, ConsentVersion: 1, PolicyDigest: "sha256:abc",
	}
}

// logged is e as the contract stores it when logged by txTest.
func logged(e consent.AccessEntry) consent.AccessEntry {
	e.Time, e.AnchoredAt, e.Tx = e.Time.UTC(), tNow, txTest
	if e.Reasons == nil {
		e.Reasons = []string{}
	}
	return e
}

// with returns a copy of v changed by fn; it keeps table rows one-liners.
func with[T any](v T, fn func(*T)) T {
	fn(&v)
	return v
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// checkCode fails unless err has code want ("" meaning no error).
func checkCode(tb testing.TB, err error, want string) {
	tb.Helper()
	if got := consent.ErrorCode(err); got != want {
		tb.Fatalf("error code = %q, want %q (err: %v)", got, want, err)
	}
}

// row is one table-test case of a contract operation with result type R.
type row[R any] struct {
	name  string                // outcome: OK, ErrConflict, ...
	note  string                // what the row proves
	setup func(w *world)        // optional extra state before the tx under test
	args  any                   // operation arguments ([]byte for raw JSON)
	code  string                // wanted error code, "" for success
	want  *R                    // wanted result on success, nil to skip
	check func(w *world, got R) // optional extra checks on success
}

// runRows runs each row on a fresh seeded world.
func runRows[R any](t *testing.T, op string, rows []row[R]) {
	t.Helper()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if r.note == "" {
				t.Fatal("row has no note")
			}
			t.Log(r.note)
			w := seeded(t)
			if r.setup != nil {
				w.st.ID, w.st.Time = txSetup, tSetup
				r.setup(w)
				w.st.ID, w.st.Time = txTest, tNow
			}
			out, err := w.apply(op, r.args)
			checkCode(t, err, r.code)
			if r.code != "" {
				if out != nil {
					t.Errorf("result on error = %s, want nil", out)
				}
				return
			}
			got := mustDecode[R](t, out)
			if r.want != nil {
				if diff := cmp.Diff(*r.want, got, cmpOpts...); diff != "" {
					t.Errorf("result mismatch (-want +got):\n%s", diff)
				}
			}
			if r.check != nil {
				r.check(w, got)
			}
		})
	}
}

// long returns s repeated to length n.
func long(s string, n int) string { return strings.Repeat(s, n)[:n] }

// seq returns n distinct valid ids or categories: prefix-0000, prefix-0001, ...
func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// repeat returns n copies of s.
func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
