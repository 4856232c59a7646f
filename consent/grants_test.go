package consent_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

// grant is a valid grant of patient2's records to orgIns, not yet submitted.
var grant = consent.GrantConsentArgs{
	ID: "c-new", PatientRef: patient2, Grantee: consent.Grantee{Org: orgIns},
	Categories: []string{"lab"}, Purposes: []string{consent.PurposePayment},
}

// seedConsent is the fixture consentP1 as stored.
var seedConsent = consent.Consent{
	ID: consentP1, PatientRef: patient1, Grantee: consent.Grantee{Org: orgHosp},
	Categories: []string{"lab"}, Records: []string{}, Purposes: []string{consent.PurposeTreat},
	ValidFrom: tSeed, Status: consent.StatusActive, Version: 1, CreatedAt: tSeed, UpdatedAt: tSeed, Tx: txSeed,
}

func TestGrantConsent(t *testing.T) {
	until := tNow.Add(30 * 24 * time.Hour)
	g := func(fn func(*consent.GrantConsentArgs)) consent.GrantConsentArgs { return with(grant, fn) }
	runRows(t, consent.OpGrantConsent, []row[consent.Consent]{
		{
			name: "OK", note: "a grant is stored active at version 1 with sorted, deduplicated scope and validUntil in UTC",
			args: g(func(a *consent.GrantConsentArgs) {
				a.Grantee.SubjectRef = actor1
				a.Categories = []string{"lab", "imaging", "lab", "*"}
				a.Records = []string{"r-2", "r-1", "r-2"}
				a.Purposes = []string{consent.PurposeTreat, consent.PurposePayment, consent.PurposeTreat}
				a.ValidUntil = ptr(until.In(time.FixedZone("CEST", 2*3600)))
			}),
			want: &consent.Consent{
				ID: "c-new", PatientRef: patient2, Grantee: consent.Grantee{Org: orgIns, SubjectRef: actor1},
				Categories: []string{"*", "imaging", "lab"}, Records: []string{"r-1", "r-2"},
				Purposes:  []string{consent.PurposePayment, consent.PurposeTreat},
				ValidFrom: tNow, ValidUntil: &until, Status: consent.StatusActive, Version: 1,
				CreatedAt: tNow, UpdatedAt: tNow, Tx: txTest,
			},
			check: func(w *world, got consent.Consent) {
				stored := mustQuery[*consent.Consent](w, consent.QueryGetConsent, consent.IDArgs{ID: "c-new"})
				if diff := cmp.Diff(got, *stored); diff != "" {
					w.tb.Errorf("GetConsent mismatch (-result +stored):\n%s", diff)
				}
				if stored.ValidUntil.Location() != time.UTC {
					w.tb.Errorf("stored validUntil %v is not UTC", stored.ValidUntil)
				}
			},
		},
		{
			name: "OK/RecordsOnly", note: "records alone are a scope; absent categories are stored as [], not null",
			args: g(func(a *consent.GrantConsentArgs) { a.Categories, a.Records = nil, []string{"r-1"} }),
			check: func(w *world, got consent.Consent) {
				if got.Categories == nil || len(got.Categories) != 0 || !cmp.Equal(got.Records, []string{"r-1"}) {
					w.tb.Errorf("scope = %q / %q, want [] / [r-1]", got.Categories, got.Records)
				}
			},
		},
		{
			name: "OK/CategoriesOnly", note: "categories alone are a scope; absent records are stored as [], not null",
			args: grant,
			check: func(w *world, got consent.Consent) {
				if got.Records == nil || len(got.Records) != 0 || got.ValidUntil != nil {
					w.tb.Errorf("records = %q, validUntil = %v; want [] and nil", got.Records, got.ValidUntil)
				}
			},
		},
		{
			name: "OK/EmptyScopeIsARegistration", note: "no categories and no records: a registration, stored with empty lists",
			args: g(func(a *consent.GrantConsentArgs) { a.Categories, a.Records = []string{}, nil }),
			check: func(w *world, got consent.Consent) {
				if got.Categories == nil || len(got.Categories) != 0 || got.Records == nil || len(got.Records) != 0 {
					w.tb.Errorf("scope = %q / %q, want [] / []", got.Categories, got.Records)
				}
			},
		},
		{
			name: "OK/JustAfterTxTime", note: "validUntil one nanosecond after the tx time is in the future",
			args: g(func(a *consent.GrantConsentArgs) { a.ValidUntil = ptr(tNow.Add(time.Nanosecond)) }),
		},
		{
			name: "OK/SamePatientTwice", note: "a patient may hold several consents for the same grantee",
			args: g(func(a *consent.GrantConsentArgs) { a.PatientRef, a.Grantee.Org = patient1, orgHosp }),
		},
		{name: "ErrConflict", note: "a consent id can be used once", args: g(func(a *consent.GrantConsentArgs) { a.ID = consentP1 }), code: consent.ECONFLICT},
		{name: "ErrInvalid/BadID", note: "the consent id must be a valid id", args: g(func(a *consent.GrantConsentArgs) { a.ID = "c 1" }), code: consent.EINVALID},
		{name: "ErrInvalid/UnknownGrantee", note: "the grantee org must be registered", args: g(func(a *consent.GrantConsentArgs) { a.Grantee.Org = "nobody" }), code: consent.EINVALID},
		{name: "ErrInvalid/NoGrantee", note: "the grantee org is required", args: g(func(a *consent.GrantConsentArgs) { a.Grantee.Org = "" }), code: consent.EINVALID},
		{name: "ErrInvalid/InactiveGrantee", note: "an inactive org cannot receive consent", args: g(func(a *consent.GrantConsentArgs) { a.Grantee.Org = orgInactive }), code: consent.EINVALID},
		{name: "ErrInvalid/UnknownPurpose", note: "purposes must be accepted HL7 codes", args: g(func(a *consent.GrantConsentArgs) { a.Purposes = []string{"TREAT", "MARKETING"} }), code: consent.EINVALID},
		{name: "ErrInvalid/LowercasePurpose", note: "purpose codes are case-sensitive", args: g(func(a *consent.GrantConsentArgs) { a.Purposes = []string{"treat"} }), code: consent.EINVALID},
		{name: "ErrInvalid/NoPurposes", note: "a consent names at least one purpose", args: g(func(a *consent.GrantConsentArgs) { a.Purposes = nil }), code: consent.EINVALID},
		{name: "ErrInvalid/ValidUntilPast", note: "validUntil before the tx time is rejected", args: g(func(a *consent.GrantConsentArgs) { a.ValidUntil = ptr(tNow.Add(-time.Hour)) }), code: consent.EINVALID},
		{name: "ErrInvalid/ValidUntilEqual", note: "validUntil equal to the tx time is not in the future", args: g(func(a *consent.GrantConsentArgs) { a.ValidUntil = ptr(tNow) }), code: consent.EINVALID},
		{name: "ErrInvalid/ValidUntilOutOfRange", note: "a validUntil whose UTC year passes 9999 is invalid input, not an encode failure", args: []byte(`{"id":"c-new","patientRef":"` + patient2 + `","grantee":{"org":"` + orgIns + `"},"categories":["lab"],"purposes":["TREAT"],"validUntil":"9999-12-31T23:59:59-01:00"}`), code: consent.EINVALID},
		{name: "ErrInvalid/PatientRefShort", note: "patientRef must be 43 chars", args: g(func(a *consent.GrantConsentArgs) { a.PatientRef = patient2[:42] }), code: consent.EINVALID},
		{name: "ErrInvalid/PatientRefChars", note: "patientRef must be base64url, not std base64", args: g(func(a *consent.GrantConsentArgs) { a.PatientRef = "+" + patient2[1:] }), code: consent.EINVALID},
		{name: "ErrInvalid/PatientRefPlainID", note: "a raw patient id is not a pseudonym", args: g(func(a *consent.GrantConsentArgs) { a.PatientRef = "p-2" }), code: consent.EINVALID},
		{name: "ErrInvalid/SubjectRef", note: "a grantee subject must be a pseudonym", args: g(func(a *consent.GrantConsentArgs) { a.Grantee.SubjectRef = "dr-1" }), code: consent.EINVALID},
		{name: "ErrInvalid/CategoryUpper", note: "categories are lowercase tokens", args: g(func(a *consent.GrantConsentArgs) { a.Categories = []string{"Lab"} }), code: consent.EINVALID},
		{name: "ErrInvalid/CategoryPunct", note: "categories hold only [a-z0-9-]", args: g(func(a *consent.GrantConsentArgs) { a.Categories = []string{"lab/x"} }), code: consent.EINVALID},
		{name: "ErrInvalid/CategoryLeadingDash", note: "categories may not start with a dash", args: g(func(a *consent.GrantConsentArgs) { a.Categories = []string{"-lab"} }), code: consent.EINVALID},
		{name: "ErrInvalid/CategoryEmpty", note: "an empty category is not a token", args: g(func(a *consent.GrantConsentArgs) { a.Categories = []string{""} }), code: consent.EINVALID},
		{name: "ErrInvalid/CategoryTooLong", note: "categories are at most 64 chars", args: g(func(a *consent.GrantConsentArgs) { a.Categories = []string{long("a", 65)} }), code: consent.EINVALID},
		{name: "ErrInvalid/RecordID", note: "record ids must be valid ids", args: g(func(a *consent.GrantConsentArgs) { a.Records = []string{"../etc"} }), code: consent.EINVALID},
		{name: "ErrInvalid/TooManyCategories", note: "scope lists hold at most 256 items", args: g(func(a *consent.GrantConsentArgs) { a.Categories = seq("cat", 257) }), code: consent.EINVALID},
		{name: "ErrInvalid/TooManyRecords", note: "scope lists hold at most 256 items", args: g(func(a *consent.GrantConsentArgs) { a.Records = seq("r", 257) }), code: consent.EINVALID},
		{name: "ErrInvalid/TooManyPurposes", note: "the size limit counts items before deduplication", args: g(func(a *consent.GrantConsentArgs) { a.Purposes = repeat(consent.PurposeTreat, 257) }), code: consent.EINVALID},
		{
			name: "OK/MaxScope", note: "256 items per scope list is the limit, inclusive",
			args: g(func(a *consent.GrantConsentArgs) { a.Categories, a.Records = seq("cat", 256), seq("r", 256) }),
			check: func(w *world, got consent.Consent) {
				if len(got.Categories) != 256 || len(got.Records) != 256 {
					w.tb.Errorf("stored %d categories and %d records, want 256 each", len(got.Categories), len(got.Records))
				}
			},
		},
		{name: "ErrInvalid/UnknownField", note: "status and version are the contract's, not the caller's", args: []byte(`{"id":"c-new","patientRef":"` + patient2 + `","grantee":{"org":"` + orgIns + `"},"categories":["lab"],"purposes":["TREAT"],"version":7}`), code: consent.EINVALID},
	})
}

