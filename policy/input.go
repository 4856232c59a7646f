package policy

import (
	"math"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/medshare/medshare/consent"
)

// inputKeys holds what every policy input shares, built once per Engine:
// the object keys as terms, the terms of the vocabulary requests are made
// of, and the emergency object of a request without one. Decide builds the
// input as an AST value directly, with no JSON round trip, and terms are
// immutable, so evaluations share them. Nothing here changes after
// newInputKeys.
type inputKeys struct {
	subject, id, role, org, orgType, ref, patientRef   *ast.Term
	action, resource, typ, patient, category, purpose  *ast.Term
	consents, emergency, declared, reason, time        *ast.Term
	grantee, subjectRef, categories, records, purposes *ast.Term
	validFrom, validUntil, status, version             *ast.Term

	// vocab maps the strings most requests repeat (roles, actions,
	// purposes, statuses, organization and resource types, common and
	// restricted categories) to one term each.
	vocab map[string]*ast.Term
	// noEmergency is {"declared": false, "reason": ""}.
	noEmergency *ast.Term
	// decision holds the keys of the decision the policy returns.
	decision decisionKeys
}

// vocabulary lists the strings of inputKeys.vocab besides the restricted
// categories.
func vocabulary() []string {
	return []string{
		RolePatient, RoleProvider, RoleInsurer, RoleAdmin, RoleAuditor,
		ActionRead, ActionWrite, ActionList, ActionGrant, ActionRevoke, ActionReadConsent,
		ActionVerifyClaim, ActionReadAudit, ActionManageOrgs, ActionListOrgs,
		consent.PurposeTreat, consent.PurposeEmergency, consent.PurposePayment,
		consent.PurposeOperations, consent.PurposeResearch, consent.PurposePatientRqst,
		consent.StatusActive, consent.StatusInactive, consent.StatusRevoked,
		consent.OrgHospital, consent.OrgClinic, consent.OrgLab, consent.OrgInsurer, consent.OrgAuditor,
		"record", "consent", "access-log", "org", "claim",
		consent.WildcardCategory, "allergies", "conditions", "imaging", "immunizations",
		"medications", "notes", "procedures", "observations", "vitals", "encounters",
	}
}

func newInputKeys(restricted []string) *inputKeys {
	t := ast.StringTerm
	k := &inputKeys{
		subject: t("subject"), id: t("id"), role: t("role"), org: t("org"), orgType: t("orgType"),
		ref: t("ref"), patientRef: t("patientRef"), action: t("action"), resource: t("resource"),
		typ: t("type"), patient: t("patient"), category: t("category"), purpose: t("purpose"),
		consents: t("consents"), emergency: t("emergency"), declared: t("declared"), reason: t("reason"),
		time: t("time"), grantee: t("grantee"), subjectRef: t("subjectRef"), categories: t("categories"),
		records: t("records"), purposes: t("purposes"), validFrom: t("validFrom"),
		validUntil: t("validUntil"), status: t("status"), version: t("version"),
	}
	words := vocabulary()
	k.vocab = make(map[string]*ast.Term, len(words)+len(restricted))
	for _, w := range append(words, restricted...) {
		k.vocab[w] = t(w)
	}
	k.decision = newDecisionKeys()
	k.noEmergency = ast.NewTerm(ast.NewObject(
		[2]*ast.Term{k.declared, ast.InternedTerm(false)},
		[2]*ast.Term{k.reason, ast.InternedEmptyString},
	))
	return k
}

// input converts in to the policy input document, taking the terms of its
// subject and consents from cache.
func (k *inputKeys) input(in *Input, cache *termCache) ast.Value {
	r := &in.Resource
	b := termBuilder{k: k, slab: make([]ast.Term, 0, 12)}
	emergency := k.noEmergency
	if in.Emergency != (Emergency{}) {
		emergency = b.term(ast.NewObject(
			[2]*ast.Term{k.declared, ast.InternedTerm(in.Emergency.Declared)},
			[2]*ast.Term{k.reason, b.str(in.Emergency.Reason)},
		))
	}
	resource := b.term(ast.NewObject(
		[2]*ast.Term{k.typ, b.str(r.Type)},
		[2]*ast.Term{k.id, b.str(r.ID)},
		[2]*ast.Term{k.patient, b.str(r.Patient)},
		[2]*ast.Term{k.category, b.str(r.Category)},
		[2]*ast.Term{k.org, b.str(r.Org)},
	))
	ts := make([]*ast.Term, len(in.Consents))
	subject := cache.terms(k, in, ts)
	consents := ast.InternedEmptyArray
	if len(ts) > 0 {
		consents = b.term(ast.NewArray(ts...))
	}
	return ast.NewObject(
		[2]*ast.Term{k.subject, subject},
		[2]*ast.Term{k.action, b.str(in.Action)},
		[2]*ast.Term{k.resource, resource},
		[2]*ast.Term{k.purpose, b.str(in.Purpose)},
		[2]*ast.Term{k.consents, consents},
		[2]*ast.Term{k.emergency, emergency},
		[2]*ast.Term{k.time, b.term(nanos(in.Time))},
	)
}

