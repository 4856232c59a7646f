package recordstest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

var recordTests = []test{
	{"OK_LatestVersion", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		v2 := newRecord("r1", 2, ref)
		mustCreate(t, s, newRecord("r1", 1, ref), v2)
		wantRecord(t, mustRecord(t, s, "r1"), v2)
	}},
	{"OK_HighestVersionNotLastWritten", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		v10 := newRecord("r1", 10, ref)
		mustCreate(t, s, v10, newRecord("r1", 9, ref), newRecord("r1", 2, ref))
		wantRecord(t, mustRecord(t, s, "r1"), v10)
	}},
	{"OK_AnyStatus", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		v2 := newRecord("r1", 2, ref)
		mustCreate(t, s, newRecord("r1", 1, ref), v2)
		mustAnchor(t, s, "r1", 1)
		wantRecord(t, mustRecord(t, s, "r1"), v2)
	}},
	{"OK_IDsSharingAPrefixStayApart", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		ids := []string{"r1", "r1.a", "r1-b", "r1_c", "r10", "r"}
		for i, id := range ids {
			mustCreate(t, s, newRecord(id, i+1, ref))
		}
		for i, id := range ids {
			if got := mustRecord(t, s, id); got.ID != id || got.Version != i+1 {
				t.Errorf("Record(%s) = %s v%d, want %s v%d", id, got.ID, got.Version, id, i+1)
			}
		}
	}},
	{"OK_ResultOwnedByCaller", func(t *testing.T, s records.Store) {
		r := newRecord("r1", 1, patientRef("p-7"))
		mustCreate(t, s, r)
		got := mustRecord(t, s, "r1")
		got.Ciphertext[0] ^= 0xff
		got.Salt[0] ^= 0xff
		wantRecord(t, mustRecord(t, s, "r1"), r)
	}},
	{"ErrNotFound", func(t *testing.T, s records.Store) {
		mustCreate(t, s, newRecord("r1", 1, patientRef("p-7")))
		for _, id := range []string{"r2", "r", "r1/", ""} {
			_, err := s.Record(t.Context(), id)
			wantCode(t, err, consent.ENOTFOUND)
		}
	}},
}