func TestGrantConsentIndexes(t *testing.T) {
	// A grant is listed under both its patient and its grantee, and under
	// no one else.
	w := seeded(t)
	c := mustDecode[consent.Consent](t, w.mustApply(consent.OpGrantConsent, grant))
	for _, f := range []consent.ConsentFilter{{PatientRef: patient2}, {GranteeOrg: orgIns}} {
		got := mustQuery[[]consent.Consent](w, consent.QueryListConsents, f)
		if diff := cmp.Diff([]consent.Consent{c}, got); diff != "" {
			t.Errorf("ListConsents(%+v) (-want +got):\n%s", f, diff)
		}
	}
	got := mustQuery[[]consent.Consent](w, consent.QueryListConsents, consent.ConsentFilter{PatientRef: patient1})
	if diff := cmp.Diff([]consent.Consent{seedConsent}, got); diff != "" {
		t.Errorf("ListConsents(patient1) (-want +got):\n%s", diff)
	}
}

func TestRevokeConsent(t *testing.T) {
	revoked := with(seedConsent, func(c *consent.Consent) {
		c.Status, c.Version, c.UpdatedAt, c.Tx = consent.StatusRevoked, 2, tNow, txTest
	})
	runRows(t, consent.OpRevokeConsent, []row[consent.Consent]{
		{
			name: "OK", note: "the granting patient revokes: status revoked, version 2, new tx and UpdatedAt, history fields kept",
			args: consent.RevokeConsentArgs{ID: consentP1, By: patient1},
			want: &revoked,
			check: func(w *world, got consent.Consent) {
				if diff := cmp.Diff(revoked, *mustQuery[*consent.Consent](w, consent.QueryGetConsent, consent.IDArgs{ID: consentP1})); diff != "" {
					w.tb.Errorf("stored consent (-want +got):\n%s", diff)
				}
				// Still listed (as revoked) under patient and grantee.
				for _, f := range []consent.ConsentFilter{{PatientRef: patient1}, {GranteeOrg: orgHosp}} {
					if diff := cmp.Diff([]consent.Consent{revoked}, mustQuery[[]consent.Consent](w, consent.QueryListConsents, f)); diff != "" {
						w.tb.Errorf("ListConsents(%+v) (-want +got):\n%s", f, diff)
					}
				}
			},
		},
		{
			name: "OK/GranteeInactive", note: "revoking does not depend on the grantee still being active",
			setup: func(w *world) {
				w.mustApply(consent.OpSetOrgStatus, consent.SetOrgStatusArgs{ID: orgHosp, Status: consent.StatusInactive})
			},
			args: consent.RevokeConsentArgs{ID: consentP1, By: patient1}, want: &revoked,
		},
		{name: "ErrForbidden", note: "another patient cannot revoke someone else's consent", args: consent.RevokeConsentArgs{ID: consentP1, By: patient2}, code: consent.EFORBIDDEN},
		{name: "ErrForbidden/NoBy", note: "an anonymous revoke is forbidden", args: consent.RevokeConsentArgs{ID: consentP1}, code: consent.EFORBIDDEN},
		{
			name: "ErrConflict", note: "revoking twice is a conflict",
			setup: func(w *world) {
				w.mustApply(consent.OpRevokeConsent, consent.RevokeConsentArgs{ID: consentP1, By: patient1})
			},
			args: consent.RevokeConsentArgs{ID: consentP1, By: patient1}, code: consent.ECONFLICT,
		},
		{name: "ErrNotFound", note: "an unknown consent cannot be revoked", args: consent.RevokeConsentArgs{ID: "c-none", By: patient1}, code: consent.ENOTFOUND},
		{name: "ErrInvalid", note: "a malformed consent id is invalid", args: consent.RevokeConsentArgs{ID: "", By: patient1}, code: consent.EINVALID},
	})
}

