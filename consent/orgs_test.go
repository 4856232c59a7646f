package consent_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

func TestRegisterOrg(t *testing.T) {
	clinic := consent.RegisterOrgArgs{ID: "clinic-1", Name: "Clinic One", Type: consent.OrgClinic}
	runRows(t, consent.OpRegisterOrg, []row[consent.Org]{
		{
			name: "OK", note: "a new org is active, stamped with the tx time, and readable",
			args: with(clinic, func(a *consent.RegisterOrgArgs) { a.Name = "  Clinic One \t" }),
			want: &consent.Org{ID: "clinic-1", Name: "Clinic One", Type: consent.OrgClinic, Status: consent.StatusActive, CreatedAt: tNow, UpdatedAt: tNow},
			check: func(w *world, got consent.Org) {
				if diff := cmp.Diff(got, *mustQuery[*consent.Org](w, consent.QueryGetOrg, consent.IDArgs{ID: "clinic-1"})); diff != "" {
					w.tb.Errorf("GetOrg mismatch (-result +stored):\n%s", diff)
				}
			},
		},
		{
			name: "OK/MaxLengths", note: "a 128-char id and a 256-char name are accepted",
			args: consent.RegisterOrgArgs{ID: long("a", 128), Name: long("n", 256), Type: consent.OrgAuditor},
		},
		{
			name: "OK/EveryType", note: "every org type constant is accepted (lab here; others in the fixtures and TestValidOrgType)",
			args: with(clinic, func(a *consent.RegisterOrgArgs) { a.Type = consent.OrgLab }),
		},
		{
			name: "ErrConflict", note: "an id already registered is rejected",
			args: consent.RegisterOrgArgs{ID: orgHosp, Name: "Other", Type: consent.OrgClinic}, code: consent.ECONFLICT,
		},
		{
			name: "ErrConflict/Inactive", note: "an inactive org still owns its id",
			args: consent.RegisterOrgArgs{ID: orgInactive, Name: "New Lab", Type: consent.OrgLab}, code: consent.ECONFLICT,
		},
		{name: "ErrInvalid/EmptyID", note: "the id is required", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.ID = "" }), code: consent.EINVALID},
		{name: "ErrInvalid/IDTooLong", note: "ids are at most 128 chars", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.ID = long("a", 129) }), code: consent.EINVALID},
		{name: "ErrInvalid/IDSlash", note: "a slash would break key prefixes", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.ID = "a/b" }), code: consent.EINVALID},
		{name: "ErrInvalid/IDLeadingDot", note: "ids may not start with a dot", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.ID = ".a" }), code: consent.EINVALID},
		{name: "ErrInvalid/IDLeadingDash", note: "ids may not start with a dash", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.ID = "-a" }), code: consent.EINVALID},
		{name: "ErrInvalid/IDNonASCII", note: "ids are ASCII only", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.ID = "kliník" }), code: consent.EINVALID},
		{name: "ErrInvalid/BadType", note: "unknown org types are rejected", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.Type = "pharmacy" }), code: consent.EINVALID},
		{name: "ErrInvalid/NoType", note: "the type is required", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.Type = "" }), code: consent.EINVALID},
		{name: "ErrInvalid/EmptyName", note: "the name is required", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.Name = "" }), code: consent.EINVALID},
		{name: "ErrInvalid/BlankName", note: "a name of spaces is empty once trimmed", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.Name = " \t " }), code: consent.EINVALID},
		{name: "ErrInvalid/NameTooLong", note: "names are at most 256 bytes", args: with(clinic, func(a *consent.RegisterOrgArgs) { a.Name = long("n", 257) }), code: consent.EINVALID},
	})
}

