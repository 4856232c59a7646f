package records_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
	"github.com/medshare/medshare/records"
)

// memNotices is an in-memory records.NoticeStore for these unit tests.
type memNotices struct {
	mu sync.Mutex
	ns []*records.Notice
}

func (m *memNotices) SaveNotice(_ context.Context, n *records.Notice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *n
	m.ns = append(m.ns, &c)
	return nil
}

func (m *memNotices) Notices(_ context.Context, f records.NoticeFilter) ([]*records.Notice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*records.Notice
	for _, n := range m.ns {
		if n.PatientRef == f.PatientRef && n.ID > f.After {
			c := *n
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *records.Notice) int { return strings.Compare(a.ID, b.ID) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

const glassText = "patient unconscious in ER, allergy check before surgery"

func breakGlassReq(id string) records.FetchRequest {
	return records.FetchRequest{ID: id, Purpose: "ETREAT", BreakGlassCode: "unconscious", BreakGlassReason: glassText}
}

// TestBreakGlassReasonStaysOffTheLedger: the free text of an emergency read
// reaches neither the policy's reasons nor the access entry nor the
// ledger; the entry carries the code and a commitment, the patient's
// notice carries the text, sealed, and the patient reads it back.
func TestBreakGlassReasonStaysOffTheLedger(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	notices := &memNotices{}
	e.svc.Notices = notices
	r := e.upload(t)
	res, err := e.svc.Fetch(ctx, e.other, breakGlassReq(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Decision.Obligations, "notify-patient") {
		t.Fatalf("obligations %v", res.Decision.Obligations)
	}
	es := e.entries(t)
	if len(es) != 1 || !es[0].BreakGlass || es[0].BreakGlassCode != "unconscious" || es[0].NoteCommit == "" {
		t.Fatalf("entry %+v", es)
	}
	raw, _ := json.Marshal(es[0])
	if strings.Contains(string(raw), "allergy") || strings.Contains(string(raw), "unconscious in ER") {
		t.Fatalf("access entry carries the free text: %s", raw)
	}
	if dump := e.ledger.Dump(); strings.Contains(dump, "allergy") || strings.Contains(dump, "unconscious in ER") {
		t.Fatal("the ledger holds the free text")
	}
	if len(notices.ns) != 1 || strings.Contains(string(notices.ns[0].Text), "allergy") {
		t.Fatalf("notices %+v", notices.ns)
	}
	page, err := e.svc.ListNotices(ctx, e.pat, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Notices) != 1 || page.Notices[0].Reason != glassText || page.Notices[0].AccessID != res.AccessID ||
		page.Notices[0].ReasonCode != "unconscious" || page.Notices[0].Org != "hosp-b" {
		t.Fatalf("patient's notices %+v", page.Notices)
	}
	if records.ContentHash(notices.ns[0].Salt, []byte(glassText)) != es[0].NoteCommit {
		t.Fatal("the entry's commitment does not open to the text")
	}
	if _, err := e.svc.ListNotices(ctx, e.other, "p-1", "", 0); consent.ErrorCode(err) != consent.EFORBIDDEN {
		t.Fatalf("a provider read the patient's notices: %v", err)
	}
}

// TestBreakGlassNeedsAReason: codes come from a vocabulary and the free
// text has a minimum length; both are checked before the record is
// looked up, so the answer is the same for any id.
func TestBreakGlassNeedsAReason(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.svc.Notices = &memNotices{}
	r := e.upload(t)
	for _, tt := range []struct {
		note, code, text string
	}{
		{"no text", "", ""},
		{"whitespace", "unconscious", "                       "},
		{"too short", "unconscious", "emergency"},
		{"unknown code", "because", glassText},
		{"control characters", "other", glassText + "\x1b[2J"},
	} {
		for _, id := range []string{r.ID, "r-unknown"} {
			_, err := e.svc.Fetch(ctx, e.other, records.FetchRequest{ID: id, Purpose: "ETREAT", BreakGlassCode: tt.code, BreakGlassReason: tt.text})
			if consent.ErrorCode(err) != consent.EINVALID {
				t.Errorf("%s (%s): %v, want EINVALID", tt.note, id, err)
			}
		}
	}
	if n := len(e.entries(t)); n != 0 {
		t.Fatalf("%d entries logged for refused declarations", n)
	}
	if _, err := e.svc.Fetch(ctx, e.other, records.FetchRequest{ID: r.ID, Purpose: "ETREAT", BreakGlassReason: glassText}); err != nil {
		t.Fatalf("text without a code (code other): %v", err)
	}
}

// TestBreakGlassIsRateLimited: a clinician's emergency reads and anyone's
// refusals are bounded per actor.
func TestBreakGlassIsRateLimited(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.svc.Notices = &memNotices{}
	e.svc.BreakGlassLimit = records.NewLimiter(2, time.Hour)
	r := e.upload(t)
	for i := range 2 {
		if _, err := e.svc.Fetch(ctx, e.other, breakGlassReq(r.ID)); err != nil {
			t.Fatalf("emergency read %d: %v", i, err)
		}
	}
	if _, err := e.svc.Fetch(ctx, e.other, breakGlassReq(r.ID)); consent.ErrorCode(err) != consent.ETOOMANY {
		t.Fatalf("third emergency read: %v, want ETOOMANY", err)
	}
	if _, err := e.svc.Fetch(ctx, e.author, breakGlassReq(r.ID)); err != nil {
		t.Fatalf("another clinician: %v", err)
	}
	if n := len(e.entries(t)); n != 3 {
		t.Fatalf("%d entries, want 3 (the refused one is not logged)", n)
	}
}

// TestRefusalsAreRateLimited: denials and unknown ids count alike, and
// once an actor is over the limit every read answers 429, whatever the id:
// the limit neither floods the patient's log nor tells real from unknown.
func TestRefusalsAreRateLimited(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.svc.DeniedLimit = records.NewLimiter(3, time.Hour)
	r := e.upload(t)
	ids := []string{r.ID, "r-unknown-1", r.ID}
	for _, id := range ids {
		if _, err := e.svc.Fetch(ctx, e.other, records.FetchRequest{ID: id, Purpose: "TREAT"}); consent.ErrorCode(err) != consent.ENOTFOUND {
			t.Fatalf("refusal of %s: %v", id, err)
		}
	}
	for _, id := range []string{r.ID, "r-unknown-2"} {
		if _, err := e.svc.Fetch(ctx, e.other, records.FetchRequest{ID: id, Purpose: "TREAT"}); consent.ErrorCode(err) != consent.ETOOMANY {
			t.Fatalf("over the limit, %s: %v, want ETOOMANY", id, err)
		}
	}
	if n := len(e.entries(t)); n != 2 {
		t.Fatalf("%d entries in the patient's log, want the 2 denials before the limit", n)
	}
	if _, err := e.svc.Fetch(ctx, e.author, records.FetchRequest{ID: r.ID, Purpose: "TREAT"}); err != nil {
		t.Fatalf("another actor: %v", err)
	}
}

// TestEmergencyConsentNeedsTheSameCare: a read under a consent that names
// ETREAT still needs a declared reason, carries the emergency obligations
// and leaves the patient a notice.
func TestEmergencyConsentNeedsTheSameCare(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	notices := &memNotices{}
	e.svc.Notices = notices
	r := e.upload(t)
	if _, err := e.svc.Grant(ctx, e.pat, records.GrantRequest{Grantee: records.GranteeView{Org: "hosp-b"}, Categories: []string{"lab"}, Purposes: []string{"ETREAT"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Fetch(ctx, e.other, records.FetchRequest{ID: r.ID, Purpose: "ETREAT"}); consent.ErrorCode(err) != consent.EINVALID {
		t.Fatalf("ETREAT under consent without a reason: %v", err)
	}
	res, err := e.svc.Fetch(ctx, e.other, breakGlassReq(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision.ConsentID == "" || !slices.Contains(res.Decision.Obligations, policy.ObligationNotifyPatient) || len(notices.ns) != 1 {
		t.Fatalf("decision %+v, notices %d", res.Decision, len(notices.ns))
	}
}