func TestGetConsent(t *testing.T) {
	runRows(t, consent.QueryGetConsent, []row[consent.Consent]{
		{name: "OK", note: "a granted consent is returned as stored", args: consent.IDArgs{ID: consentP1}, want: &seedConsent},
		{name: "ErrNotFound", note: "an unknown id is not found", args: consent.IDArgs{ID: "c-none"}, code: consent.ENOTFOUND},
		{name: "ErrInvalid", note: "a malformed id is invalid", args: consent.IDArgs{ID: "c/1"}, code: consent.EINVALID},
	})
}

func TestListConsents(t *testing.T) {
	// Extra consents so each filter has to pick: patient1 → orgIns twice
	// (ids out of order), patient2 → orgHosp.
	setup := func(w *world) {
		for _, a := range []consent.GrantConsentArgs{
			with(grant, func(a *consent.GrantConsentArgs) { a.ID, a.PatientRef = "c-z", patient1 }),
			with(grant, func(a *consent.GrantConsentArgs) { a.ID, a.PatientRef = "c-a", patient1 }),
			with(grant, func(a *consent.GrantConsentArgs) { a.ID, a.Grantee.Org = "c-m", orgHosp }),
		} {
			w.mustApply(consent.OpGrantConsent, a)
		}
	}
	ids := func(want ...string) func(w *world, got []consent.Consent) {
		return func(w *world, got []consent.Consent) {
			var gotIDs []string
			for _, c := range got {
				gotIDs = append(gotIDs, c.ID)
			}
			if diff := cmp.Diff(want, gotIDs); diff != "" {
				w.tb.Errorf("ids (-want +got):\n%s", diff)
			}
		}
	}
	runRows(t, consent.QueryListConsents, []row[[]consent.Consent]{
		{name: "OK/ByPatient", note: "a patient's consents, whatever the grantee, sorted by id", setup: setup, args: consent.ConsentFilter{PatientRef: patient1}, check: ids("c-a", consentP1, "c-z")},
		{name: "OK/ByGrantee", note: "a grantee's consents, whatever the patient, sorted by id", setup: setup, args: consent.ConsentFilter{GranteeOrg: orgHosp}, check: ids("c-m", consentP1)},
		{name: "OK/NoneForPatient", note: "a patient with no consents gets an empty list", args: consent.ConsentFilter{PatientRef: patient2}, want: &[]consent.Consent{}},
		{name: "OK/NoneForGrantee", note: "an org with no consents (even unregistered) gets an empty list", args: consent.ConsentFilter{GranteeOrg: "nobody"}, want: &[]consent.Consent{}},
		{name: "ErrInvalid/BothFilters", note: "exactly one filter: both is ambiguous", args: consent.ConsentFilter{PatientRef: patient1, GranteeOrg: orgHosp}, code: consent.EINVALID},
		{name: "ErrInvalid/NoFilter", note: "exactly one filter: none would list everything", args: consent.ConsentFilter{}, code: consent.EINVALID},
		{name: "ErrInvalid/BadPatientRef", note: "the patient filter must be a pseudonym", args: consent.ConsentFilter{PatientRef: "p-1"}, code: consent.EINVALID},
		{name: "ErrInvalid/BadGranteeOrg", note: "the grantee filter must be a valid id", args: consent.ConsentFilter{GranteeOrg: "a/b"}, code: consent.EINVALID},
	})
	t.Run("OK/EmptyIsArray", func(t *testing.T) {
		// An empty list encodes as [], never null.
		out := seeded(t).mustApply(consent.QueryListConsents, consent.ConsentFilter{PatientRef: patient2})
		if string(out) != "[]" {
			t.Errorf("got %s, want []", out)
		}
	})
}

