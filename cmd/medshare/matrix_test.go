package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The authorization matrix drives generated cases through the real HTTP
// API and compares every outcome with oracle, a plain-Go reading of the
// policy rules in docs/ARCHITECTURE.md written independently of the rego
// policies and the service code.

// mActor is a caller of the matrix.
type mActor struct {
	name       string
	sub, role  string
	org        string
	registered bool
}

// mConsent is a consent state the matrix sets up for one patient.
type mConsent struct {
	note       string
	categories []string
	records    string // "mh" → scope the mental-health record by id
	purpose    string // "" → the grantee's natural purpose
	subject    bool   // grant to one subject of the org
	expired    bool
	revoked    bool
	none       bool
}

// oracleConsent is what the oracle knows of a granted consent.
type oracleConsent struct {
	org, subject string
	categories   []string
	recordIDs    []string
	purposes     []string
	active       bool
}

var restrictedCats = []string{"mental-health", "substance-use", "sexual-health", "genetic", "hiv"}

// applies is the consent match of docs/ARCHITECTURE.md: grantee org (and subject), purpose,
// validity, and scope by record id, named category, or the wildcard for
// categories that are not restricted.
func (c oracleConsent) applies(a mActor, recID, cat, purpose string) bool {
	if !c.active || c.org != a.org || (c.subject != "" && c.subject != a.sub) || !slices.Contains(c.purposes, purpose) {
		return false
	}
	return slices.Contains(c.recordIDs, recID) || slices.Contains(c.categories, cat) ||
		(slices.Contains(c.categories, "*") && !slices.Contains(restrictedCats, cat))
}

// oracleRead returns the expected status of GET /v1/records/{id}.
//
// An emergency (ETREAT) declaration without a reason of at least 16
// characters is refused as bad input before anything else (400). A denied
// read answers 404, like an unknown record, to everyone but auditors, who
// are told why (403).
func oracleRead(a mActor, owner, author, recID, cat, purpose, reason string, cs []oracleConsent) int {
	if !a.registered {
		return 403
	}
	if purpose == "ETREAT" && len(strings.TrimSpace(reason)) < 16 {
		return 400
	}
	denied := 404
	if a.role == "auditor" {
		denied = 403
	}
	switch a.role {
	case "patient":
		if a.sub == owner {
			return 200
		}
		return denied
	case "provider":
		if a.org == author && purpose == "TREAT" {
			return 200
		}
		for _, c := range cs {
			if c.applies(a, recID, cat, purpose) {
				return 200
			}
		}
		if purpose == "ETREAT" && reason != "" && !slices.Contains(restrictedCats, cat) {
			return 200
		}
	}
	return denied // insurers never read content; admins and auditors read no records
}