var recordsTests = []test{
	{"OK_OnlyThatPatientsAnchoredRecords", func(t *testing.T, s records.Store) {
		ref, other := patientRef("p-7"), patientRef("p-8")
		prefixed := ref + "A" // a ref that starts with ref must not leak into its list
		mustCreate(t, s,
			newRecord("a1", 1, ref), newRecord("a2", 1, ref), newRecord("a3", 1, ref),
			newRecord("b1", 1, other), newRecord("c1", 1, prefixed))
		for _, id := range []string{"a1", "a3", "b1", "c1"} {
			mustAnchor(t, s, id, 1)
		}
		got := mustRecords(t, s, records.RecordFilter{PatientRef: ref})
		wantKeys(t, got, "a1@1", "a3@1")
		if len(got) == 2 {
			wantRecord(t, got[1], metadata(anchored(newRecord("a3", 1, ref), anchorTx("a3", 1), 1)))
		}
	}},
	{"OK_MetadataOnly", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		r := anchored(newRecord("r1", 1, ref), "tx-1", 3)
		r.Ciphertext = make([]byte, 1<<16)
		mustCreate(t, s, r)
		got := mustRecords(t, s, records.RecordFilter{PatientRef: ref})
		wantKeys(t, got, "r1@1")
		if len(got) == 1 {
			wantRecord(t, got[0], metadata(r))
			if len(got[0].Ciphertext)+len(got[0].WrappedDEK)+len(got[0].Salt) != 0 {
				t.Errorf("listed record carries content: %d bytes of ciphertext, %d of DEK, %d of salt",
					len(got[0].Ciphertext), len(got[0].WrappedDEK), len(got[0].Salt))
			}
		}
		wantRecord(t, mustRecord(t, s, "r1"), r) // Record still has everything
	}},
	{"OK_ShowsTheLatestAnchor", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		mustCreate(t, s, newRecord("r1", 1, ref))
		f := records.RecordFilter{PatientRef: ref}
		for _, tx := range []string{"tx-1", "tx-2"} {
			if err := s.MarkAnchored(t.Context(), "r1", 1, tx, 5); err != nil {
				t.Fatalf("MarkAnchored(%s): %v", tx, err)
			}
			if got := mustRecords(t, s, f); len(got) != 1 || got[0].AnchorTx != tx || got[0].Status != records.StatusAnchored {
				t.Errorf("after anchoring in %s, Records = %v", tx, keysAndTx(got))
			}
		}
	}},
	{"OK_OrderedByID", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		ids := []string{"r1", "r1.a", "r1-b", "r1_c", "r10", "R2", "a", "z9", "0"}
		shuffled := slices.Clone(ids)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, id := range shuffled {
			mustCreate(t, s, newRecord(id, 1, ref))
			mustAnchor(t, s, id, 1)
		}
		slices.Sort(ids) // byte order, as MongoDB's simple collation sorts
		var want []string
		for _, id := range ids {
			want = append(want, id+"@1")
		}
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: ref}), want...)
	}},
	{"OK_LatestAnchoredVersionPerID", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		mustCreate(t, s, newRecord("r1", 1, ref), newRecord("r1", 2, ref), newRecord("r2", 1, ref))
		mustAnchor(t, s, "r1", 1)
		mustAnchor(t, s, "r2", 1)
		f := records.RecordFilter{PatientRef: ref}
		wantKeys(t, mustRecords(t, s, f), "r1@1", "r2@1")
		mustAnchor(t, s, "r1", 2)
		wantKeys(t, mustRecords(t, s, f), "r1@2", "r2@1")
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: ref, Limit: 1}), "r1@2")
	}},
	{"OK_PagesWithAfterAndLimit", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		for i := range 7 {
			id := fmt.Sprintf("r%d", i)
			mustCreate(t, s, newRecord(id, 1, ref), newRecord(id, 2, ref))
			mustAnchor(t, s, id, 1)
			mustAnchor(t, s, id, 2)
		}
		pages := []struct {
			after string
			want  []string
		}{
			{"", []string{"r0@2", "r1@2", "r2@2"}},
			{"r2", []string{"r3@2", "r4@2", "r5@2"}},
			{"r5", []string{"r6@2"}},
			{"r6", nil},
			{"r3x", []string{"r4@2", "r5@2", "r6@2"}}, // After need not exist
		}
		for _, p := range pages {
			wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: ref, After: p.after, Limit: 3}), p.want...)
		}
	}},
	{"OK_DefaultLimit100", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		for i := range 105 {
			id := fmt.Sprintf("r%03d", i)
			mustCreate(t, s, anchored(newRecord(id, 1, ref), "tx", 1))
		}
		page := mustRecords(t, s, records.RecordFilter{PatientRef: ref})
		if len(page) != 100 || page[99].ID != "r099" {
			t.Fatalf("first page has %d records, want 100 ending at r099", len(page))
		}
		rest := mustRecords(t, s, records.RecordFilter{PatientRef: ref, After: page[99].ID})
		wantKeys(t, rest, "r100@1", "r101@1", "r102@1", "r103@1", "r104@1")
	}},
	{"OK_UnknownPatientEmpty", func(t *testing.T, s records.Store) {
		mustCreate(t, s, anchored(newRecord("r1", 1, patientRef("p-7")), "tx", 1))
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: patientRef("p-9")}))
	}},
	{"ErrInvalid_NoPatient", func(t *testing.T, s records.Store) {
		_, err := s.Records(t.Context(), records.RecordFilter{})
		wantCode(t, err, consent.EINVALID)
	}},
	{"ErrInvalid_NegativeLimit", func(t *testing.T, s records.Store) {
		_, err := s.Records(t.Context(), records.RecordFilter{PatientRef: patientRef("p-7"), Limit: -1})
		wantCode(t, err, consent.EINVALID)
	}},
}