func TestConsentActiveAt(t *testing.T) {
	from := tNow
	until := tNow.Add(time.Hour)
	open := consent.Consent{Status: consent.StatusActive, ValidFrom: from}
	bounded := with(open, func(c *consent.Consent) { c.ValidUntil = &until })
	revoked := with(bounded, func(c *consent.Consent) { c.Status = consent.StatusRevoked })
	tests := []struct {
		name string
		note string
		c    consent.Consent
		at   time.Time
		want bool
	}{
		{"Active", "inside the window", bounded, from.Add(time.Minute), true},
		{"Active/AtValidFrom", "validFrom is inclusive", bounded, from, true},
		{"Active/NoValidUntil", "no validUntil means open-ended", open, from.Add(100 * 365 * 24 * time.Hour), true},
		{"Inactive/BeforeValidFrom", "not yet in force", bounded, from.Add(-time.Nanosecond), false},
		{"Inactive/AtValidUntil", "validUntil is exclusive", bounded, until, false},
		{"Inactive/AfterValidUntil", "expired", bounded, until.Add(time.Minute), false},
		{"Inactive/Revoked", "a revoked consent is never in force, even inside its window", revoked, from.Add(time.Minute), false},
		{"Inactive/UnknownStatus", "only status active counts", with(open, func(c *consent.Consent) { c.Status = "" }), from, false},
		{"Active/OtherZone", "the instant matters, not the zone", bounded, until.Add(-time.Second).In(time.FixedZone("X", -5*3600)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Log(tt.note)
			if got := tt.c.ActiveAt(tt.at); got != tt.want {
				t.Errorf("ActiveAt(%v) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
}

func TestValidPurpose(t *testing.T) {
	for _, p := range []string{consent.PurposeTreat, consent.PurposeEmergency, consent.PurposePayment, consent.PurposeOperations, consent.PurposeResearch, consent.PurposePatientRqst} {
		if !consent.ValidPurpose(p) {
			t.Errorf("ValidPurpose(%q) = false", p)
		}
	}
	for _, p := range []string{"", "treat", "MARKETING", "TREAT "} {
		if consent.ValidPurpose(p) {
			t.Errorf("ValidPurpose(%q) = true", p)
		}
	}
}
