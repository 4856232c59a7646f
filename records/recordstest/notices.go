package recordstest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// noticeAt is the time of the notices the suite stores; notice i comes
// i minutes later.
var noticeAt = time.Date(2025, time.April, 1, 8, 30, 15, 123_456_789, time.UTC)

// newNotice returns notice i of patient ref with every field set; its id
// sorts by i.
func newNotice(i int, ref string) *records.Notice {
	at := noticeAt.Add(time.Duration(i) * time.Minute)
	return &records.Notice{
		ID:         fmt.Sprintf("n-%s-%s-%03d", at.Format("20060102T150405.000000000Z"), ref[:4], i),
		PatientRef: ref,
		Time:       at,
		Kind:       records.NoticeBreakGlass,
		AccessID:   fmt.Sprintf("a-%03d", i),
		RecordID:   fmt.Sprintf("r-%03d", i),
		Org:        "hospital-b",
		ActorRef:   "actor-ref-1",
		ReasonCode: "unconscious",
		Text:       []byte{0x00, 0xff, 0x80, byte(i), 'x'},
		WrappedDEK: []byte{0x01, 0x00, 0xfe, byte(i)},
		KEKVersion: 3,
		Salt:       []byte{0xc3, 0x28, 0x00, byte(i)}, // invalid UTF-8 on purpose
	}
}

var noticeTests = []test{
	{"OK_RoundTripsEveryField", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		n := newNotice(1, ref)
		n.Text = make([]byte, 0, 512)
		for i := range 512 {
			n.Text = append(n.Text, byte(i))
		}
		mustSaveNotice(t, s, n)
		got := mustNotices(t, s, records.NoticeFilter{PatientRef: ref})
		wantNotices(t, got, n)
	}},
	{"OK_OptionalFieldsEmpty", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		n := &records.Notice{ID: "n-1", PatientRef: ref, Time: noticeAt, Kind: records.NoticeBreakGlass, Org: "hospital-b"}
		mustSaveNotice(t, s, n)
		wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: ref}), n)
	}},
	{"OK_SaveAgainIsIdempotent", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		n := newNotice(1, ref)
		mustSaveNotice(t, s, n)
		mustSaveNotice(t, s, n)
		wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: ref}), n)
	}},
	{"OK_FirstSaveOfAnIDWins", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		n := newNotice(1, ref)
		mustSaveNotice(t, s, n)
		changed := newNotice(1, ref)
		changed.ReasonCode, changed.Text = "other", []byte("rewritten")
		mustSaveNotice(t, s, changed)
		moved := newNotice(1, patientRef("p-8"))
		moved.ID = n.ID
		mustSaveNotice(t, s, moved)
		wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: ref}), n)
		wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: patientRef("p-8")}))
	}},
	{"OK_OrderedByIDWithAfterAndLimit", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		var ns []*records.Notice
		for i := range 7 {
			ns = append(ns, newNotice(i, ref))
		}
		shuffled := slices.Clone(ns)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, n := range shuffled {
			mustSaveNotice(t, s, n)
		}
		wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: ref}), ns...)
		pages := []struct {
			after string
			want  []*records.Notice
		}{
			{"", ns[0:3]},
			{ns[2].ID, ns[3:6]},
			{ns[5].ID, ns[6:]},
			{ns[6].ID, nil},
			{ns[3].ID + "x", ns[4:7]}, // After need not exist
		}
		for _, p := range pages {
			wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: ref, After: p.after, Limit: 3}), p.want...)
		}
	}},
	{"OK_DefaultLimit100", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		for i := range 105 {
			mustSaveNotice(t, s, newNotice(i, ref))
		}
		page := mustNotices(t, s, records.NoticeFilter{PatientRef: ref})
		if len(page) != 100 || page[99].ID != newNotice(99, ref).ID {
			t.Fatalf("first page has %d notices, want 100 ending at notice 99", len(page))
		}
		rest := mustNotices(t, s, records.NoticeFilter{PatientRef: ref, After: page[99].ID})
		wantNotices(t, rest, newNotice(100, ref), newNotice(101, ref), newNotice(102, ref), newNotice(103, ref), newNotice(104, ref))
	}},
	{"OK_OtherPatientsNeverReturned", func(t *testing.T, s records.Store) {
		ref, other := patientRef("p-7"), patientRef("p-8")
		prefixed := ref + "A" // a ref that starts with ref must not leak into its list
		mine := newNotice(2, ref)
		mustSaveNotice(t, s, newNotice(1, other), mine, newNotice(3, prefixed))
		wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: ref}), mine)
		wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: ref, After: newNotice(1, other).ID}), mine)
		wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: patientRef("p-9")}))
	}},
	{"OK_KeepsNoReferenceToCallerBytes", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		n := newNotice(1, ref)
		mustSaveNotice(t, s, n)
		want := newNotice(1, ref)
		n.Text[0] ^= 0xff
		got := mustNotices(t, s, records.NoticeFilter{PatientRef: ref})
		wantNotices(t, got, want)
		if len(got) == 1 {
			got[0].Salt[0] ^= 0xff
		}
		wantNotices(t, mustNotices(t, s, records.NoticeFilter{PatientRef: ref}), want)
	}},
	{"ErrInvalid_SaveWithoutIDOrPatient", func(t *testing.T, s records.Store) {
		noID, noPatient := newNotice(1, patientRef("p-7")), newNotice(2, patientRef("p-7"))
		noID.ID, noPatient.PatientRef = "", ""
		wantCode(t, s.SaveNotice(t.Context(), noID), consent.EINVALID)
		wantCode(t, s.SaveNotice(t.Context(), noPatient), consent.EINVALID)
	}},
	{"ErrInvalid_NoPatient", func(t *testing.T, s records.Store) {
		_, err := s.Notices(t.Context(), records.NoticeFilter{})
		wantCode(t, err, consent.EINVALID)
	}},
	{"ErrInvalid_NegativeLimit", func(t *testing.T, s records.Store) {
		_, err := s.Notices(t.Context(), records.NoticeFilter{PatientRef: patientRef("p-7"), Limit: -1})
		wantCode(t, err, consent.EINVALID)
	}},
	{"ErrUnavailable_AfterClose", func(t *testing.T, s records.Store) {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.SaveNotice(t.Context(), newNotice(1, patientRef("p-7"))); err == nil {
			t.Error("SaveNotice after Close succeeded, want an error")
		}
		if _, err := s.Notices(t.Context(), records.NoticeFilter{PatientRef: patientRef("p-7")}); err == nil {
			t.Error("Notices after Close succeeded, want an error")
		}
	}},
}

// mustSaveNotice saves every notice or fails the test.
func mustSaveNotice(tb testing.TB, s records.Store, ns ...*records.Notice) {
	tb.Helper()
	for _, n := range ns {
		if err := s.SaveNotice(tb.Context(), n); err != nil {
			tb.Fatalf("SaveNotice(%s): %v", n.ID, err)
		}
	}
}

// mustNotices returns a page of notices or fails the test.
func mustNotices(tb testing.TB, s records.Store, f records.NoticeFilter) []*records.Notice {
	tb.Helper()
	ns, err := s.Notices(tb.Context(), f)
	if err != nil {
		tb.Fatalf("Notices(%+v): %v", f, err)
	}
	return ns
}

// wantNotices fails the test unless got equals want, in that order.
func wantNotices(tb testing.TB, got []*records.Notice, want ...*records.Notice) {
	tb.Helper()
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		tb.Errorf("notices mismatch (-want +got):\n%s", diff)
	}
}