// orgTests hold Records with an Org filter: the author organization's
// records of the patient only, per id its highest anchored version.
var orgTests = []test{
	{"OK_OnlyThatOrgsRecordsOfThatPatient", func(t *testing.T, s records.Store) {
		ref, other := patientRef("p-7"), patientRef("p-8")
		orgs := []string{"hospital-a", "hospital-b", "hospital-a2", "hospital", "hospital-a"}
		for i := range 10 {
			r := anchored(newRecord(fmt.Sprintf("r%d", i), 1, ref), "tx", 1)
			r.Org = orgs[i%len(orgs)]
			mustCreate(t, s, r)
		}
		for _, r := range []*records.Record{newRecord("o1", 1, other), newRecord("o2", 1, ref+"A")} {
			mustCreate(t, s, anchored(r, "tx", 1)) // hospital-a, other patients
		}
		got := mustRecords(t, s, records.RecordFilter{PatientRef: ref, Org: "hospital-a"})
		wantKeys(t, got, "r0@1", "r4@1", "r5@1", "r9@1")
		for _, r := range got {
			if r.Org != "hospital-a" || len(r.Ciphertext) != 0 {
				t.Errorf("record %s of org %s with %d bytes of ciphertext listed", r.ID, r.Org, len(r.Ciphertext))
			}
		}
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: ref, Org: "hospital"}), "r3@1", "r8@1")
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: ref, Org: "nobody"}))
		wantKeys(t, mustRecords(t, s, records.RecordFilter{PatientRef: patientRef("p-9"), Org: "hospital-a"}))
	}},
	{"OK_PagesWithAfterAndLimit", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		for i := range 12 {
			r := anchored(newRecord(fmt.Sprintf("r%02d", i), 1, ref), "tx", 1)
			r.Org = []string{"hospital-a", "hospital-b"}[i%2]
			mustCreate(t, s, r)
		}
		pages := []struct {
			after string
			want  []string
		}{
			{"", []string{"r00@1", "r02@1", "r04@1"}},
			{"r04", []string{"r06@1", "r08@1", "r10@1"}},
			{"r10", nil},
			{"r03", []string{"r04@1", "r06@1", "r08@1"}}, // After may be another org's
		}
		for _, p := range pages {
			f := records.RecordFilter{PatientRef: ref, Org: "hospital-a", After: p.after, Limit: 3}
			wantKeys(t, mustRecords(t, s, f), p.want...)
		}
	}},
	{"OK_HighestAnchoredVersionOfThatOrg", func(t *testing.T, s records.Store) {
		ref := patientRef("p-7")
		v1, v2, v3 := newRecord("r1", 1, ref), newRecord("r1", 2, ref), newRecord("r1", 3, ref)
		v2.Org = "hospital-b"
		mustCreate(t, s, v1, v2, v3)
		mustAnchor(t, s, "r1", 1)
		mustAnchor(t, s, "r1", 2)
		all := records.RecordFilter{PatientRef: ref}
		a, b := records.RecordFilter{PatientRef: ref, Org: "hospital-a"}, records.RecordFilter{PatientRef: ref, Org: "hospital-b"}
		wantKeys(t, mustRecords(t, s, all), "r1@2")
		wantKeys(t, mustRecords(t, s, a), "r1@1")
		wantKeys(t, mustRecords(t, s, b), "r1@2")
		mustAnchor(t, s, "r1", 3)
		wantKeys(t, mustRecords(t, s, all), "r1@3")
		wantKeys(t, mustRecords(t, s, a), "r1@3")
		wantKeys(t, mustRecords(t, s, b), "r1@2")
		for _, v := range []int{3, 2} {
			if err := s.DeleteRecord(t.Context(), "r1", v); err != nil {
				t.Fatalf("DeleteRecord(r1 v%d): %v", v, err)
			}
		}
		wantKeys(t, mustRecords(t, s, all), "r1@1")
		wantKeys(t, mustRecords(t, s, a), "r1@1")
		wantKeys(t, mustRecords(t, s, b))
	}},
	{"ErrInvalid_NoPatient", func(t *testing.T, s records.Store) {
		_, err := s.Records(t.Context(), records.RecordFilter{Org: "hospital-a"})
		wantCode(t, err, consent.EINVALID)
	}},
}

var pendingTests = []test{
	{"OK_EveryPendingVersion", func(t *testing.T, s records.Store) {
		ref, other := patientRef("p-7"), patientRef("p-8")
		want := []*records.Record{newRecord("r1", 1, ref), newRecord("r1", 2, ref), newRecord("r3", 1, other)}
		mustCreate(t, s, want...)
		mustCreate(t, s, newRecord("r2", 1, ref))
		mustAnchor(t, s, "r2", 1)
		got := mustPending(t, s)
		wantKeys(t, got, "r1@1", "r1@2", "r3@1")
		for i := range min(len(got), len(want)) {
			wantRecord(t, got[i], want[i])
		}
	}},
	{"OK_EmptyStore", func(t *testing.T, s records.Store) {
		wantKeys(t, mustPending(t, s))
	}},
}
