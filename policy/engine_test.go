package policy_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// MustEngine returns an engine built from o or fails the test.
func MustEngine(tb testing.TB, o policy.Options) *policy.Engine {
	tb.Helper()
	e, err := policy.New(context.Background(), o)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return e
}

// MustDecide returns e's decision for in or fails the test.
func MustDecide(tb testing.TB, e *policy.Engine, in policy.Input) policy.Decision {
	tb.Helper()
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		tb.Fatalf("Decide: %v", err)
	}
	return d
}

// now is when every test request happens.
func now() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

func providerB() policy.Subject {
	return policy.Subject{ID: "dr-b", Role: policy.RoleProvider, Org: "hospital-b", OrgType: consent.OrgHospital, Ref: "s-dr-b"}
}

func patientP7() policy.Subject {
	return policy.Subject{ID: "p-7", Role: policy.RolePatient, Ref: "s-p7", PatientRef: "p7"}
}

func insurerX() policy.Subject {
	return policy.Subject{ID: "clerk", Role: policy.RoleInsurer, Org: "insurer-x", OrgType: consent.OrgInsurer, Ref: "s-clerk"}
}

func record(id, category string) policy.Resource {
	return policy.Resource{Type: "record", ID: id, Patient: "p7", Category: category, Org: "hospital-a"}
}

// grant returns an active consent of p7 to hospital-b for lab records and
// TREAT, valid since January, after applying edit.
func grant(edit func(*consent.Consent)) consent.Consent {
	c := consent.Consent{
		ID: "c-1", PatientRef: "p7", Grantee: consent.Grantee{Org: "hospital-b"},
		Categories: []string{"lab"}, Records: []string{}, Purposes: []string{consent.PurposeTreat},
		ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Status: consent.StatusActive, Version: 1,
	}
	if edit != nil {
		edit(&c)
	}
	return c
}

func at(t time.Time) *time.Time { return &t }

