package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/medshare/medshare/integrations/jwt"
)

//go:embed demodata/*.json
var demoData embed.FS

// minter mints a token for sub with role and org.
type minter func(sub, role, org string) (string, error)

// journeys walks the three journeys of docs/ARCHITECTURE.md against a running node,
// with the denials around them, narrating each step to out. Any outcome
// other than the expected one is an error.
type journeys struct {
	c    *client
	mint minter
	out  io.Writer
	step int

	tokens map[string]string
	// ns, when set, is appended to every organization and patient id, so
	// runs against a ledger that outlives them (Fabric) do not collide.
	ns string
	// Ids learned along the way.
	procID, immID, mhID, consentB string
}

func (j *journeys) say(format string, args ...any) {
	j.step++
	fmt.Fprintf(j.out, "%2d. %s\n", j.step, fmt.Sprintf(format, args...))
}

func (j *journeys) detail(format string, args ...any) {
	fmt.Fprintf(j.out, "      %s\n", fmt.Sprintf(format, args...))
}

// n namespaces an organization or patient id.
func (j *journeys) n(id string) string { return id + j.ns }

// token returns (and caches) a token for a named actor.
func (j *journeys) token(sub, role, org string) (string, error) {
	if org != "" {
		org = j.n(org)
	}
	if role == "patient" {
		sub = j.n(sub)
	}
	k := sub + "|" + role + "|" + org
	if t, ok := j.tokens[k]; ok {
		return t, nil
	}
	t, err := j.mint(sub, role, org)
	if err != nil {
		return "", err
	}
	j.tokens[k] = t
	return t, nil
}

// expect performs a call and checks its status.
func (j *journeys) expect(ctx context.Context, want int, method, path string, actor [3]string, body any, headers ...string) (*response, error) {
	tok, err := j.token(actor[0], actor[1], actor[2])
	if err != nil {
		return nil, err
	}
	r, err := j.c.do(ctx, method, path, tok, body, headers...)
	if err != nil {
		return nil, err
	}
	if r.Status != want {
		return r, fmt.Errorf("surprise: %s %s as %s: got %d, want %d: %.300s", method, path, actor[0], r.Status, want, r.Body)
	}
	return r, nil
}

var (
	admin    = [3]string{"admin-1", "admin", ""}
	drAsh    = [3]string{"dr-ash", "provider", "hospital-a"}
	drBo     = [3]string{"dr-bo", "provider", "hospital-b"}
	drCy     = [3]string{"dr-cy", "provider", "clinic-c"}
	patient7 = [3]string{"p-7", "patient", ""}
	patient8 = [3]string{"p-8", "patient", ""}
	insurerX = [3]string{"claims-bot", "insurer", "insurer-x"}
	auditor1 = [3]string{"aud-1", "auditor", "audit-office"}
	treat    = []string{"X-Purpose-Of-Use", "TREAT"}
	payment  = []string{"X-Purpose-Of-Use", "HPAYMT"}
	research = []string{"X-Purpose-Of-Use", "HRESCH"}
	demoOrgs = [][3]string{{"hospital-a", "Hospital A", "hospital"}, {"hospital-b", "Hospital B", "hospital"}, {"clinic-c", "Clinic C", "clinic"}, {"insurer-x", "Insurer X", "insurer"}, {"audit-office", "Audit Office", "auditor"}}
)

// register makes org one of a patient's care providers, so it may store
// their records: a consent naming it with an empty scope. It returns the
// consent's id.
func (j *journeys) register(ctx context.Context, patient [3]string, org string) (string, error) {
	r, err := j.expect(ctx, 201, "POST", "/v1/consents", patient, map[string]any{
		"grantee": map[string]string{"org": j.n(org)}, "categories": []string{}, "purposes": []string{"TREAT"}})
	if err != nil {
		return "", err
	}
	var c struct{ ID string }
	return c.ID, r.JSON(&c)
}

