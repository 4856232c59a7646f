package consent_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
)

func mustPseudonymizer(tb testing.TB, b byte) *consent.Pseudonymizer {
	tb.Helper()
	p, err := consent.NewPseudonymizer(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestSealedEntries: an access entry reaches the ledger with only its id,
// time and pairwise reference in clear; the contract stores it and refuses
// a sealed entry that carries anything else in clear; only a holder of the
// same pepper opens it, and a tampered seal does not open.
func TestSealedEntries(t *testing.T) {
	pz := mustPseudonymizer(t, 7)
	e := entry("e-sealed", tNow)
	e.BreakGlassCode, e.ClaimItems = "other", []consent.ClaimItemLog{{Path: "/code", OK: true}}
	sealed, err := pz.SealEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(sealed)
	for _, clear := range []string{recordSeed, orgHosp, actor1, consentP1, patient1, "read", "/code", "sha256:abc"} {
		if strings.Contains(string(raw), clear) {
			t.Errorf("sealed entry shows %q in clear: %s", clear, raw)
		}
	}
	if sealed.PatientRef != pz.Pair(patient1, orgHosp) {
		t.Fatalf("sealed entry indexed under %q, want the pairwise reference", sealed.PatientRef)
	}
	again, _ := pz.SealEntry(e)
	if again.Sealed != sealed.Sealed {
		t.Fatal("sealing is not deterministic: a retried entry would differ")
	}

	w := seeded(t)
	w.mustApply(consent.OpLogAccess, sealed)
	got := mustQuery[consent.AccessEntry](w, consent.QueryGetAccess, consent.IDArgs{ID: "e-sealed"})
	opened, err := pz.OpenEntry(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(logged(e), opened, cmpOpts...); diff != "" {
		t.Fatalf("opened entry (-logged +opened):\n%s", diff)
	}

	if _, err := mustPseudonymizer(t, 8).OpenEntry(got); consent.ErrorCode(err) != consent.EINTEGRITY {
		t.Fatalf("another pepper opened the entry: %v", err)
	}
	tampered := got
	tampered.Sealed = "A" + got.Sealed[1:]
	if _, err := pz.OpenEntry(tampered); consent.ErrorCode(err) != consent.EINTEGRITY {
		t.Fatalf("tampered seal: %v", err)
	}
	moved := got
	moved.ID = "e-other"
	if _, err := pz.OpenEntry(moved); consent.ErrorCode(err) != consent.EINTEGRITY {
		t.Fatalf("seal moved to another id: %v", err)
	}

	for _, leak := range []func(*consent.AccessEntry){
		func(x *consent.AccessEntry) { x.Org = orgHosp },
		func(x *consent.AccessEntry) { x.Decision = consent.DecisionDeny },
		func(x *consent.AccessEntry) { x.Reasons = []string{"why"} },
		func(x *consent.AccessEntry) { x.BreakGlass = true },
		func(x *consent.AccessEntry) { x.ClaimItems = []consent.ClaimItemLog{{Path: "/a"}} },
	} {
		bad := with(sealed, leak)
		bad.ID = "e-leaky"
		_, err := w.apply(consent.OpLogAccess, bad)
		checkCode(t, err, consent.EINVALID)
	}
}

// TestListAccessMergesReferences: a patient's log is the time-ordered merge
// of the entries indexed under each of their pairwise references, paged
// with one cursor.
func TestListAccessMergesReferences(t *testing.T) {
	w := seeded(t)
	refA, refB := strings.Repeat("A", 43), strings.Repeat("B", 43)
	var want []string
	for i := range 7 {
		ref := refA
		if i%3 == 0 {
			ref = refB
		}
		id := "m-" + string(rune('a'+i))
		w.mustApply(consent.OpLogAccess, with(entry(id, tNow.Add(-minutes(i))), func(e *consent.AccessEntry) { e.PatientRef = ref }))
		want = append([]string{id}, want...) // older entries have larger i
	}
	var got []string
	after := ""
	for range 10 {
		p := mustQuery[consent.AccessPage](w, consent.QueryListAccess, consent.AccessFilter{PatientRefs: []string{refA, refB}, After: after, Limit: 3})
		for _, e := range p.Entries {
			got = append(got, e.ID)
		}
		if after = p.Next; after == "" {
			break
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("merged log (-want +got):\n%s", diff)
	}
	_, err := w.apply(consent.QueryListAccess, consent.AccessFilter{PatientRef: refA, PatientRefs: []string{refB}})
	checkCode(t, err, consent.EINVALID)
	_, err = w.apply(consent.QueryListAccess, consent.AccessFilter{PatientRefs: []string{"p-1"}})
	checkCode(t, err, consent.EINVALID)
}

// minutes is i minutes, as a duration.
func minutes(i int) time.Duration { return time.Duration(i) * time.Minute }

// TestForeignEntriesStayUnreadable: an entry sealed under another pepper
// (another deployment on the same channel) does not break a listing: it
// comes back in its ledger form, for the caller to show as unreadable;
// read on its own it is EINTEGRITY.
func TestForeignEntriesStayUnreadable(t *testing.T) {
	ctx := t.Context()
	l := consenttest.NewMemLedger()
	ours := consent.NewSealedService(l, mustPseudonymizer(t, 1))
	theirs := consent.NewSealedService(l, mustPseudonymizer(t, 2))
	if _, _, err := theirs.LogAccess(ctx, entry("e-theirs", tNow)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ours.LogAccess(ctx, entry("e-ours", tNow.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	p, err := ours.AccessLog(ctx, consent.AccessFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 2 || p.Entries[0].Sealed == "" || p.Entries[1].Sealed != "" || p.Entries[1].Decision != consent.DecisionAllow {
		t.Fatalf("listing %+v", p.Entries)
	}
	if _, err := ours.Access(ctx, "e-theirs"); consent.ErrorCode(err) != consent.EINTEGRITY {
		t.Fatalf("reading a foreign entry: %v", err)
	}
}
