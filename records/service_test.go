package records_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
	"github.com/medshare/medshare/policy"
	"github.com/medshare/medshare/records"
	"github.com/medshare/medshare/records/recordstest"
)

// fakeSigner "signs" by base64-encoding the payload, so tests can read it.
type fakeSigner struct{}

func (fakeSigner) Sign(p []byte) (string, error) { return base64.RawURLEncoding.EncodeToString(p), nil }

// failingLedger fails Submit for one operation, as an unreachable ledger would.
type failingLedger struct {
	consent.Ledger
	op string
}

func (f failingLedger) Submit(ctx context.Context, op string, args []byte) ([]byte, consent.Receipt, error) {
	if op == f.op {
		return nil, consent.Receipt{}, consent.Errorf(consent.EUNAVAILABLE, "ledger unreachable")
	}
	return f.Ledger.Submit(ctx, op, args)
}

type env struct {
	svc    *records.Service
	store  *recordstest.MemStore
	ledger *consenttest.MemLedger
	refs   *consent.Pseudonymizer
	author policy.Subject
	other  policy.Subject
	ins    policy.Subject
	pat    policy.Subject
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := consent.NewPseudonymizer(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := records.NewLocalKeyRing(map[int][]byte{1: bytes.Repeat([]byte{3}, 32)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: recordstest.NewMemStore(), ledger: consenttest.NewMemLedger(), refs: refs}
	cs := consent.NewSealedService(e.ledger, refs)
	e.svc = &records.Service{Store: e.store, Keys: ring, Ledger: cs, Consents: cs,
		Access: records.LedgerAccessLog{Ledger: cs}, Authz: eng, Refs: refs, Receipts: fakeSigner{}}
	for _, o := range [][2]string{{"hosp-a", "hospital"}, {"hosp-b", "hospital"}, {"ins-x", "insurer"}} {
		if _, _, err := cs.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: o[0], Name: o[0], Type: o[1]}); err != nil {
			t.Fatal(err)
		}
	}
	sub := func(id, role, org, typ string) policy.Subject {
		s := policy.Subject{ID: id, Role: role, Org: org, OrgType: typ, Ref: refs.SubjectRef(id)}
		if role == "patient" {
			s.PatientRef = refs.PatientRef(id)
		}
		return s
	}
	e.author, e.other = sub("dr-a", "provider", "hosp-a", "hospital"), sub("dr-b", "provider", "hosp-b", "hospital")
	e.ins, e.pat = sub("bot", "insurer", "ins-x", "insurer"), sub("p-1", "patient", "", "")
	e.register(t, e.pat, "hosp-a")
	return e
}

// register makes org one of patient's care providers: a consent naming it
// with an empty scope, which opens nothing to read.
func (e *env) register(t *testing.T, patient policy.Subject, org string) {
	t.Helper()
	if _, err := e.svc.Grant(context.Background(), patient, records.GrantRequest{
		Grantee: records.GranteeView{Org: org}, Categories: []string{}, Purposes: []string{"TREAT"}}); err != nil {
		t.Fatalf("register %s with %s: %v", patient.ID, org, err)
	}
}

const labJSON = `{"resourceType":"Observation","code":{"coding":[{"code":"4548-4"}]},"valueQuantity":{"value":5.4}}`

