package records_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
	"github.com/medshare/medshare/records"
)

// registration returns the id of p-1's registration with hosp-a.
func (e *env) registration(t *testing.T) string {
	t.Helper()
	cs, err := e.svc.ListConsents(context.Background(), e.pat)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Grantee.Org == "hosp-a" && len(c.Categories) == 0 && len(c.Records) == 0 {
			return c.ID
		}
	}
	t.Fatal("p-1 has no registration with hosp-a")
	return ""
}

// TestWriteNeedsACareRelationship: a provider stores records only for a
// patient registered with its organization; any hospital storing records
// for anyone (and so backing claims with them) is refused.
func TestWriteNeedsACareRelationship(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	up := func(sub policy.Subject, patient string) error {
		_, err := e.svc.Upload(ctx, sub, records.UploadRequest{Patient: patient, Category: "lab", ContentType: "text/plain", Content: []byte("x")})
		return err
	}
	if err := up(e.other, "p-1"); consent.ErrorCode(err) != consent.EFORBIDDEN || !strings.Contains(err.Error(), "no care relationship") {
		t.Fatalf("hosp-b uploads for p-1 without a relationship: %v", err)
	}
	if err := up(e.author, "p-9"); consent.ErrorCode(err) != consent.EFORBIDDEN {
		t.Fatalf("hosp-a uploads for an unregistered patient: %v", err)
	}
	e.register(t, e.pat, "hosp-b")
	if err := up(e.other, "p-1"); err != nil {
		t.Fatalf("after registering with hosp-b: %v", err)
	}
	cs, err := e.svc.ListConsents(ctx, e.pat)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Grantee.Org == "hosp-b" {
			if _, err := e.svc.Revoke(ctx, e.pat, c.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := up(e.other, "p-1"); consent.ErrorCode(err) != consent.EFORBIDDEN {
		t.Fatalf("after the registration was revoked: %v", err)
	}
}

// TestUploadsAndConsentChangesAreLogged: who uploaded, granted and revoked
// is in the patient's access log, with the consent named.
func TestUploadsAndConsentChangesAreLogged(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := e.upload(t)
	c, err := e.svc.Grant(ctx, e.pat, records.GrantRequest{Grantee: records.GranteeView{Org: "hosp-b"}, Categories: []string{"lab"}, Purposes: []string{"TREAT"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Revoke(ctx, e.pat, c.ID); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range e.events(t) {
		got = append(got, en.Action+" "+en.Org+" "+en.RecordID+en.ConsentID+" "+en.Decision)
	}
	want := []string{
		"grant hosp-a " + e.registration(t) + " allow",
		"write hosp-a " + r.ID + " allow",
		"grant hosp-b " + c.ID + " allow",
		"revoke hosp-b " + c.ID + " allow",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestAuditorReadsAreLogged: an auditor reading a patient's log leaves an
// entry in it (once per listing, not per page).
func TestAuditorReadsAreLogged(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	aud := policy.Subject{ID: "aud-1", Role: "auditor", Org: "audit-office", OrgType: "auditor", Ref: e.refs.SubjectRef("aud-1")}
	if _, err := e.svc.AccessLog(ctx, aud, "p-1", "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AccessLog(ctx, e.pat, "", "", 0); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, en := range e.events(t) {
		if en.Action == policy.ActionReadAudit {
			n++
			if en.Org != "audit-office" || en.Role != "auditor" {
				t.Fatalf("entry %+v", en)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d read_audit entries, want 1 (the auditor's; the patient's own read is not logged)", n)
	}
}

// TestListingsAreLogged: a provider listing a patient's records leaves
// one entry per listing in her log — also one that finds nothing it may
// see, since looking her up is itself worth knowing; the patient's own
// listing and that of a caller who may see nothing at all (an insurer
// without consent: no store read) leave none.
func TestListingsAreLogged(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.upload(t)
	for _, sub := range []policy.Subject{e.author, e.pat, e.other, e.ins} {
		if _, err := e.svc.List(ctx, sub, "p-1", "", 0); err != nil {
			t.Fatal(err)
		}
	}
	var lists []string
	for _, en := range e.events(t) {
		if en.Action == policy.ActionList {
			lists = append(lists, en.Org)
		}
	}
	if strings.Join(lists, ",") != "hosp-a,hosp-b" {
		t.Fatalf("list events by %v, want hosp-a and hosp-b", lists)
	}
}

// TestGrantChecks: a consent names only the patient's own records, and
// runs for a bounded time.
func TestGrantChecks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	mine := e.upload(t)
	p2 := policy.Subject{ID: "p-2", Role: "patient", Ref: e.refs.SubjectRef("p-2"), PatientRef: e.refs.PatientRef("p-2")}
	e.register(t, p2, "hosp-a")
	theirs, err := e.svc.Upload(ctx, e.author, records.UploadRequest{Patient: "p-2", Category: "lab", ContentType: "text/plain", Content: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	grant := func(recs []string, until *time.Time) (*records.ConsentView, error) {
		return e.svc.Grant(ctx, e.pat, records.GrantRequest{Grantee: records.GranteeView{Org: "hosp-b"},
			Records: recs, Purposes: []string{"TREAT"}, ValidUntil: until})
	}
	_, errTheirs := grant([]string{mine.ID, theirs.ID}, nil)
	_, errUnknown := grant([]string{"r-doesnotexist"}, nil)
	if consent.ErrorCode(errTheirs) != consent.EINVALID || consent.ErrorCode(errUnknown) != consent.EINVALID {
		t.Fatalf("another patient's record: %v; unknown record: %v", errTheirs, errUnknown)
	}
	if strings.ReplaceAll(consent.ErrorMessage(errTheirs), theirs.ID, "X") != strings.ReplaceAll(consent.ErrorMessage(errUnknown), "r-doesnotexist", "X") {
		t.Fatalf("answers differ: %q vs %q", consent.ErrorMessage(errTheirs), consent.ErrorMessage(errUnknown))
	}
	far := time.Now().Add(20 * 365 * 24 * time.Hour)
	if _, err := grant([]string{mine.ID}, &far); consent.ErrorCode(err) != consent.EINVALID {
		t.Fatalf("20-year consent: %v", err)
	}
	v, err := grant([]string{mine.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.ValidUntil == nil || v.ValidUntil.After(time.Now().Add(records.DefaultMaxConsentValidity)) || v.ValidUntil.Before(time.Now().Add(records.DefaultMaxConsentValidity-time.Hour)) {
		t.Fatalf("open-ended consent runs until %v", v.ValidUntil)
	}
}
