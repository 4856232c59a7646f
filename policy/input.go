package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/medshare/medshare/consent"
)

// inputKeys holds the object keys of the policy input as terms, built once
// per Engine: Decide builds the input as an AST value directly, with no JSON
// round trip, and terms are immutable, so evaluations share them.
type inputKeys struct {
	subject, id, role, org, orgType, ref, patientRef   *ast.Term
	action, resource, typ, patient, category, purpose  *ast.Term
	consents, emergency, declared, reason, time        *ast.Term
	grantee, subjectRef, categories, records, purposes *ast.Term
	validFrom, validUntil, status, version             *ast.Term
}

func newInputKeys() *inputKeys {
	t := ast.StringTerm
	return &inputKeys{
		subject: t("subject"), id: t("id"), role: t("role"), org: t("org"), orgType: t("orgType"),
		ref: t("ref"), patientRef: t("patientRef"), action: t("action"), resource: t("resource"),
		typ: t("type"), patient: t("patient"), category: t("category"), purpose: t("purpose"),
		consents: t("consents"), emergency: t("emergency"), declared: t("declared"), reason: t("reason"),
		time: t("time"), grantee: t("grantee"), subjectRef: t("subjectRef"), categories: t("categories"),
		records: t("records"), purposes: t("purposes"), validFrom: t("validFrom"),
		validUntil: t("validUntil"), status: t("status"), version: t("version"),
	}
}

// input converts in to the policy input document.
func (k *inputKeys) input(in *Input) ast.Value {
	s, r := &in.Subject, &in.Resource
	b := termBuilder{}
	if len(in.Consents) > 1 {
		// A patient's consents repeat the same few strings (patient,
		// org, status, categories, purposes): share one term for each.
		b.shared = make(map[string]*ast.Term, 16)
	}
	consents := make([]*ast.Term, len(in.Consents))
	for i := range in.Consents {
		consents[i] = ast.NewTerm(k.consent(&b, &in.Consents[i]))
	}
	return ast.NewObject(
		[2]*ast.Term{k.subject, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{k.id, str(s.ID)},
			[2]*ast.Term{k.role, str(s.Role)},
			[2]*ast.Term{k.org, str(s.Org)},
			[2]*ast.Term{k.orgType, str(s.OrgType)},
			[2]*ast.Term{k.ref, str(s.Ref)},
			[2]*ast.Term{k.patientRef, str(s.PatientRef)},
		))},
		[2]*ast.Term{k.action, str(in.Action)},
		[2]*ast.Term{k.resource, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{k.typ, str(r.Type)},
			[2]*ast.Term{k.id, str(r.ID)},
			[2]*ast.Term{k.patient, str(r.Patient)},
			[2]*ast.Term{k.category, str(r.Category)},
			[2]*ast.Term{k.org, str(r.Org)},
		))},
		[2]*ast.Term{k.purpose, str(in.Purpose)},
		[2]*ast.Term{k.consents, ast.ArrayTerm(consents...)},
		[2]*ast.Term{k.emergency, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{k.declared, ast.InternedTerm(in.Emergency.Declared)},
			[2]*ast.Term{k.reason, str(in.Emergency.Reason)},
		))},
		[2]*ast.Term{k.time, ast.StringTerm(rfc3339(in.Time))},
	)
}

// consent converts the part of c the policy reads.
func (k *inputKeys) consent(b *termBuilder, c *consent.Consent) ast.Value {
	until := ast.InternedNullTerm
	if c.ValidUntil != nil {
		until = ast.StringTerm(rfc3339(*c.ValidUntil))
	}
	return ast.NewObject(
		[2]*ast.Term{k.id, str(c.ID)},
		[2]*ast.Term{k.patientRef, b.str(c.PatientRef)},
		[2]*ast.Term{k.grantee, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{k.org, b.str(c.Grantee.Org)},
			[2]*ast.Term{k.subjectRef, b.str(c.Grantee.SubjectRef)},
		))},
		[2]*ast.Term{k.categories, b.strs(c.Categories)},
		[2]*ast.Term{k.records, b.strs(c.Records)},
		[2]*ast.Term{k.purposes, b.strs(c.Purposes)},
		[2]*ast.Term{k.validFrom, ast.StringTerm(rfc3339(c.ValidFrom))},
		[2]*ast.Term{k.validUntil, until},
		[2]*ast.Term{k.status, b.str(c.Status)},
		[2]*ast.Term{k.version, ast.InternedTerm(c.Version)},
	)
}

// termBuilder makes string terms, sharing one term per distinct string when
// shared is set.
type termBuilder struct {
	shared map[string]*ast.Term
}

func (b *termBuilder) str(s string) *ast.Term {
	if b.shared == nil {
		return str(s)
	}
	t, ok := b.shared[s]
	if !ok {
		t = str(s)
		b.shared[s] = t
	}
	return t
}

func (b *termBuilder) strs(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = b.str(s)
	}
	return ast.ArrayTerm(ts...)
}

// str returns OPA's shared term for common strings (the empty one
// included), a new term otherwise.
func str(s string) *ast.Term { return ast.InternedTerm(s) }

// rfc3339 renders t in UTC, as the policy's time comparisons expect RFC 3339.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
