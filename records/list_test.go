package records_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
	"github.com/medshare/medshare/records"
	"github.com/medshare/medshare/records/recordstest"
)

// countingStore records the filter of every Records call, so a test can
// tell which of a patient's records a listing asked the store for.
type countingStore struct {
	*recordstest.MemStore
	mu      sync.Mutex
	filters []records.RecordFilter
}

func (c *countingStore) Records(ctx context.Context, f records.RecordFilter) ([]*records.Record, error) {
	c.mu.Lock()
	c.filters = append(c.filters, f)
	c.mu.Unlock()
	return c.MemStore.Records(ctx, f)
}

// take returns the filters seen since the last call and forgets them.
func (c *countingStore) take() []records.RecordFilter {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.filters
	c.filters = nil
	return fs
}

// listEnv is newEnv with a counting store and records stored directly:
// fast enough for hundreds of them.
func listEnv(t *testing.T) (*env, *countingStore) {
	t.Helper()
	e := newEnv(t)
	cs := &countingStore{MemStore: e.store}
	e.svc.Store = cs
	return e, cs
}

// storeRecords stores anchored records of patient with the ids
// fmt.Sprintf("r-%03d", i) for i in 0..n-1, org and category chosen by
// of(i).
func (e *env) storeRecords(t *testing.T, patient string, n int, of func(i int) (org, category string)) {
	t.Helper()
	for i := range n {
		org, cat := of(i)
		r := &records.Record{
			ID: fmt.Sprintf("r-%03d", i), Version: 1, Patient: patient, PatientRef: e.refs.PatientRef(patient),
			Category: cat, ContentType: "text/plain", Org: org, Status: records.StatusAnchored,
			Ciphertext: []byte("sealed"), WrappedDEK: []byte{1}, Salt: []byte{2}, KEKVersion: 1,
		}
		if patient != "p-1" {
			r.ID = patient + "-" + r.ID
		}
		if err := e.store.CreateRecord(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// listAll follows next from the first page to the last and returns every
// id listed, failing on an empty page that a next led to.
func listAll(t *testing.T, svc *records.Service, sub policy.Subject, patient string, limit int) (ids []string, pages int) {
	t.Helper()
	after := ""
	for {
		page, err := svc.List(t.Context(), sub, patient, after, limit)
		if err != nil {
			t.Fatalf("List(after %q): %v", after, err)
		}
		pages++
		if after != "" && len(page.Records) == 0 {
			t.Fatalf("next %q led to an empty page", after)
		}
		want := limit
		if want == 0 {
			want = records.DefaultPageLimit
		}
		if page.Next != "" && len(page.Records) != want {
			t.Fatalf("page after %q has %d records and a next; want %d", after, len(page.Records), want)
		}
		for _, r := range page.Records {
			if len(r.Ciphertext)+len(r.WrappedDEK)+len(r.Salt) != 0 {
				t.Fatalf("listed record %s carries content", r.ID)
			}
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			return ids, pages
		}
		if page.Next != page.Records[len(page.Records)-1].ID {
			t.Fatalf("next %q is not the last id listed, %s", page.Next, page.Records[len(page.Records)-1].ID)
		}
		after = page.Next
	}
}

// provider returns a provider at a hospital org that holds no consent.
func (e *env) provider(id, org string) policy.Subject {
	return policy.Subject{ID: id, Role: policy.RoleProvider, Org: org, OrgType: "hospital", Ref: e.refs.SubjectRef(id)}
}

// TestListAuthorizesBeforeLoading: List decides what the caller could see
// before it reads any record. A caller who could see nothing (an insurer
// without consent, an admin, an auditor, another patient) gets an empty
// page without the store being asked for the patient's records; a provider
// whose organization holds no consent asks only for its own
// organization's records (none for a stranger organization); the patient
// and an organization holding a consent list everything, and the policy
// picks what they see.
func TestListAuthorizesBeforeLoading(t *testing.T) {
	ctx := context.Background()
	e, cs := listEnv(t)
	e.storeRecords(t, "p-1", 12, func(i int) (string, string) {
		return []string{"hosp-x", "hosp-y", "hosp-x"}[i%3], []string{"lab", "imaging"}[i%2]
	})
	e.storeRecords(t, "p-2", 3, func(int) (string, string) { return "hosp-x", "lab" })
	drX, drY, stranger := e.provider("dr-x", "hosp-x"), e.provider("dr-y", "hosp-y"), e.provider("dr-c", "hosp-c")
	admin := policy.Subject{ID: "root", Role: policy.RoleAdmin, Ref: e.refs.SubjectRef("root")}
	auditor := policy.Subject{ID: "aud", Role: policy.RoleAuditor, Org: "audit-1", OrgType: "auditor", Ref: e.refs.SubjectRef("aud")}
	otherPatient := policy.Subject{ID: "p-2", Role: policy.RolePatient, Ref: e.refs.SubjectRef("p-2"), PatientRef: e.refs.PatientRef("p-2")}

	var all, ofX, ofY, lab []string
	for i := range 12 {
		id := fmt.Sprintf("r-%03d", i)
		all = append(all, id)
		if i%3 == 1 {
			ofY = append(ofY, id)
		} else {
			ofX = append(ofX, id)
		}
		if i%2 == 0 {
			lab = append(lab, id)
		}
	}

	check := func(t *testing.T, sub policy.Subject, want []string, org string) {
		t.Helper()
		cs.take()
		page, err := e.svc.List(ctx, sub, "p-1", "", 0)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var got []string
		for _, r := range page.Records {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, want) || page.Next != "" {
			t.Errorf("listed %v (next %q), want %v", got, page.Next, want)
		}
		fs := cs.take()
		if org == "-" {
			if len(fs) != 0 {
				t.Errorf("store asked for %+v; want no call for a caller who can see nothing", fs)
			}
			return
		}
		if len(fs) == 0 {
			t.Error("store never asked")
		}
		for _, f := range fs {
			if f.Org != org || f.PatientRef != e.refs.PatientRef("p-1") {
				t.Errorf("store asked for %+v; want patient p-1's records of org %q", f, org)
			}
		}
	}
	tests := []struct {
		note string
		sub  policy.Subject
		want []string
		org  string // the Org of every Records call; "-" for no call at all
	}{
		{"insurer without consent", e.ins, nil, "-"},
		{"admin", admin, nil, "-"},
		{"auditor", auditor, nil, "-"},
		{"another patient", otherPatient, nil, "-"},
		{"organization without consent or records", stranger, nil, "hosp-c"},
		{"authoring organization", drX, ofX, "hosp-x"},
		{"other authoring organization", drY, ofY, "hosp-y"},
		{"the patient", e.pat, all, ""},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) { check(t, tt.sub, tt.want, tt.org) })
	}

	// A consent of the patient opens the whole listing to the organization;
	// the policy then shows what the consent covers.
	for _, g := range []struct{ org, purpose string }{{"hosp-b", "TREAT"}, {"ins-x", "HPAYMT"}} {
		if _, err := e.svc.Grant(ctx, e.pat, records.GrantRequest{Grantee: records.GranteeView{Org: g.org},
			Categories: []string{"lab"}, Purposes: []string{g.purpose}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("organization with consent", func(t *testing.T) { check(t, e.other, lab, "") })
	t.Run("insurer with consent", func(t *testing.T) { check(t, e.ins, lab, "") })
	t.Run("stranger still without", func(t *testing.T) { check(t, stranger, nil, "hosp-c") })
}

// TestListPaginates: without a limit a listing comes in pages of 100 with
// a next while more remain, and following next reaches every record
// exactly once, for the patient (whole listing) and the authoring
// organization without consent (its own records, by the org index) alike.
func TestListPaginates(t *testing.T) {
	e, _ := listEnv(t)
	e.storeRecords(t, "p-1", 250, func(int) (string, string) { return "hosp-x", "lab" })
	var want []string
	for i := range 250 {
		want = append(want, fmt.Sprintf("r-%03d", i))
	}
	for _, sub := range []policy.Subject{e.pat, e.provider("dr-x", "hosp-x")} {
		first, err := e.svc.List(t.Context(), sub, "p-1", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(first.Records) != 100 || first.Next != "r-099" {
			t.Fatalf("%s: first page has %d records, next %q; want 100 and next r-099", sub.ID, len(first.Records), first.Next)
		}
		got, pages := listAll(t, e.svc, sub, "p-1", 0)
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("%s: following next listed %d ids in %d pages; want the 250 in order, once each, in 3 pages", sub.ID, len(got), pages)
		}
		got, _ = listAll(t, e.svc, sub, "p-1", 1000)
		if !slices.Equal(got, want) {
			t.Errorf("%s: limit 1000 listed %d ids; want the 250", sub.ID, len(got))
		}
	}
}

// TestListNextOnlyWhenMoreVisible: pages are full whatever the policy
// filters out, and a next appears only when the caller may see another
// record: never because records it may not see follow.
func TestListNextOnlyWhenMoreVisible(t *testing.T) {
	ctx := context.Background()
	e, cs := listEnv(t)
	// hosp-b may see lab records through its consent: 67 of them (every
	// third of the first 200), then 50 imaging records it may not see.
	e.storeRecords(t, "p-1", 250, func(i int) (string, string) {
		if i < 200 && i%3 == 0 {
			return "hosp-a", "lab"
		}
		return "hosp-a", "imaging"
	})
	if _, err := e.svc.Grant(ctx, e.pat, records.GrantRequest{Grantee: records.GranteeView{Org: "hosp-b"},
		Categories: []string{"lab"}, Purposes: []string{"TREAT"}}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 0; i < 200; i += 3 {
		want = append(want, fmt.Sprintf("r-%03d", i))
	}
	for _, limit := range []int{0, 1, 7, 10, 66, 67, 68, 1000} {
		got, _ := listAll(t, e.svc, e.other, "p-1", limit)
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: listed %d ids; want the 67 lab records in order, once each", limit, len(got))
		}
	}
	// A page that ends on the last visible record has no next, though 50
	// records follow; finding that out scans them.
	page, err := e.svc.List(ctx, e.other, "p-1", "", 67)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 67 || page.Next != "" {
		t.Errorf("limit 67: %d records, next %q; want 67 and no next", len(page.Records), page.Next)
	}
	page, err = e.svc.List(ctx, e.other, "p-1", "r-198", 0)
	if err != nil || len(page.Records) != 0 || page.Next != "" {
		t.Errorf("after the last visible record: %d records, next %q, %v; want an empty last page", len(page.Records), page.Next, err)
	}
	// The patient sees everything, so one store read of limit+1 settles
	// the page and its next.
	cs.take()
	page, err = e.svc.List(ctx, e.pat, "p-1", "", 0)
	if err != nil || len(page.Records) != 100 || page.Next != "r-099" {
		t.Fatalf("patient's first page: %d records, next %q, %v", len(page.Records), page.Next, err)
	}
	if fs := cs.take(); len(fs) != 1 || fs[0].Limit != 101 {
		t.Errorf("patient's first page read the store %+v; want one read of 101", fs)
	}
}

// TestListInvalid: a bad patient, cursor or limit is EINVALID.
func TestListInvalid(t *testing.T) {
	e, _ := listEnv(t)
	for _, c := range []struct {
		patient, after string
		limit          int
	}{{"", "", 0}, {"p 1", "", 0}, {"p-1", "a/b", 0}, {"p-1", "", -1}, {"p-1", "", 1001}} {
		if _, err := e.svc.List(t.Context(), e.pat, c.patient, c.after, c.limit); consent.ErrorCode(err) != consent.EINVALID {
			t.Errorf("List(%q, %q, %d) = %v, want EINVALID", c.patient, c.after, c.limit, err)
		}
	}
}
