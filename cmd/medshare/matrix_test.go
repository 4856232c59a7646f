package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The authorization matrix drives generated cases through the real HTTP
// API and compares every outcome with oracle, a plain-Go reading of DESIGN
// §6 written independently of the rego policies and the service code.

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

// applies is DESIGN §6's consent match: grantee org (and subject), purpose,
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
func oracleRead(a mActor, owner, author, recID, cat, purpose, reason string, cs []oracleConsent) int {
	if !a.registered {
		return 403
	}
	switch a.role {
	case "patient":
		if a.sub == owner {
			return 200
		}
		return 403
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
	return 403 // insurers never read content; admins and auditors read no records
}

// oracleClaim returns the expected status of POST /v1/claims/verify.
func oracleClaim(a mActor, recID, cat string, cs []oracleConsent) int {
	if !a.registered || a.role != "insurer" {
		return 403
	}
	for _, c := range cs {
		if c.applies(a, recID, cat, "HPAYMT") {
			return 200
		}
	}
	return 403
}

func TestAuthorizationMatrix(t *testing.T) {
	m := MustStart(t, testConfig(t.TempDir()))
	j := setupOrgs(t, m)
	ctx := context.Background()
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
		id       string
		lab, mh  string
		consents []oracleConsent
	}
	var patients []patient
	for si, st := range states {
		for gi, g := range grantees {
			p := patient{id: fmt.Sprintf("p-m%d-%d", si, gi)}
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
						tok, nil, h, oracleRead(act, p.id, "hospital-a", rec.id, rec.cat, pu.purpose, pu.reason, p.consents)})
				}
				claim := map[string]any{"claimId": "cl-1", "patient": p.id, "items": []map[string]any{{"recordId": rec.id, "path": "/a", "value": 1}}}
				cases = append(cases, tcase{"POST", "/v1/claims/verify", fmt.Sprintf("%s verifies a claim on %s %s", a.name, p.id, rec.cat),
					tok, claim, nil, oracleClaim(act, rec.id, rec.cat, p.consents)})
			}
		}
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
				if r.Status != c.want {
					disagreements.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: got %d, oracle %d: %.200s", c.note, r.Status, c.want, r.Body))
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
		if c.want == 200 {
			allowed++
		}
	}
	t.Logf("authorization matrix: %d cases (%d allowed, %d denied by the oracle), %d disagreements", len(cases), allowed, len(cases)-allowed, disagreements.Load())
	if len(cases) < 2000 {
		t.Fatalf("only %d cases", len(cases))
	}
}