func TestDecide(t *testing.T) {
	e := MustEngine(t, policy.Options{})
	noConsent := "no active consent for org hospital-b covers record r-1 (category lab) for purpose TREAT"
	for _, tt := range []struct {
		note string
		in   policy.Input
		want policy.Decision
	}{{
		note: "patient reads own record",
		in:   policy.Input{Subject: patientP7(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposePatientRqst},
		want: policy.Decision{Allow: true, Reasons: []string{"patient reads their own record"}, Obligations: []string{}},
	}, {
		note: "authoring organization reads for TREAT without consent",
		in: policy.Input{
			Subject: policy.Subject{Role: policy.RoleProvider, Org: "hospital-a", OrgType: consent.OrgHospital, Ref: "s-a"},
			Action:  policy.ActionRead, Resource: record("r-2", "mental-health"), Purpose: consent.PurposeTreat,
		},
		want: policy.Decision{Allow: true, Reasons: []string{"authoring organization hospital-a reads its own record for TREAT"}, Obligations: []string{}},
	}, {
		note: "consent for the category allows and is cited",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeTreat,
			Consents: []consent.Consent{grant(func(c *consent.Consent) { c.Version = 2 })}},
		want: policy.Decision{Allow: true, Reasons: []string{"consent c-1 (version 2) grants hospital-b access to this record for purpose TREAT"},
			Obligations: []string{}, ConsentID: "c-1", ConsentVersion: 2},
	}, {
		note: "lowest applying consent id is cited",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeTreat,
			Consents: []consent.Consent{
				grant(func(c *consent.Consent) { c.ID = "c-b" }),
				grant(func(c *consent.Consent) { c.ID = "c-a"; c.Categories = nil; c.Records = []string{"r-1"} }),
			}},
		want: policy.Decision{Allow: true, Reasons: []string{"consent c-a (version 1) grants hospital-b access to this record for purpose TREAT"},
			Obligations: []string{}, ConsentID: "c-a", ConsentVersion: 1},
	}, {
		note: "validity compares instants whatever the time zone",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeTreat,
			Time: now().In(time.FixedZone("CET", 3600)),
			Consents: []consent.Consent{grant(func(c *consent.Consent) {
				c.ValidUntil = at(time.Date(2026, 3, 1, 13, 0, 1, 0, time.FixedZone("CET", 3600)))
			})}},
		want: policy.Decision{Allow: true, Reasons: []string{"consent c-1 (version 1) grants hospital-b access to this record for purpose TREAT"},
			Obligations: []string{}, ConsentID: "c-1", ConsentVersion: 1},
	}, {
		note: "expired consent denies",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeTreat,
			Consents: []consent.Consent{grant(func(c *consent.Consent) { c.ValidUntil = at(now()) })}},
		want: policy.Decision{Reasons: []string{noConsent}, Obligations: []string{}},
	}, {
		note: "revoked consent denies",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeTreat,
			Consents: []consent.Consent{grant(func(c *consent.Consent) { c.Status = consent.StatusRevoked; c.Version = 2 })}},
		want: policy.Decision{Reasons: []string{noConsent}, Obligations: []string{}},
	}, {
		note: "consent for another subject of the org denies",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeTreat,
			Consents: []consent.Consent{grant(func(c *consent.Consent) { c.Grantee.SubjectRef = "s-dr-z" })}},
		want: policy.Decision{Reasons: []string{noConsent}, Obligations: []string{}},
	}, {
		note: "wildcard consent does not open a restricted category",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-2", "hiv"), Purpose: consent.PurposeTreat,
			Consents: []consent.Consent{grant(func(c *consent.Consent) { c.Categories = []string{consent.WildcardCategory} })}},
		want: policy.Decision{Reasons: []string{
			"no active consent for org hospital-b covers record r-2 (category hiv) for purpose TREAT",
			"category hiv is restricted: the wildcard category does not open it; a consent must name it or the record",
		}, Obligations: []string{}},
	}, {
		note: "break-glass with a reason allows with obligations",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeEmergency,
			Emergency: policy.Emergency{Declared: true, Reason: " unconscious, no ID "}},
		want: policy.Decision{Allow: true,
			Reasons:     []string{"break-glass: hospital-b declared an emergency (unconscious, no ID) and reads category lab for ETREAT"},
			Obligations: []string{policy.ObligationNotifyPatient, policy.ObligationFlagAudit}},
	}, {
		note: "break-glass without a reason denies and is flagged",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeEmergency,
			Emergency: policy.Emergency{Declared: true}},
		want: policy.Decision{Reasons: []string{"break-glass (ETREAT) requires a declared emergency and a non-empty break-glass reason"},
			Obligations: []string{policy.ObligationFlagAudit}},
	}, {
		note: "break-glass cannot open a restricted category",
		in: policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-2", "genetic"), Purpose: consent.PurposeEmergency,
			Emergency: policy.Emergency{Declared: true, Reason: "stroke"}},
		want: policy.Decision{Reasons: []string{"break-glass cannot open restricted category genetic: only a consent naming that category or record opens it"},
			Obligations: []string{policy.ObligationFlagAudit}},
	}, {
		note: "insurer never reads content",
		in: policy.Input{Subject: insurerX(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposePayment,
			Consents: []consent.Consent{grant(func(c *consent.Consent) { c.Grantee.Org = "insurer-x"; c.Purposes = []string{"HPAYMT"} })}},
		want: policy.Decision{Reasons: []string{"insurers never read record content: they verify claim facts (verify_claim) under an HPAYMT consent"},
			Obligations: []string{}},
	}, {
		note: "insurer verifies a claim under an HPAYMT consent",
		in: policy.Input{Subject: insurerX(), Action: policy.ActionVerifyClaim, Resource: record("r-1", "lab"), Purpose: consent.PurposePayment,
			Consents: []consent.Consent{grant(func(c *consent.Consent) { c.Grantee.Org = "insurer-x"; c.Purposes = []string{"HPAYMT"} })}},
		want: policy.Decision{Allow: true, Reasons: []string{"consent c-1 (version 1) lets insurer insurer-x verify claims against this record"},
			Obligations: []string{}, ConsentID: "c-1", ConsentVersion: 1},
	}, {
		note: "insurer without an HPAYMT consent cannot verify",
		in: policy.Input{Subject: insurerX(), Action: policy.ActionVerifyClaim, Resource: record("r-1", "lab"), Purpose: consent.PurposePayment,
			Consents: []consent.Consent{grant(func(c *consent.Consent) { c.Grantee.Org = "insurer-x" })}},
		want: policy.Decision{Reasons: []string{"no active HPAYMT consent from the patient covers record r-1 (category lab) for insurer insurer-x"},
			Obligations: []string{}},
	}, {
		note: "provider lists a record under a consent for another purpose",
		in: policy.Input{Subject: providerB(), Action: policy.ActionList, Resource: record("r-1", "lab"),
			Consents: []consent.Consent{grant(func(c *consent.Consent) { c.Purposes = []string{"HRESCH"} })}},
		want: policy.Decision{Allow: true, Reasons: []string{"consent c-1 (version 1) grants hospital-b access to this record"},
			Obligations: []string{}, ConsentID: "c-1", ConsentVersion: 1},
	}, {
		note: "provider uploads only as its own organization",
		in:   policy.Input{Subject: providerB(), Action: policy.ActionWrite, Resource: record("", "lab")},
		want: policy.Decision{Reasons: []string{"providers upload records only as their own organization (hospital-b), not as hospital-a"},
			Obligations: []string{}},
	}, {
		note: "patient grants their own consent",
		in:   policy.Input{Subject: patientP7(), Action: policy.ActionGrant, Resource: policy.Resource{Type: "consent", Patient: "p7"}},
		want: policy.Decision{Allow: true, Reasons: []string{"patient may grant their own consents"}, Obligations: []string{}},
	}, {
		note: "auditor reads the access log",
		in:   policy.Input{Subject: policy.Subject{Role: policy.RoleAuditor, Org: "audit-co", Ref: "s-aud"}, Action: policy.ActionReadAudit},
		want: policy.Decision{Allow: true, Reasons: []string{"auditors read the access log"}, Obligations: []string{}},
	}, {
		note: "provider cannot manage organizations",
		in:   policy.Input{Subject: providerB(), Action: policy.ActionManageOrgs},
		want: policy.Decision{Reasons: []string{"only administrators manage organizations"}, Obligations: []string{}},
	}, {
		note: "unknown action denies",
		in:   policy.Input{Subject: patientP7(), Action: "export", Resource: record("r-1", "lab")},
		want: policy.Decision{Reasons: []string{`unknown action "export"`}, Obligations: []string{}},
	}} {
		t.Run(tt.note, func(t *testing.T) {
			if tt.in.Time.IsZero() {
				tt.in.Time = now()
			}
			tt.want.PolicyDigest = e.Digest()
			if diff := cmp.Diff(tt.want, MustDecide(t, e, tt.in)); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecide_ErrZeroEngine(t *testing.T) {
	var e policy.Engine
	_, err := e.Decide(context.Background(), policy.Input{Subject: patientP7(), Action: policy.ActionListOrgs, Time: now()})
	if got := consent.ErrorCode(err); got != consent.EINTERNAL {
		t.Fatalf("error code = %q (%v), want %q", got, err, consent.EINTERNAL)
	}
}

func TestDecide_ErrNoTime(t *testing.T) {
	e := MustEngine(t, policy.Options{})
	_, err := e.Decide(context.Background(), policy.Input{Subject: patientP7(), Action: policy.ActionListOrgs})
	if got := consent.ErrorCode(err); got != consent.EINVALID {
		t.Fatalf("error code = %q (%v), want %q", got, err, consent.EINVALID)
	}
}

func TestNew_Restricted(t *testing.T) {
	def := MustEngine(t, policy.Options{})
	if diff := cmp.Diff([]string{"genetic", "hiv", "mental-health", "sexual-health", "substance-use"}, def.Restricted()); diff != "" {
		t.Errorf("default restricted (-want +got):\n%s", diff)
	}
	wildcard := []consent.Consent{grant(func(c *consent.Consent) { c.Categories = []string{"*"} })}
	read := func(e *policy.Engine, category string) bool {
		return MustDecide(t, e, policy.Input{
			Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", category),
			Purpose: consent.PurposeTreat, Consents: wildcard, Time: now(),
		}).Allow
	}
	for _, tt := range []struct {
		note       string
		restricted []string
		want       map[string]bool // category → wildcard read allowed
	}{
		{note: "default set", restricted: nil, want: map[string]bool{"lab": true, "mental-health": false, "hiv": false}},
		{note: "empty set restricts nothing", restricted: []string{}, want: map[string]bool{"lab": true, "mental-health": true, "hiv": true}},
		{note: "custom set", restricted: []string{"lab", "lab"}, want: map[string]bool{"lab": false, "mental-health": true, "hiv": true}},
	} {
		t.Run(tt.note, func(t *testing.T) {
			e := MustEngine(t, policy.Options{Restricted: tt.restricted})
			got := map[string]bool{}
			for c := range tt.want {
				got[c] = read(e, c)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("wildcard reads (-want +got):\n%s", diff)
			}
			if tt.restricted != nil && e.Digest() == def.Digest() {
				t.Errorf("digest did not change with the restricted set")
			}
		})
	}
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, bad := range [][]string{{"*"}, {"Mental-Health"}, {""}, {"a/b"}} {
			_, err := policy.New(context.Background(), policy.Options{Restricted: bad})
			if got := consent.ErrorCode(err); got != consent.EINVALID {
				t.Errorf("Restricted %q: error code = %q (%v), want %q", bad, got, err, consent.EINVALID)
			}
		}
	})
}

// copyPolicies copies rego/ (tests included) into a new temp dir, applying
// edit to each file's text.
func copyPolicies(tb testing.TB, edit func(name, text string) string) string {
	tb.Helper()
	dir := tb.TempDir()
	names, err := fs.Glob(os.DirFS("rego"), "*.rego")
	if err != nil || len(names) == 0 {
		tb.Fatalf("glob rego: %v (%d files)", err, len(names))
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join("rego", name))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(edit(name, string(b))), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func TestNew_Dir(t *testing.T) {
	embedded := MustEngine(t, policy.Options{})
	if len(embedded.Digest()) != 64 {
		t.Fatalf("digest %q is not hex sha256", embedded.Digest())
	}
	if again := MustEngine(t, policy.Options{}); again.Digest() != embedded.Digest() {
		t.Errorf("digest is not stable: %s then %s", embedded.Digest(), again.Digest())
	}
	in := policy.Input{Subject: patientP7(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Time: now()}

	t.Run("SameSourcesSameDigest", func(t *testing.T) {
		dir := copyPolicies(t, func(_, s string) string { return s })
		if got := MustEngine(t, policy.Options{Dir: dir}).Digest(); got != embedded.Digest() {
			t.Errorf("digest of a copy = %s, want %s", got, embedded.Digest())
		}
	})
	t.Run("TestFilesIgnored", func(t *testing.T) {
		dir := copyPolicies(t, func(name, s string) string {
			if strings.HasSuffix(name, "_test.rego") {
				return s + "\n# edited\n"
			}
			return s
		})
		if got := MustEngine(t, policy.Options{Dir: dir}).Digest(); got != embedded.Digest() {
			t.Errorf("editing a _test.rego changed the digest")
		}
	})
	t.Run("EditedPolicyOverrides", func(t *testing.T) {
		dir := copyPolicies(t, func(_, s string) string {
			return strings.ReplaceAll(s, "patient reads their own record", "own record, read by its patient")
		})
		e := MustEngine(t, policy.Options{Dir: dir})
		if e.Digest() == embedded.Digest() {
			t.Errorf("digest did not change with the policy")
		}
		d := MustDecide(t, e, in)
		want := policy.Decision{Allow: true, Reasons: []string{"own record, read by its patient"}, Obligations: []string{}, PolicyDigest: e.Digest()}
		if diff := cmp.Diff(want, d); diff != "" {
			t.Errorf("decision (-want +got):\n%s", diff)
		}
	})
}

func TestNew_ErrInvalid(t *testing.T) {
	for _, tt := range []struct {
		note  string
		files map[string]string
	}{
		{note: "no policies", files: map[string]string{"only_test.rego": "package medshare.authz_test\n"}},
		{note: "syntax error", files: map[string]string{"a.rego": "package medshare.authz\ndecision := {\n"}},
		{note: "compile error", files: map[string]string{"a.rego": "package medshare.authz\ndecision := x if { y := 1 }\n"}},
		{note: "no decision rule", files: map[string]string{"a.rego": "package medshare.authz\nallow := true\n"}},
		{note: "decision in another package", files: map[string]string{"a.rego": "package other\ndecision := {}\n"}},
	} {
		t.Run(tt.note, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := policy.New(context.Background(), policy.Options{Dir: dir})
			if got := consent.ErrorCode(err); got != consent.EINVALID {
				t.Errorf("error code = %q (%v), want %q", got, err, consent.EINVALID)
			}
		})
	}
	t.Run("missing dir", func(t *testing.T) {
		_, err := policy.New(context.Background(), policy.Options{Dir: filepath.Join(t.TempDir(), "nope")})
		if got := consent.ErrorCode(err); got != consent.EINVALID {
			t.Errorf("error code = %q (%v), want %q", got, err, consent.EINVALID)
		}
	})
}

// TestDecide_FailClosed proves that a policy whose decision is malformed,
// undefined or fails to evaluate yields an error, never a decision.
func TestDecide_FailClosed(t *testing.T) {
	for _, tt := range []struct {
		note     string
		decision string
	}{
		{note: "not an object", decision: `decision := true`},
		{note: "allow not boolean", decision: `decision := {"allow": "yes", "reasons": ["r"], "obligations": []}`},
		{note: "allow missing", decision: `decision := {"reasons": ["r"], "obligations": []}`},
		{note: "no reasons", decision: `decision := {"allow": true, "reasons": [], "obligations": []}`},
		{note: "empty reason", decision: `decision := {"allow": false, "reasons": [""], "obligations": []}`},
		{note: "reason not a string", decision: `decision := {"allow": false, "reasons": [1], "obligations": []}`},
		{note: "obligations missing", decision: `decision := {"allow": true, "reasons": ["r"]}`},
		{note: "consent without id", decision: `decision := {"allow": true, "reasons": ["r"], "obligations": [], "consent": {"version": 1}}`},
		{note: "consent version not a number", decision: `decision := {"allow": true, "reasons": ["r"], "obligations": [], "consent": {"id": "c", "version": "1"}}`},
		{note: "consent version fractional", decision: `decision := {"allow": true, "reasons": ["r"], "obligations": [], "consent": {"id": "c", "version": 1.5}}`},
		{note: "undefined", decision: `decision := d if { d := input.nothing }`},
		{note: "conflicting values", decision: "decision := {\"allow\": true, \"reasons\": [\"a\"], \"obligations\": []} if input.action\n" +
			"decision := {\"allow\": false, \"reasons\": [\"b\"], \"obligations\": []} if input.action"},
		{note: "evaluation error", decision: `decision := {"allow": true, "reasons": [x], "obligations": []} if { x := sprintf("%d", [1 / 0]) }`},
	} {
		t.Run(tt.note, func(t *testing.T) {
			dir := t.TempDir()
			src := "package medshare.authz\n\n" + tt.decision + "\n"
			if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			e := MustEngine(t, policy.Options{Dir: dir})
			d, err := e.Decide(context.Background(), policy.Input{Subject: patientP7(), Action: policy.ActionListOrgs, Time: now()})
			if got := consent.ErrorCode(err); got != consent.EINTERNAL {
				t.Errorf("error code = %q (%v), decision %+v; want %q", got, err, d, consent.EINTERNAL)
			}
			if d.Allow {
				t.Errorf("failed decision allows")
			}
		})
	}
}

// TestDecide_ErrAmbiguousConsent: two different consents under one id leave
// the basis of an allow ambiguous, so evaluation fails rather than pick one.
func TestDecide_ErrAmbiguousConsent(t *testing.T) {
	e := MustEngine(t, policy.Options{})
	_, err := e.Decide(context.Background(), policy.Input{
		Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeTreat,
		Consents: []consent.Consent{grant(nil), grant(func(c *consent.Consent) { c.Version = 2 })},
		Time:     now(),
	})
	if got := consent.ErrorCode(err); got != consent.EINTERNAL {
		t.Fatalf("error code = %q (%v), want %q", got, err, consent.EINTERNAL)
	}
}

// TestDecide_ClipsReasons: reasons fit an access-log entry, cut on a UTF-8
// boundary.
func TestDecide_ClipsReasons(t *testing.T) {
	dir := t.TempDir()
	src := "package medshare.authz\n\n" +
		`decision := {"allow": false, "reasons": [concat("", ["é" | some _ in numbers.range(1, 600)])], "obligations": []}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	d := MustDecide(t, MustEngine(t, policy.Options{Dir: dir}), policy.Input{Action: policy.ActionListOrgs, Time: now()})
	if got := d.Reasons[0]; len(got) != policy.MaxReasonLen || !utf8.ValidString(got) {
		t.Errorf("reason has %d bytes (valid UTF-8: %v), want %d", len(got), utf8.ValidString(got), policy.MaxReasonLen)
	}
}

// TestDecide_Concurrent shares one engine between goroutines; run with
// -race.
func TestDecide_Concurrent(t *testing.T) {
	e := MustEngine(t, policy.Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				c := grant(nil)
				allowed := (i+j)%2 == 0
				if !allowed {
					c.Status = consent.StatusRevoked
				}
				d, err := e.Decide(context.Background(), policy.Input{
					Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"),
					Purpose: consent.PurposeTreat, Consents: []consent.Consent{c}, Time: now(),
				})
				if err != nil || d.Allow != allowed {
					t.Errorf("goroutine %d, request %d: allow = %v, err = %v; want %v", i, j, d.Allow, err, allowed)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDecision_BreakGlass(t *testing.T) {
	for _, tt := range []struct {
		note string
		d    policy.Decision
		want bool
	}{
		{note: "allow with notify-patient", d: policy.Decision{Allow: true, Obligations: []string{"notify-patient", "flag-audit"}}, want: true},
		{note: "deny flagged for audit", d: policy.Decision{Obligations: []string{"flag-audit"}}, want: false},
		{note: "consented allow", d: policy.Decision{Allow: true, Obligations: []string{}}, want: false},
	} {
		if got := tt.d.BreakGlass(); got != tt.want {
			t.Errorf("%s: BreakGlass() = %v, want %v", tt.note, got, tt.want)
		}
	}
}

// TestDecide_ErrAmbiguousConsentList: as for a read, two different consents
// under the lowest applying id make a list fail, but two under a higher id
// do not matter.
func TestDecide_ErrAmbiguousConsentList(t *testing.T) {
	e := MustEngine(t, policy.Options{})
	list := func(cs ...consent.Consent) (policy.Decision, error) {
		return e.Decide(context.Background(), policy.Input{
			Subject: providerB(), Action: policy.ActionList, Resource: record("r-1", "lab"), Consents: cs, Time: now(),
		})
	}
	_, err := list(grant(nil), grant(func(c *consent.Consent) { c.Version = 2; c.Purposes = []string{consent.PurposeResearch} }))
	if got := consent.ErrorCode(err); got != consent.EINTERNAL {
		t.Fatalf("error code = %q (%v), want %q", got, err, consent.EINTERNAL)
	}
	d, err := list(grant(nil),
		grant(func(c *consent.Consent) { c.ID = "c-2" }),
		grant(func(c *consent.Consent) { c.ID = "c-2"; c.Version = 2 }))
	if err != nil || !d.Allow || d.ConsentID != "c-1" {
		t.Fatalf("decision %+v, err %v; want an allow citing c-1", d, err)
	}
}

// TestDecide_TimesOutOfRange: the policy sees times as Unix nanoseconds; a
// time int64 nanoseconds cannot hold is malformed, so a consent bounded by
// one does not apply, and no consent applies at such a time.
func TestDecide_TimesOutOfRange(t *testing.T) {
	e := MustEngine(t, policy.Options{})
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		note  string
		at    time.Time
		edit  func(*consent.Consent)
		allow bool
	}{
		{note: "until 2200 applies", at: now(), edit: func(c *consent.Consent) { c.ValidUntil = at(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)) }, allow: true},
		{note: "until 2300", at: now(), edit: func(c *consent.Consent) { c.ValidUntil = at(far) }},
		{note: "from 1500", at: now(), edit: func(c *consent.Consent) { c.ValidFrom = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{note: "read in 2300", at: far, edit: func(*consent.Consent) {}},
	} {
		t.Run(tt.note, func(t *testing.T) {
			d := MustDecide(t, e, policy.Input{
				Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeTreat,
				Consents: []consent.Consent{grant(tt.edit)}, Time: tt.at,
			})
			if d.Allow != tt.allow {
				t.Errorf("allow = %v (%v), want %v", d.Allow, d.Reasons, tt.allow)
			}
		})
	}
}

// TestDecide_ReusedTermsFollowChanges: the engine reuses the input terms of
// subjects and consents it has seen, but a change to any field the policy
// reads, even in a slice the caller changed in place, is decided afresh.
func TestDecide_ReusedTermsFollowChanges(t *testing.T) {
	e := MustEngine(t, policy.Options{})
	c := grant(nil)
	in := policy.Input{
		Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"), Purpose: consent.PurposeTreat,
		Consents: []consent.Consent{c}, Time: now(),
	}
	decide := func(note string, want bool) {
		t.Helper()
		if d := MustDecide(t, e, in); d.Allow != want {
			t.Errorf("%s: allow = %v (%v), want %v", note, d.Allow, d.Reasons, want)
		}
	}
	decide("first", true)
	decide("again", true)
	in.Consents[0].Categories[0] = "imaging" // in place: the engine must not have kept the slice
	decide("category changed in place", false)
	in.Consents[0].Categories[0] = "lab"
	decide("category changed back", true)
	in.Consents[0].ValidUntil = at(now())
	decide("expired", false)
	in.Consents[0].ValidUntil = nil
	in.Consents[0].Grantee.SubjectRef = "s-dr-z"
	decide("other subject", false)
	in.Consents[0].Grantee.SubjectRef = ""
	in.Consents[0].Status = consent.StatusRevoked
	decide("revoked", false)
	in.Consents[0].Status = consent.StatusActive
	decide("active again", true)
	in.Subject.OrgType = consent.OrgInsurer
	decide("subject not a care provider", false)
}