// subjectTerm converts s.
func (k *inputKeys) subjectTerm(b *termBuilder, s *Subject) *ast.Term {
	return b.term(ast.NewObject(
		[2]*ast.Term{k.id, b.str(s.ID)},
		[2]*ast.Term{k.role, b.str(s.Role)},
		[2]*ast.Term{k.org, b.str(s.Org)},
		[2]*ast.Term{k.orgType, b.str(s.OrgType)},
		[2]*ast.Term{k.ref, b.str(s.Ref)},
		[2]*ast.Term{k.patientRef, b.str(s.PatientRef)},
	))
}

// consent converts the part of c the policy reads.
func (k *inputKeys) consent(b *termBuilder, c *consent.Consent) ast.Value {
	until := ast.InternedNullTerm
	if c.ValidUntil != nil {
		until = b.term(nanos(*c.ValidUntil))
	}
	return ast.NewObject(
		[2]*ast.Term{k.id, b.str(c.ID)},
		[2]*ast.Term{k.patientRef, b.str(c.PatientRef)},
		[2]*ast.Term{k.grantee, b.term(ast.NewObject(
			[2]*ast.Term{k.org, b.str(c.Grantee.Org)},
			[2]*ast.Term{k.subjectRef, b.str(c.Grantee.SubjectRef)},
		))},
		[2]*ast.Term{k.categories, b.strs(c.Categories)},
		[2]*ast.Term{k.records, b.strs(c.Records)},
		[2]*ast.Term{k.purposes, b.strs(c.Purposes)},
		[2]*ast.Term{k.validFrom, b.term(nanos(c.ValidFrom))},
		[2]*ast.Term{k.validUntil, until},
		[2]*ast.Term{k.status, b.str(c.Status)},
		[2]*ast.Term{k.version, ast.InternedTerm(c.Version)},
	)
}

// termBuilder makes the terms of an input, or of a part of one. It takes
// them from slab while there is room, and makes one term per distinct
// string: the vocabulary's, or its own.
type termBuilder struct {
	k    *inputKeys
	slab []ast.Term // never grown: a full slab falls back to the heap
	// The strings made so far, while there are few.
	seen  [12]*ast.Term
	nseen int
}

// term returns a new term for v.
func (b *termBuilder) term(v ast.Value) *ast.Term {
	if len(b.slab) == cap(b.slab) {
		return ast.NewTerm(v)
	}
	b.slab = b.slab[:len(b.slab)+1]
	t := &b.slab[len(b.slab)-1]
	t.Value = v
	return t
}

// str returns the term for s.
func (b *termBuilder) str(s string) *ast.Term {
	if s == "" {
		return ast.InternedEmptyString
	}
	if t, ok := b.k.vocab[s]; ok {
		return t
	}
	for _, t := range b.seen[:b.nseen] {
		if string(t.Value.(ast.String)) == s {
			return t
		}
	}
	t := b.term(ast.String(s))
	if b.nseen < len(b.seen) {
		b.seen[b.nseen] = t
		b.nseen++
	}
	return t
}

// strs returns an array term of the strings ss.
func (b *termBuilder) strs(ss []string) *ast.Term {
	if len(ss) == 0 {
		return ast.InternedEmptyArray
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = b.str(s)
	}
	return b.term(ast.NewArray(ts...))
}

// nanos renders t as Unix nanoseconds, the policy's time representation,
// so the policy compares numbers instead of parsing text. A time that
// int64 nanoseconds cannot hold (before 1678 or after 2262) is rendered as
// its RFC 3339 text instead, which the policy treats as malformed: a consent
// with such a bound does not apply, as when the policy parsed the text.
func nanos(t time.Time) ast.Value {
	if t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
		return ast.String(t.UTC().Format(time.RFC3339Nano))
	}
	return ast.Number(strconv.FormatInt(t.UnixNano(), 10))
}