// oracleList returns the record ids of a patient that actor may see the
// metadata of: their own, their org's, or covered by a consent granted to
// them for any purpose (insurers: for payment).
func oracleList(a mActor, owner, author string, recs [][2]string, cs []oracleConsent) []string {
	out := []string{}
	for _, r := range recs {
		switch {
		case a.role == "patient" && a.sub == owner,
			a.role == "provider" && a.org == author:
			out = append(out, r[0])
			continue
		case a.role != "provider" && a.role != "insurer":
			continue
		}
		for _, c := range cs {
			// Insurers act only under payment consents (docs/ARCHITECTURE.md).
			if slices.ContainsFunc(c.purposes, func(p string) bool {
				return (a.role != "insurer" || p == "HPAYMT") && c.applies(a, r[0], r[1], p)
			}) {
				out = append(out, r[0])
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// oracleAudit returns the expected status of GET /v1/access-log[?patient=].
func oracleAudit(a mActor, owner, patientParam string) int {
	switch {
	case !a.registered:
		return 403
	case a.role == "auditor":
		return 200
	case a.role == "patient" && (patientParam == "" || patientParam == a.sub):
		return 200
	}
	return 403
}

// oracleConsentRead returns the expected status of GET /v1/consents/{id}:
// the patient and the grantee org see it; anyone else is told it does not
// exist.
func oracleConsentRead(a mActor, owner string, c oracleConsent) int {
	switch {
	case !a.registered:
		return 403
	case a.role == "patient" && a.sub == owner, (a.role == "provider" || a.role == "insurer") && a.org == c.org:
		return 200
	}
	return 404
}

// oracleClaim returns the expected status of POST /v1/claims/verify: 200
// for an insurer holding any active HPAYMT consent from the patient (for its
// org, or naming it), whichever records it covers — a record it does not
// cover is answered "not verified" like a wrong value (docs/CLAIMS.md) —
// and 403 for anyone else.
func oracleClaim(a mActor, cs []oracleConsent) int {
	if !a.registered || a.role != "insurer" {
		return 403
	}
	for _, c := range cs {
		if c.active && c.org == a.org && (c.subject == "" || c.subject == a.sub) && slices.Contains(c.purposes, "HPAYMT") {
			return 200
		}
	}
	return 403
}

// claimNotVerified checks a claim answer whose one item cannot be verified:
// the matrix's records hold {"a":1}, no FHIR resource, so even a record the
// insurer may see answers exactly as one it may not.
func claimNotVerified(r *response) error {
	if r.Status != 200 {
		return nil
	}
	var out struct {
		Verified bool
		Items    []struct {
			OK     bool
			Reason string
		}
	}
	if err := r.JSON(&out); err != nil {
		return err
	}
	if out.Verified || len(out.Items) != 1 || out.Items[0].OK || out.Items[0].Reason != "not verified" {
		return fmt.Errorf("claim answered %s, want one item not verified", r.Body)
	}
	return nil
}

func TestAuthorizationMatrix(t *testing.T) {
	m := MustStart(t, testConfig(t.TempDir()))
	j := setupOrgs(t, m)
	ctx := context.Background()
	if _, err := j.register(ctx, [3]string{"p-uploads", "patient", ""}, "hospital-a"); err != nil {
		t.Fatal(err)
	}
	actors := []mActor{
		{"owner patient", "", "patient", "", true},
		{"other patient", "p-other", "patient", "", true},
		{"authoring provider", "dr-ash", "provider", "hospital-a", true},
		{"other-org provider", "dr-bo", "provider", "hospital-b", true},
		{"other-org colleague", "dr-bo2", "provider", "hospital-b", true},
		{"third-org provider", "dr-cy", "provider", "clinic-c", true},
		{"insurer", "claims-bot", "insurer", "insurer-x", true},
		{"insurer colleague", "claims-bot2", "insurer", "insurer-x", true},
		{"admin", "admin-1", "admin", "", true},
		{"auditor", "aud-1", "auditor", "audit-office", true},
		{"unregistered org provider", "dr-x", "provider", "ghost-clinic", false},
	}
	states := []mConsent{
		{note: "none", none: true},
		{note: "active category", categories: []string{"lab"}},
		{note: "active wildcard", categories: []string{"*"}},
		{note: "restricted category named", categories: []string{"mental-health"}},
		{note: "record-scoped", records: "mh"},
		{note: "subject-scoped", categories: []string{"lab", "mental-health"}, subject: true},
		{note: "expired", categories: []string{"*", "mental-health"}, expired: true},
		{note: "revoked", categories: []string{"lab"}, revoked: true},
		{note: "wrong purpose", categories: []string{"lab", "mental-health"}, purpose: "HRESCH"},
		{note: "wrong category", categories: []string{"imaging"}},
	}
	grantees := []struct{ org, subject, purpose string }{{"hospital-b", "dr-bo", "TREAT"}, {"insurer-x", "claims-bot", "HPAYMT"}}
	type patient struct {
		id         string
		lab, mh    string
		consents   []oracleConsent
		consentIDs []string
	}
	var patients []patient
	for si, st := range states {
		for gi, g := range grantees {
			p := patient{id: fmt.Sprintf("p-m%d-%d", si, gi)}
			// The patient registers with the authoring hospital, which may
			// then store her records (a consent with an empty scope, which
			// opens nothing to read: the oracle does not count it).
			if _, err := j.register(ctx, [3]string{p.id, "patient", ""}, "hospital-a"); err != nil {
				t.Fatal(err)
			}
			for _, rec := range []struct {
				cat string
				dst *string
			}{{"lab", &p.lab}, {"mental-health", &p.mh}} {
				r, err := j.expect(ctx, 201, "POST", "/v1/records", drAsh, map[string]any{"patient": p.id, "category": rec.cat,
					"contentType": "application/json", "content": `{"a":1}`})
				if err != nil {
					t.Fatal(err)
				}
				var out struct{ ID string }
				if err := r.JSON(&out); err != nil {
					t.Fatal(err)
				}
				*rec.dst = out.ID
			}
			if !st.none {
				purpose := g.purpose
				if st.purpose != "" {
					purpose = st.purpose
				}
				body := map[string]any{"grantee": map[string]string{"org": g.org}, "purposes": []string{purpose}}
				oc := oracleConsent{org: g.org, purposes: []string{purpose}, categories: st.categories, active: !st.expired && !st.revoked}
				if st.categories != nil {
					body["categories"] = st.categories
				}
				if st.records == "mh" {
					body["records"] = []string{p.mh}
					oc.recordIDs = []string{p.mh}
				}
				if st.subject {
					body["grantee"] = map[string]string{"org": g.org, "subject": g.subject}
					oc.subject = g.subject
				}
				if st.expired {
					body["validUntil"] = time.Now().Add(time.Hour).UTC()
				}
				owner := [3]string{p.id, "patient", ""}
				r, err := j.expect(ctx, 201, "POST", "/v1/consents", owner, body)
				if err != nil {
					t.Fatal(err)
				}
				var c struct{ ID string }
				if err := r.JSON(&c); err != nil {
					t.Fatal(err)
				}
				if st.revoked {
					if _, err := j.expect(ctx, 200, "DELETE", "/v1/consents/"+c.ID, owner, nil); err != nil {
						t.Fatal(err)
					}
				}
				p.consents = append(p.consents, oc)
				p.consentIDs = append(p.consentIDs, c.ID)
			}
			patients = append(patients, p)
		}
	}
	// Move the node's clock past the expiring consents' validUntil.
	m.Service.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }

	type tcase struct {
		method, path, note string
		actor              [3]string
		body               any
		headers            []string
		want               int
		check              func(r *response) error // more than the status, when set
	}
	var cases []tcase
	purposes := []struct{ purpose, reason string }{{"TREAT", ""}, {"HPAYMT", ""}, {"HRESCH", ""}, {"PATRQT", ""}, {"ETREAT", "patient unconscious"}, {"ETREAT", ""}}
	for _, p := range patients {
		for _, a := range actors {
			sub := a.sub
			if a.name == "owner patient" {
				sub = p.id
			}
			act := a
			act.sub = sub
			tok := [3]string{sub, a.role, a.org}
			for _, rec := range []struct{ id, cat string }{{p.lab, "lab"}, {p.mh, "mental-health"}} {
				for _, pu := range purposes {
					h := []string{"X-Purpose-Of-Use", pu.purpose}
					if pu.reason != "" {
						h = append(h, "X-Break-Glass-Reason", pu.reason)
					}
					cases = append(cases, tcase{"GET", "/v1/records/" + rec.id, fmt.Sprintf("%s reads %s %s for %s%s", a.name, p.id, rec.cat, pu.purpose, map[bool]string{true: " with reason"}[pu.reason != ""]),
						tok, nil, h, oracleRead(act, p.id, "hospital-a", rec.id, rec.cat, pu.purpose, pu.reason, p.consents), nil})
				}
				claim := map[string]any{"claimId": "cl-1", "patient": p.id, "items": []map[string]any{{"recordId": rec.id, "path": "/status", "value": "final"}}}
				cases = append(cases, tcase{"POST", "/v1/claims/verify", fmt.Sprintf("%s verifies a claim on %s %s", a.name, p.id, rec.cat),
					tok, claim, nil, oracleClaim(act, p.consents), claimNotVerified})
			}
			// Record metadata: the listed ids must be exactly the oracle's.
			wantIDs := oracleList(act, p.id, "hospital-a", [][2]string{{p.lab, "lab"}, {p.mh, "mental-health"}}, p.consents)
			listStatus := 200
			if !a.registered {
				listStatus = 403
			}
			cases = append(cases, tcase{"GET", "/v1/records?patient=" + p.id, fmt.Sprintf("%s lists %s's records", a.name, p.id), tok, nil, nil, listStatus,
				func(r *response) error {
					var out struct{ Records []struct{ ID string } }
					if err := r.JSON(&out); err != nil {
						return err
					}
					got := []string{}
					for _, rec := range out.Records {
						got = append(got, rec.ID)
					}
					slices.Sort(got)
					if !slices.Equal(got, wantIDs) {
						return fmt.Errorf("listed %v, oracle %v", got, wantIDs)
					}
					return nil
				}})
			cases = append(cases,
				tcase{"GET", "/v1/access-log?patient=" + p.id, fmt.Sprintf("%s reads %s's access log", a.name, p.id), tok, nil, nil, oracleAudit(act, p.id, p.id), nil},
				tcase{"DELETE", "/v1/consents/c-doesnotexist", fmt.Sprintf("%s revokes an unknown consent", a.name), tok, nil, nil, map[bool]int{true: 404, false: 403}[a.registered], nil})
			for ci, cid := range p.consentIDs {
				cases = append(cases, tcase{"GET", "/v1/consents/" + cid, fmt.Sprintf("%s reads %s's consent %d", a.name, p.id, ci), tok, nil, nil, oracleConsentRead(act, p.id, p.consents[ci]), nil})
				if a.name != "owner patient" {
					// Someone else's consent does not exist for the caller.
					want := 404
					if !a.registered {
						want = 403
					}
					cases = append(cases, tcase{"DELETE", "/v1/consents/" + cid, fmt.Sprintf("%s revokes %s's consent %d", a.name, p.id, ci), tok, nil, nil, want, nil})
				}
			}
		}
	}
	for i, a := range actors {
		sub := a.sub
		if a.name == "owner patient" {
			sub = "p-grantor"
		}
		act, tok := a, [3]string{sub, a.role, a.org}
		act.sub = sub
		reg := func(ok int) int {
			if !a.registered {
				return 403
			}
			return ok
		}
		orgWant, grantWant, uploadWant := reg(403), reg(403), reg(403)
		if a.role == "provider" && a.org == "hospital-a" {
			uploadWant = reg(201) // p-uploads registered with hospital-a only
		}
		if a.role == "admin" {
			orgWant = 201
		}
		if a.role == "patient" {
			grantWant = 201
		}
		cases = append(cases,
			tcase{"GET", "/v1/orgs", a.name + " lists organizations", tok, nil, nil, reg(200), nil},
			tcase{"POST", "/v1/orgs", a.name + " registers an organization", tok, map[string]string{"id": fmt.Sprintf("org-m%d", i), "name": "M", "type": "clinic"}, nil, orgWant, nil},
			tcase{"PATCH", "/v1/orgs/clinic-c", a.name + " changes an organization's status (to its current one)", tok, map[string]string{"status": "active"}, nil, map[bool]int{true: 409, false: reg(403)}[a.role == "admin"], nil},
			// Grants that can never match a read above (HOPERAT, imaging).
			tcase{"POST", "/v1/consents", a.name + " grants a consent", tok, map[string]any{"grantee": map[string]string{"org": "clinic-c"}, "categories": []string{"imaging"}, "purposes": []string{"HOPERAT"}}, nil, grantWant, nil},
			tcase{"GET", "/v1/access-log", a.name + " reads the access log", tok, nil, nil, oracleAudit(act, "", ""), nil},
			// Only providers store records (for their own org); the patient is
			// one no read case uses.
			tcase{"POST", "/v1/records", a.name + " uploads a record", tok, map[string]any{"patient": "p-uploads", "category": "lab", "contentType": "text/plain", "content": "x"}, nil, uploadWant, nil},
			// Patients list their own consents, org members those granted to
			// their org; an admin has neither.
			tcase{"GET", "/v1/consents", a.name + " lists consents", tok, nil, nil, reg(map[bool]int{true: 403, false: 200}[a.role == "admin"]), nil},
		)
	}
	var disagreements atomic.Int64
	var mu sync.Mutex
	var failures []string
	work := make(chan tcase)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				tok, err := j.mint(c.actor[0], c.actor[1], c.actor[2])
				if err != nil {
					t.Error(err)
					continue
				}
				r, err := j.c.do(ctx, c.method, c.path, tok, c.body, c.headers...)
				if err != nil {
					t.Error(err)
					continue
				}
				var bad error
				if r.Status != c.want {
					bad = fmt.Errorf("got %d, oracle %d: %.200s", r.Status, c.want, r.Body)
				} else if c.check != nil {
					bad = c.check(r)
				}
				if bad != nil {
					disagreements.Add(1)
					mu.Lock()
					failures = append(failures, c.note+": "+bad.Error())
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range cases {
		work <- c
	}
	close(work)
	wg.Wait()
	for i, f := range failures {
		if i == 20 {
			t.Errorf("… and %d more", len(failures)-20)
			break
		}
		t.Error(f)
	}
	allowed := 0
	for _, c := range cases {
		if c.want < 300 {
			allowed++
		}
	}
	t.Logf("authorization matrix: %d cases (%d allowed, %d denied by the oracle), %d disagreements", len(cases), allowed, len(cases)-allowed, disagreements.Load())
	if len(cases) < 2000 {
		t.Fatalf("only %d cases", len(cases))
	}
}
