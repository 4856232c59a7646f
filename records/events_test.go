package records_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

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
		"write hosp-a " + r.ID + " allow",
		"grant hosp-b " + c.ID + " allow",
		"revoke hosp-b " + c.ID + " allow",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestGrantChecks: a consent names only the patient's own records, and
// runs for a bounded time.
func TestGrantChecks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	mine := e.upload(t)
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