// run walks every journey in order.
func (j *journeys) run(ctx context.Context) error {
	j.tokens = map[string]string{}
	for _, f := range []func(context.Context) error{j.setup, j.grantAndFetch, j.breakGlass, j.revoke, j.claims, j.audit} {
		if err := f(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(j.out, "\nAll %d steps behaved as expected.\n", j.step)
	return nil
}

func (j *journeys) setup(ctx context.Context) error {
	j.say("An administrator registers five organizations on the ledger.")
	for _, o := range demoOrgs {
		r, err := j.expect(ctx, 201, "POST", "/v1/orgs", admin, map[string]string{"id": j.n(o[0]), "name": o[1], "type": o[2]})
		if err != nil {
			return err
		}
		var org struct{ ID, Type, Status string }
		if err := r.JSON(&org); err != nil {
			return err
		}
		j.detail("%s (%s): %s", org.ID, org.Type, org.Status)
	}
	j.say("Patient p-7 registers with hospital-a: a consent naming it that opens nothing to read.")
	r, err := j.register(ctx, patient7, "hospital-a")
	if err != nil {
		return err
	}
	j.detail("registration %s: hospital-a may now store her records", r)
	j.say("Dr Ash at hospital-a stores three of patient p-7's records (FHIR JSON, encrypted, hash anchored).")
	for _, rec := range []struct {
		file, cat string
		id        *string
	}{
		{"procedure.json", "procedures", &j.procID}, {"immunization.json", "immunizations", &j.immID}, {"condition-anxiety.json", "mental-health", &j.mhID},
	} {
		content, err := demoData.ReadFile("demodata/" + rec.file)
		if err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		r, err := j.expect(ctx, 201, "POST", "/v1/records", drAsh, map[string]any{
			"patient": j.n("p-7"), "category": rec.cat, "contentType": "application/fhir+json", "content": json.RawMessage(content)})
		if err != nil {
			return err
		}
		var out struct {
			ID     string
			Anchor struct {
				Hash, Tx string
				Block    uint64
			}
		}
		if err := r.JSON(&out); err != nil {
			return err
		}
		*rec.id = out.ID
		j.detail("%s %-13s anchored in block %d (hash %.12s…)", out.ID, rec.cat, out.Anchor.Block, out.Anchor.Hash)
	}
	return nil
}

func (j *journeys) grantAndFetch(ctx context.Context) error {
	path := "/v1/records/" + j.procID
	j.say("Dr Bo at hospital-b asks for the procedure record for treatment: no consent yet.")
	j.detail("(to anyone but the patient and auditors a denial looks like an unknown record)")
	r, err := j.expect(ctx, 404, "GET", path, drBo, nil, treat...)
	if err != nil {
		return err
	}
	j.detail("404: %s", r.Problem())
	j.say("Patient p-7 grants hospital-b access to her procedures for TREAT until a date.")
	until := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second)
	r, err = j.expect(ctx, 201, "POST", "/v1/consents", patient7, map[string]any{
		"grantee": map[string]string{"org": j.n("hospital-b")}, "categories": []string{"procedures"},
		"purposes": []string{"TREAT"}, "validUntil": until})
	if err != nil {
		return err
	}
	var c struct {
		ID, Status string
		Version    int
		Ledger     struct {
			Tx    string
			Block uint64
		}
	}
	if err := r.JSON(&c); err != nil {
		return err
	}
	j.consentB = c.ID
	j.detail("consent %s %s, version %d, committed in block %d", c.ID, c.Status, c.Version, c.Ledger.Block)
	j.say("Dr Bo asks again for treatment: allowed, logged, then decrypted.")
	r, err = j.expect(ctx, 200, "GET", path, drBo, nil, treat...)
	if err != nil {
		return err
	}
	want, _ := demoData.ReadFile("demodata/procedure.json")
	if !bytes.Equal(r.Body, bytes.TrimSpace(want)) {
		return fmt.Errorf("surprise: fetched content differs from the uploaded record")
	}
	j.detail("200 %s, %d bytes identical to the upload, access entry %s", r.Header.Get("Content-Type"), len(r.Body), r.Header.Get("X-Access-Id"))
	j.say("Dr Bo asks for the same record for research (HRESCH): the consent covers TREAT only.")
	if r, err = j.expect(ctx, 404, "GET", path, drBo, nil, research...); err != nil {
		return err
	}
	j.detail("404: %s", r.Problem())
	j.say("Dr Bo asks for p-7's immunization record: the consent covers procedures only.")
	if r, err = j.expect(ctx, 404, "GET", "/v1/records/"+j.immID, drBo, nil, treat...); err != nil {
		return err
	}
	j.detail("404: %s", r.Problem())
	j.say("Another patient, p-8, tries to read p-7's record.")
	if r, err = j.expect(ctx, 404, "GET", path, patient8, nil, "X-Purpose-Of-Use", "PATRQT"); err != nil {
		return err
	}
	j.detail("404: %s", r.Problem())
	return nil
}

func (j *journeys) breakGlass(ctx context.Context) error {
	j.say("Dr Cy at clinic-c, no consent, declares an emergency without giving a reason.")
	r, err := j.expect(ctx, 400, "GET", "/v1/records/"+j.immID, drCy, nil, "X-Purpose-Of-Use", "ETREAT")
	if err != nil {
		return err
	}
	j.detail("400: %s", r.Problem())
	j.say("Dr Cy breaks the glass with a reason: allowed, with obligations, flagged in the log.")
	if r, err = j.expect(ctx, 200, "GET", "/v1/records/"+j.immID, drCy, nil,
		"X-Purpose-Of-Use", "ETREAT", "X-Break-Glass-Code", "unconscious",
		"X-Break-Glass-Reason", "unconscious patient in ER, checking vaccinations"); err != nil {
		return err
	}
	j.detail("200, obligations: %s", r.Header.Get("X-Obligations"))
	j.say("Break-glass does not open a restricted category (mental-health).")
	if r, err = j.expect(ctx, 404, "GET", "/v1/records/"+j.mhID, drCy, nil,
		"X-Purpose-Of-Use", "ETREAT", "X-Break-Glass-Reason", "unconscious patient in ER"); err != nil {
		return err
	}
	j.detail("404: %s", r.Problem())
	return nil
}

func (j *journeys) revoke(ctx context.Context) error {
	j.say("Patient p-8 tries to revoke p-7's consent: to p-8 it does not exist.")
	r, err := j.expect(ctx, 404, "DELETE", "/v1/consents/"+j.consentB, patient8, nil)
	if err != nil {
		return err
	}
	j.detail("404: %s", r.Problem())
	j.say("Patient p-7 revokes hospital-b's consent.")
	if r, err = j.expect(ctx, 200, "DELETE", "/v1/consents/"+j.consentB, patient7, nil); err != nil {
		return err
	}
	var c struct {
		Status  string
		Version int
		Ledger  struct{ Block uint64 }
	}
	if err := r.JSON(&c); err != nil {
		return err
	}
	if c.Status != "revoked" {
		return fmt.Errorf("surprise: revoked consent has status %q", c.Status)
	}
	j.detail("status %s, version %d, block %d", c.Status, c.Version, c.Ledger.Block)
	j.say("Dr Bo asks again, right after the revoke was acknowledged: denied.")
	if r, err = j.expect(ctx, 404, "GET", "/v1/records/"+j.procID, drBo, nil, treat...); err != nil {
		return err
	}
	j.detail("404: %s", r.Problem())
	j.say("Revoking twice is a conflict.")
	_, err = j.expect(ctx, 409, "DELETE", "/v1/consents/"+j.consentB, patient7, nil)
	return err
}

func (j *journeys) claims(ctx context.Context) error {
	claim := map[string]any{"claimId": "claim-2022-0042", "patient": j.n("p-7"), "items": []map[string]any{
		{"recordId": j.procID, "path": "/code/coding/0/code", "value": "430193006"},
		{"recordId": j.procID, "path": "/performedPeriod/start", "value": "2022-06-22T12:31:08-04:00"},
		{"recordId": j.procID, "path": "/status", "value": "completed"},
	}}
	j.say("Insurer X asks to verify claim facts without a payment consent.")
	r, err := j.expect(ctx, 403, "POST", "/v1/claims/verify", insurerX, claim)
	if err != nil {
		return err
	}
	j.detail("403: %s", r.Problem())
	j.say("Patient p-7 grants insurer-x a payment consent (HPAYMT) for procedures.")
	if _, err = j.expect(ctx, 201, "POST", "/v1/consents", patient7, map[string]any{
		"grantee": map[string]string{"org": j.n("insurer-x")}, "categories": []string{"procedures"}, "purposes": []string{"HPAYMT"}}); err != nil {
		return err
	}
	j.say("Insurer X verifies the claim: yes per fact, a signed receipt, no content.")
	if r, err = j.expect(ctx, 200, "POST", "/v1/claims/verify", insurerX, claim); err != nil {
		return err
	}
	var res struct {
		Verified bool
		Items    []struct {
			OK           bool
			Reason, Path string
		}
		Receipt string
	}
	if err := r.JSON(&res); err != nil {
		return err
	}
	if !res.Verified || len(res.Items) != 3 || bytes.Contains(r.Body, []byte("Medication Reconciliation")) {
		return fmt.Errorf("surprise: claim verification answer %s", r.Body)
	}
	j.detail("verified=%v, %d items ok, receipt %.40s…", res.Verified, len(res.Items), res.Receipt)
	j.say("Insurer X checks the receipt offline against the published JWKS.")
	keys, err := j.c.do(ctx, "GET", "/.well-known/jwks.json", "", nil)
	if err != nil {
		return err
	}
	payload, err := jwt.VerifyReceipt(res.Receipt, keys.Body)
	if err != nil {
		return fmt.Errorf("surprise: receipt does not verify: %w", err)
	}
	j.detail("receipt signature valid; payload %d bytes names claim %q", len(payload), "claim-2022-0042")
	j.say("A wrong claimed value is answered no for that fact only.")
	claim["items"] = []map[string]any{
		{"recordId": j.procID, "path": "/code/coding/0/code", "value": "430193006"},
		{"recordId": j.procID, "path": "/code/coding/0/code", "value": "99999999"},
	}
	if r, err = j.expect(ctx, 200, "POST", "/v1/claims/verify", insurerX, claim); err != nil {
		return err
	}
	if err := r.JSON(&res); err != nil {
		return err
	}
	if res.Verified || !res.Items[0].OK || res.Items[1].OK {
		return fmt.Errorf("surprise: wrong value not caught: %s", r.Body)
	}
	j.detail("verified=%v: item 1 %v, item 2 %v (%s)", res.Verified, res.Items[0].OK, res.Items[1].OK, res.Items[1].Reason)
	wrong := res.Items[1].Reason
	j.say("A record the consent does not cover (immunizations) is answered exactly like a wrong value.")
	claim["items"] = []map[string]any{{"recordId": j.immID, "path": "/status", "value": "completed"}}
	if r, err = j.expect(ctx, 200, "POST", "/v1/claims/verify", insurerX, claim); err != nil {
		return err
	}
	if err := r.JSON(&res); err != nil {
		return err
	}
	if res.Verified || res.Items[0].OK || res.Items[0].Reason != wrong {
		return fmt.Errorf("surprise: uncovered record answered %s, a wrong value %q", r.Body, wrong)
	}
	j.detail("item 1 %v (%s)", res.Items[0].OK, res.Items[0].Reason)
	j.say("Insurer X asks about an element no claim needs (the display text): refused, nothing is looked up.")
	claim["items"] = []map[string]any{{"recordId": j.procID, "path": "/code/coding/0/display", "value": "Medication Reconciliation (procedure)"}}
	if r, err = j.expect(ctx, 400, "POST", "/v1/claims/verify", insurerX, claim); err != nil {
		return err
	}
	j.detail("400: %s", r.Problem())
	j.say("Insurer X keeps guessing the procedure code: each element may be cited 5 times a day, then 429.")
	tok, err := j.token(insurerX[0], insurerX[1], insurerX[2])
	if err != nil {
		return err
	}
	guesses := 0
	for ; guesses < 10; guesses++ {
		claim["items"] = []map[string]any{{"recordId": j.procID, "path": "/code/coding/0/code", "value": fmt.Sprint(10000000 + guesses)}}
		if r, err = j.c.do(ctx, "POST", "/v1/claims/verify", tok, claim); err != nil {
			return err
		}
		if r.Status != 200 {
			break
		}
	}
	if r.Status != 429 || guesses != 2 {
		return fmt.Errorf("surprise: guess %d answered %d, want 429 after 5 attempts in all: %.300s", guesses+1, r.Status, r.Body)
	}
	j.detail("429 after %d more guesses: %s", guesses, r.Problem())
	j.say("Insurer X tries to read the record's content with its payment consent: insurers never read content.")
	if r, err = j.expect(ctx, 404, "GET", "/v1/records/"+j.procID, insurerX, nil, payment...); err != nil {
		return err
	}
	j.detail("404: %s", r.Problem())
	return nil
}

func (j *journeys) audit(ctx context.Context) error {
	j.say("Patient p-7 reads her access log: every attempt, allowed or denied, is on the ledger.")
	r, err := j.expect(ctx, 200, "GET", "/v1/access-log", patient7, nil)
	if err != nil {
		return err
	}
	var page struct {
		Entries []struct {
			Actor, Org, Purpose, Decision, Action string
			BreakGlass                            bool
			Ledger                                struct {
				Status string
				Block  uint64
			}
		}
	}
	if err := r.JSON(&page); err != nil {
		return err
	}
	allowed, deniedN, glass := 0, 0, 0
	for _, e := range page.Entries {
		if e.Decision == "allow" {
			allowed++
		} else {
			deniedN++
		}
		if e.BreakGlass {
			glass++
		}
		// Embedded: committed in a block. Fabric: durable in the outbox
		// (pending) until the worker anchors it moments later.
		if e.Ledger.Status != "anchored" && e.Ledger.Status != "pending" {
			return fmt.Errorf("surprise: access entry with ledger status %q: %+v", e.Ledger.Status, e)
		}
	}
	if allowed < 4 || deniedN < 7 || glass < 2 {
		return fmt.Errorf("surprise: access log has %d allowed, %d denied, %d break-glass entries", allowed, deniedN, glass)
	}
	j.detail("%d entries: %d allowed, %d denied, %d break-glass", len(page.Entries), allowed, deniedN, glass)
	j.say("An auditor reads the whole log; a provider may not.")
	if _, err = j.expect(ctx, 200, "GET", "/v1/access-log", auditor1, nil); err != nil {
		return err
	}
	if r, err = j.expect(ctx, http.StatusForbidden, "GET", "/v1/access-log", drBo, nil); err != nil {
		return err
	}
	j.detail("provider: 403: %s", r.Problem())
	return nil
}
