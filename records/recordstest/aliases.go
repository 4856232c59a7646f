package recordstest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

var aliasTests = []test{
	{"OK_KnownRefsOnly", func(t *testing.T, s records.Store) {
		a, b := patientRef("p-7"), patientRef("p-8")
		mustSaveAlias(t, s, a, "p-7")
		mustSaveAlias(t, s, b, "p-8")
		got := mustAliases(t, s, a, b, patientRef("p-9"), "")
		if diff := cmp.Diff(map[string]string{a: "p-7", b: "p-8"}, got); diff != "" {
			t.Errorf("Aliases mismatch (-want +got):\n%s", diff)
		}
	}},
	{"OK_Idempotent", func(t *testing.T, s records.Store) {
		a := patientRef("p-7")
		mustSaveAlias(t, s, a, "p-7")
		mustSaveAlias(t, s, a, "p-7")
		if diff := cmp.Diff(map[string]string{a: "p-7"}, mustAliases(t, s, a, a)); diff != "" {
			t.Errorf("Aliases mismatch (-want +got):\n%s", diff)
		}
	}},
	{"OK_NoRefs", func(t *testing.T, s records.Store) {
		mustSaveAlias(t, s, patientRef("p-7"), "p-7")
		if got := mustAliases(t, s); len(got) != 0 {
			t.Errorf("Aliases() = %v, want empty", got)
		}
	}},
	{"ErrConflict_OtherID", func(t *testing.T, s records.Store) {
		a := patientRef("p-7")
		mustSaveAlias(t, s, a, "p-7")
		wantCode(t, s.SaveAlias(t.Context(), a, "p-8"), consent.ECONFLICT)
		if diff := cmp.Diff(map[string]string{a: "p-7"}, mustAliases(t, s, a)); diff != "" {
			t.Errorf("Aliases mismatch (-want +got):\n%s", diff)
		}
	}},
	{"ErrInvalid_Empty", func(t *testing.T, s records.Store) {
		wantCode(t, s.SaveAlias(t.Context(), "", "p-7"), consent.EINVALID)
		wantCode(t, s.SaveAlias(t.Context(), patientRef("p-7"), ""), consent.EINVALID)
	}},
}

var pingTests = []test{
	{"OK", func(t *testing.T, s records.Store) {
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping = %v, want nil", err)
		}
	}},
	{"ErrUnavailable_AfterClose", func(t *testing.T, s records.Store) {
		mustCreate(t, s, newRecord("r1", 1, patientRef("p-7")))
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		wantCode(t, s.Ping(t.Context()), consent.EUNAVAILABLE)
		if _, err := s.Record(t.Context(), "r1"); err == nil {
			t.Error("Record after Close succeeded, want an error")
		}
		if err := s.CreateRecord(t.Context(), newRecord("r2", 1, patientRef("p-7"))); err == nil {
			t.Error("CreateRecord after Close succeeded, want an error")
		}
	}},
}

// mustSaveAlias saves an alias or fails the test.
func mustSaveAlias(tb testing.TB, s records.Store, ref, id string) {
	tb.Helper()
	if err := s.SaveAlias(tb.Context(), ref, id); err != nil {
		tb.Fatalf("SaveAlias(%s, %s): %v", ref, id, err)
	}
}

// mustAliases looks refs up or fails the test.
func mustAliases(tb testing.TB, s records.Store, refs ...string) map[string]string {
	tb.Helper()
	got, err := s.Aliases(tb.Context(), refs)
	if err != nil {
		tb.Fatalf("Aliases: %v", err)
	}
	return got
}