func (e *env) upload(t *testing.T) *records.Record {
	t.Helper()
	r, err := e.svc.Upload(context.Background(), e.author, records.UploadRequest{
		Patient: "p-1", Category: "lab", ContentType: "application/fhir+json", Content: []byte(labJSON)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// lastEntry returns the newest access entry of patient p-1.
func (e *env) entries(t *testing.T) []consent.AccessEntry {
	t.Helper()
	page, err := e.svc.Ledger.AccessLog(context.Background(), consent.AccessFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []consent.AccessEntry
	for _, en := range page.Entries {
		if en.PatientRef == e.refs.PatientRef("p-1") && (en.Action == "read" || en.Action == "verify_claim") {
			out = append(out, en)
		}
	}
	return out
}

// events returns every access entry of patient p-1 but reads and claim
// checks: uploads, listings, consent changes.
func (e *env) events(t *testing.T) []consent.AccessEntry {
	t.Helper()
	page, err := e.svc.Ledger.AccessLog(context.Background(), consent.AccessFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []consent.AccessEntry
	for _, en := range page.Entries {
		if en.PatientRef == e.refs.PatientRef("p-1") && en.Action != "read" && en.Action != "verify_claim" {
			out = append(out, en)
		}
	}
	return out
}

func TestFetch(t *testing.T) {
	ctx := context.Background()
	t.Run("OK_AuthorTreat", func(t *testing.T) {
		e := newEnv(t)
		r := e.upload(t)
		res, err := e.svc.Fetch(ctx, e.author, records.FetchRequest{ID: r.ID, Purpose: "TREAT"})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Content) != labJSON {
			t.Fatalf("content %q", res.Content)
		}
		es := e.entries(t)
		if len(es) != 1 || es[0].ID != res.AccessID || es[0].Decision != "allow" || es[0].PolicyDigest != e.svc.Authz.Digest() {
			t.Fatalf("access log %+v", es)
		}
	})
	t.Run("ErrNotFound_DenialLooksLikeUnknownRecord_LoggedWithoutContent", func(t *testing.T) {
		e := newEnv(t)
		r := e.upload(t)
		res, err := e.svc.Fetch(ctx, e.other, records.FetchRequest{ID: r.ID, Purpose: "TREAT"})
		var ae *records.AccessError
		if errors.As(err, &ae) || consent.ErrorCode(err) != consent.ENOTFOUND || res != nil {
			t.Fatalf("err = %v, res = %v", err, res)
		}
		// The same answer, word for word, as for an id that does not exist.
		unknown := "r-" + strings.Repeat("z", 26)
		_, uerr := e.svc.Fetch(ctx, e.other, records.FetchRequest{ID: unknown, Purpose: "TREAT"})
		if got, want := strings.ReplaceAll(consent.ErrorMessage(err), r.ID, "ID"), strings.ReplaceAll(consent.ErrorMessage(uerr), unknown, "ID"); got != want || consent.ErrorCode(uerr) != consent.ENOTFOUND {
			t.Fatalf("denied read says %q, unknown record says %q", got, want)
		}
		es := e.entries(t)
		if len(es) != 1 || es[0].Decision != "deny" || len(es[0].Reasons) == 0 || !strings.Contains(es[0].Reasons[0], "no active consent") {
			t.Fatalf("access log %+v", es)
		}
	})
	t.Run("ErrForbidden_AuditorToldWhy", func(t *testing.T) {
		e := newEnv(t)
		r := e.upload(t)
		aud := policy.Subject{ID: "aud-1", Role: "auditor", Org: "audit-office", OrgType: "auditor", Ref: e.refs.SubjectRef("aud-1")}
		_, err := e.svc.Fetch(ctx, aud, records.FetchRequest{ID: r.ID, Purpose: "TREAT"})
		var ae *records.AccessError
		if !errors.As(err, &ae) || consent.ErrorCode(err) != consent.EFORBIDDEN || !strings.Contains(err.Error(), "auditors read the access log") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OK_ConsentThenRevoke", func(t *testing.T) {
		e := newEnv(t)
		r := e.upload(t)
		c, err := e.svc.Grant(ctx, e.pat, records.GrantRequest{Grantee: records.GranteeView{Org: "hosp-b"}, Categories: []string{"lab"}, Purposes: []string{"TREAT"}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.svc.Fetch(ctx, e.other, records.FetchRequest{ID: r.ID, Purpose: "TREAT"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision.ConsentID != c.ID || res.Decision.ConsentVersion != 1 {
			t.Fatalf("decision basis %+v, want consent %s v1", res.Decision, c.ID)
		}
		if _, err := e.svc.Revoke(ctx, e.pat, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Fetch(ctx, e.other, records.FetchRequest{ID: r.ID, Purpose: "TREAT"}); consent.ErrorCode(err) != consent.ENOTFOUND {
			t.Fatalf("after revoke: %v", err)
		}
	})
	tamper := []struct {
		note string
		fn   func(r *records.Record)
	}{
		{"patient changed in store", func(r *records.Record) { r.PatientRef = strings.Repeat("A", 43) }},
		{"category changed in store", func(r *records.Record) { r.Category = "notes" }},
		{"ciphertext byte flipped", func(r *records.Record) { r.Ciphertext[30] ^= 1 }},
		{"wrapped DEK byte flipped", func(r *records.Record) { r.WrappedDEK[30] ^= 1 }},
		{"hash and salt rewritten", func(r *records.Record) { r.Salt[0] ^= 1; r.Hash = records.ContentHash(r.Salt, []byte(labJSON)) }},
	}
	for _, tt := range tamper {
		t.Run("ErrIntegrity_"+tt.note, func(t *testing.T) {
			e := newEnv(t)
			r := e.upload(t)
			e.store.Tamper(r.ID, tt.fn)
			res, err := e.svc.Fetch(ctx, e.author, records.FetchRequest{ID: r.ID, Purpose: "TREAT"})
			if consent.ErrorCode(err) != consent.EINTEGRITY || res != nil {
				t.Fatalf("err = %v, res = %v", err, res)
			}
			// The failed read is logged as denied (under the tampered patient
			// ref when the patient was changed, so search the whole log).
			page, err := e.svc.Ledger.AccessLog(ctx, consent.AccessFilter{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var reads []consent.AccessEntry
			for _, en := range page.Entries {
				if en.Action == "read" {
					reads = append(reads, en)
				}
			}
			if len(reads) != 1 || reads[0].Decision != "deny" || !strings.Contains(reads[0].Reasons[0], "integrity") {
				t.Fatalf("access log %+v", reads)
			}
		})
	}
	t.Run("ErrUnavailable_NoContentWithoutDurableLog", func(t *testing.T) {
		e := newEnv(t)
		r := e.upload(t)
		e.svc.Access = records.LedgerAccessLog{Ledger: consent.NewService(failingLedger{Ledger: e.ledger, op: consent.OpLogAccess})}
		res, err := e.svc.Fetch(ctx, e.author, records.FetchRequest{ID: r.ID, Purpose: "TREAT"})
		if consent.ErrorCode(err) != consent.EUNAVAILABLE || res != nil {
			t.Fatalf("err = %v, res = %v", err, res)
		}
	})
	t.Run("ErrInvalid_Purpose", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.svc.Fetch(ctx, e.author, records.FetchRequest{ID: "r-1", Purpose: "SELL"}); consent.ErrorCode(err) != consent.EINVALID {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	t.Run("OK_NoPlaintextStored", func(t *testing.T) {
		e := newEnv(t)
		r := e.upload(t)
		stored, err := e.store.Record(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Status != records.StatusAnchored || bytes.Contains(stored.Ciphertext, []byte("Observation")) {
			t.Fatalf("stored %+v", stored)
		}
		a, err := e.svc.Ledger.GetAnchor(ctx, r.ID, 1)
		if err != nil || a.Hash != r.Hash || a.PatientRef != e.refs.RecordRef(e.refs.PatientRef("p-1"), r.ID) || a.PatientRef == e.refs.PatientRef("p-1") {
			t.Fatalf("anchor %+v %v", a, err)
		}
	})
	t.Run("ErrUnavailable_AnchorFailsLeavesNothing", func(t *testing.T) {
		e := newEnv(t)
		e.svc.Ledger = consent.NewService(failingLedger{Ledger: e.ledger, op: consent.OpAnchorRecord})
		_, err := e.svc.Upload(ctx, e.author, records.UploadRequest{Patient: "p-1", Category: "lab", ContentType: "text/plain", Content: []byte("x")})
		if consent.ErrorCode(err) != consent.EUNAVAILABLE {
			t.Fatalf("err = %v", err)
		}
		pending, _ := e.store.PendingRecords(ctx)
		list, _ := e.store.Records(ctx, records.RecordFilter{PatientRef: e.refs.PatientRef("p-1")})
		if len(pending)+len(list) != 0 {
			t.Fatalf("failed upload left %d pending, %d anchored records", len(pending), len(list))
		}
	})
	t.Run("ErrForbidden_PatientCannotUpload", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.svc.Upload(ctx, e.pat, records.UploadRequest{Patient: "p-1", Category: "lab", ContentType: "text/plain", Content: []byte("x")})
		if consent.ErrorCode(err) != consent.EFORBIDDEN {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OK_RecoverPending", func(t *testing.T) {
		e := newEnv(t)
		r := e.upload(t)
		// A crash after anchoring, before MarkAnchored; and one before anchoring.
		e.store.Tamper(r.ID, func(r *records.Record) { r.Status = records.StatusPending })
		orphan := &records.Record{ID: "r-orphan", Version: 1, PatientRef: e.refs.PatientRef("p-1"), Status: records.StatusPending}
		if err := e.store.CreateRecord(ctx, orphan); err != nil {
			t.Fatal(err)
		}
		a, d, err := e.svc.RecoverPending(ctx)
		if err != nil || a != 1 || d != 1 {
			t.Fatalf("RecoverPending = %d, %d, %v; want 1, 1", a, d, err)
		}
		if _, err := e.store.Record(ctx, "r-orphan"); consent.ErrorCode(err) != consent.ENOTFOUND {
			t.Fatalf("orphan kept: %v", err)
		}
	})
}