func TestSetOrgStatus(t *testing.T) {
	runRows(t, consent.OpSetOrgStatus, []row[consent.Org]{
		{
			name: "OK/Deactivate", note: "an active org can be deactivated; UpdatedAt moves, CreatedAt stays",
			args: consent.SetOrgStatusArgs{ID: orgHosp, Status: consent.StatusInactive},
			want: &consent.Org{ID: orgHosp, Name: "General Hospital", Type: consent.OrgHospital, Status: consent.StatusInactive, CreatedAt: tSeed, UpdatedAt: tNow},
			check: func(w *world, got consent.Org) {
				if diff := cmp.Diff(got, *mustQuery[*consent.Org](w, consent.QueryGetOrg, consent.IDArgs{ID: orgHosp})); diff != "" {
					w.tb.Errorf("GetOrg mismatch (-result +stored):\n%s", diff)
				}
			},
		},
		{
			name: "OK/Reactivate", note: "an inactive org can be activated again",
			args: consent.SetOrgStatusArgs{ID: orgInactive, Status: consent.StatusActive},
			want: &consent.Org{ID: orgInactive, Name: "Closed Lab", Type: consent.OrgLab, Status: consent.StatusActive, CreatedAt: tSeed, UpdatedAt: tNow},
		},
		{name: "ErrConflict/AlreadyActive", note: "setting the current status is a conflict", args: consent.SetOrgStatusArgs{ID: orgHosp, Status: consent.StatusActive}, code: consent.ECONFLICT},
		{name: "ErrConflict/AlreadyInactive", note: "deactivating twice is a conflict", args: consent.SetOrgStatusArgs{ID: orgInactive, Status: consent.StatusInactive}, code: consent.ECONFLICT},
		{name: "ErrNotFound", note: "an unregistered org cannot change status", args: consent.SetOrgStatusArgs{ID: "nobody", Status: consent.StatusInactive}, code: consent.ENOTFOUND},
		{name: "ErrInvalid/BadStatus", note: "orgs are only active or inactive", args: consent.SetOrgStatusArgs{ID: orgHosp, Status: consent.StatusRevoked}, code: consent.EINVALID},
		{name: "ErrInvalid/BadID", note: "a malformed id is invalid, not merely unknown", args: consent.SetOrgStatusArgs{ID: "a/b", Status: consent.StatusInactive}, code: consent.EINVALID},
	})
}

func TestGetOrg(t *testing.T) {
	runRows(t, consent.QueryGetOrg, []row[consent.Org]{
		{
			name: "OK", note: "a registered org is returned as stored",
			args: consent.IDArgs{ID: orgIns},
			want: &consent.Org{ID: orgIns, Name: "Insurer", Type: consent.OrgInsurer, Status: consent.StatusActive, CreatedAt: tSeed, UpdatedAt: tSeed},
		},
		{name: "ErrNotFound", note: "an unknown id is not found", args: consent.IDArgs{ID: "nobody"}, code: consent.ENOTFOUND},
		{name: "ErrInvalid", note: "a malformed id is invalid", args: consent.IDArgs{ID: ""}, code: consent.EINVALID},
	})
}

func TestListOrgs(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		w := seeded(t)
		got := mustQuery[[]consent.Org](w, consent.QueryListOrgs, struct{}{})
		var ids []string
		for _, o := range got {
			ids = append(ids, o.ID)
		}
		// Sorted by id, inactive ones included.
		if diff := cmp.Diff([]string{orgHosp, orgIns, orgInactive}, ids); diff != "" {
			t.Errorf("ids (-want +got):\n%s", diff)
		}
	})
	t.Run("OK/Empty", func(t *testing.T) {
		// An empty registry encodes as [], never null.
		out := newWorld(t).mustApply(consent.QueryListOrgs, struct{}{})
		if string(out) != "[]" {
			t.Errorf("ListOrgs on empty state = %s, want []", out)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		// ListOrgs takes no arguments; any field is unknown.
		_, err := seeded(t).apply(consent.QueryListOrgs, []byte(`{"type":"lab"}`))
		checkCode(t, err, consent.EINVALID)
	})
}

func TestValidOrgType(t *testing.T) {
	for _, typ := range []string{consent.OrgHospital, consent.OrgClinic, consent.OrgLab, consent.OrgInsurer, consent.OrgAuditor} {
		if !consent.ValidOrgType(typ) {
			t.Errorf("ValidOrgType(%q) = false", typ)
		}
	}
	for _, typ := range []string{"", "Hospital", "pharmacy"} {
		if consent.ValidOrgType(typ) {
			t.Errorf("ValidOrgType(%q) = true", typ)
		}
	}
}
