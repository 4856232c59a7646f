package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/localledger"
)

// ledgerObject is one thing the ledger holds: a transaction's arguments or
// result, or one entry of a batch, as generic JSON.
type ledgerObject struct {
	op   string
	body any
}

// ledgerObjects reads every block of the node's embedded ledger, as a
// channel member reads Fabric's: all transactions, arguments and results.
func ledgerObjects(tb testing.TB, m *Main) []ledgerObject {
	tb.Helper()
	l, ok := m.Ledger.(*localledger.Ledger)
	if !ok {
		tb.Fatalf("ledger is %T, want the embedded one", m.Ledger)
	}
	var out []ledgerObject
	for h := uint64(1); h <= l.Height(); h++ {
		b, err := l.Block(context.Background(), h)
		if err != nil {
			tb.Fatal(err)
		}
		for _, tx := range b.Txs {
			var args any
			if err := json.Unmarshal(tx.Args, &args); err != nil {
				tb.Fatalf("tx %s args: %v", tx.ID, err)
			}
			if tx.Op == consent.OpLogAccessBatch {
				for _, e := range args.(map[string]any)["entries"].([]any) {
					out = append(out, ledgerObject{op: consent.OpLogAccess, body: e})
				}
				continue
			}
			out = append(out, ledgerObject{op: tx.Op, body: args})
		}
	}
	if len(out) < 10 {
		tb.Fatalf("only %d ledger objects: the adversary saw nothing", len(out))
	}
	return out
}

// linkable matches the strings that can tie objects to one person: random
// record, consent, access and notice ids, and 32-byte references.
var linkable = regexp.MustCompile(`^([rcan]-[a-z0-9]{26}|[A-Za-z0-9_-]{43})$`)

// identifiers returns the linkable strings anywhere in v.
func identifiers(v any, into map[string]bool) {
	switch x := v.(type) {
	case string:
		if linkable.MatchString(x) {
			into[x] = true
		}
	case []any:
		for _, e := range x {
			identifiers(e, into)
		}
	case map[string]any:
		for _, e := range x {
			identifiers(e, into)
		}
	}
}

// TestLedgerAdversaryLearnsOnlyWhatWasGranted plays an insurer that holds
// a full copy of the ledger, its own consents and the receipts medshare
// gave it, and tries to link the patient's other data: starting from every
// identifier it holds, it follows every ledger object sharing one, to a
// fixpoint. The patient granted it one lab record for payment; she also
// has a mental-health record granted to hospital-b (which read it) and an
// imaging record read in an emergency by clinic-c. Everything the
// insurer can link must be about the lab record and its own relationship.
func TestLedgerAdversaryLearnsOnlyWhatWasGranted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m := MustStart(t, testConfig(dir))
	j := setupOrgs(t, m)
	must := func(r *response, err error) *response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	upload := func(category, text string) string {
		r := must(j.expect(ctx, 201, "POST", "/v1/records", drAsh, map[string]any{
			"patient": "p-7", "category": category, "contentType": "application/fhir+json",
			"content": map[string]any{"resourceType": "Observation", "status": "final",
				"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "4548-4"}}},
				"note": []any{map[string]any{"text": text}}},
		}))
		var out struct{ ID string }
		if err := r.JSON(&out); err != nil {
			t.Fatal(err)
		}
		return out.ID
	}
	lab, mh, img := upload("lab", "routine"), upload("mental-health", "therapy"), upload("imaging", "x-ray")
	must(j.expect(ctx, 201, "POST", "/v1/consents", patient7, map[string]any{
		"grantee": map[string]string{"org": "hospital-b"}, "categories": []string{"mental-health"}, "purposes": []string{"TREAT"}}))
	must(j.expect(ctx, 200, "GET", "/v1/records/"+mh, drBo, nil, treat...))
	const glass = "unresponsive after a fall, checking for fractures"
	must(j.expect(ctx, 200, "GET", "/v1/records/"+img, drCy, nil,
		"X-Purpose-Of-Use", "ETREAT", "X-Break-Glass-Code", "unconscious", "X-Break-Glass-Reason", glass))
	must(j.expect(ctx, 201, "POST", "/v1/consents", patient7, map[string]any{
		"grantee": map[string]string{"org": "insurer-x"}, "records": []string{lab}, "purposes": []string{"HPAYMT"}}))
	claim := must(j.expect(ctx, 200, "POST", "/v1/claims/verify", insurerX, map[string]any{
		"claimId": "claim-1", "patient": "p-7",
		"items": []any{map[string]any{"recordId": lab, "path": "/code/coding/0/code", "value": "4548-4"}}}))
	mine := must(j.expect(ctx, 200, "GET", "/v1/consents", insurerX, nil))
	waitNoPending(t, j)

	// What the insurer holds: the claim answer with its receipt, and its
	// consents as the API shows them.
	known := map[string]bool{}
	var answer map[string]any
	if err := claim.JSON(&answer); err != nil {
		t.Fatal(err)
	}
	identifiers(answer, known)
	receipt := strings.Split(answer["receipt"].(string), ".")
	payload, err := base64.RawURLEncoding.DecodeString(receipt[1])
	if err != nil {
		t.Fatal(err)
	}
	var rp any
	if err := json.Unmarshal(payload, &rp); err != nil {
		t.Fatal(err)
	}
	identifiers(rp, known)
	var cs any
	if err := mine.JSON(&cs); err != nil {
		t.Fatal(err)
	}
	identifiers(cs, known)
	if len(known) < 3 {
		t.Fatalf("the insurer holds only %v: the test saw no receipt", known)
	}

	// Link to a fixpoint over the whole ledger.
	objs := ledgerObjects(t, m)
	linked := make([]bool, len(objs))
	for changed := true; changed; {
		changed = false
		for i, o := range objs {
			if linked[i] {
				continue
			}
			ids := map[string]bool{}
			identifiers(o.body, ids)
			hit := false
			for id := range ids {
				if known[id] {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
			linked[i], changed = true, true
			for id := range ids {
				known[id] = true
			}
		}
	}
	var learned []string
	for i, o := range objs {
		if !linked[i] {
			continue
		}
		raw, _ := json.Marshal(o.body)
		learned = append(learned, o.op+" "+string(raw))
		for _, secret := range []string{mh, img, "hospital-b", "clinic-c", "mental-health", "imaging", "ETREAT", "unconscious"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("the insurer links %s to the patient through %s: %s", secret, o.op, raw)
			}
		}
	}
	if len(learned) == 0 {
		t.Fatal("the insurer linked nothing, not even its own consent: the walk is broken")
	}
	t.Logf("the insurer links %d of %d ledger objects to the patient:\n%s", len(learned), len(objs), strings.Join(learned, "\n"))

	// The ledger never holds the patient's node-internal reference, and
	// neither the ledger nor the node's journal holds the clinician's free
	// text; the ledger holds nothing readable of any access entry.
	global := m.Service.Refs.PatientRef("p-7")
	for _, f := range []struct {
		name    string
		secrets []string
	}{{"ledger/ledger.db", []string{global, "p-7", glass, "fractures"}}, {"ledger/access.journal", []string{glass, "fractures"}}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range f.secrets {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %q", f.name, secret)
			}
		}
	}
	entries := 0
	for _, o := range objs {
		if o.op != consent.OpLogAccess {
			continue
		}
		entries++
		e := o.body.(map[string]any)
		if s, _ := e["sealed"].(string); s == "" {
			t.Fatalf("an access entry is on the ledger unsealed: %v", e)
		}
		for k, v := range e {
			switch k {
			case "id", "time", "patientRef", "sealed", "anchoredAt":
				continue
			}
			if v != "" && v != false && v != float64(0) && !(isEmptyList(v)) {
				t.Fatalf("an access entry shows %s=%v in clear on the ledger: %v", k, v, e)
			}
		}
	}
	if entries < 4 {
		t.Fatalf("only %d access entries on the ledger", entries)
	}
}

func isEmptyList(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) == 0
}

// TestUniformDenialsOverHTTP: to a requester who is neither the patient nor
// an auditor, "no such record", "restricted" and "no consent" look the
// same — status, headers that matter, and body but for the request id and
// the id asked for — and so do someone else's consent and no consent.
func TestUniformDenialsOverHTTP(t *testing.T) {
	ctx := context.Background()
	m := MustStart(t, testConfig(t.TempDir()))
	j := setupOrgs(t, m)
	r, err := j.expect(ctx, 201, "POST", "/v1/records", drAsh, map[string]any{
		"patient": "p-7", "category": "mental-health", "contentType": "text/plain", "content": "session notes"})
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ ID string }
	if err := r.JSON(&rec); err != nil {
		t.Fatal(err)
	}
	r, err = j.expect(ctx, 201, "POST", "/v1/consents", patient7, map[string]any{
		"grantee": map[string]string{"org": "hospital-b"}, "categories": []string{"lab"}, "purposes": []string{"TREAT"}})
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ ID string }
	if err := r.JSON(&c); err != nil {
		t.Fatal(err)
	}
	// normalize drops what may differ: the request id and the id asked for.
	normalize := func(r *response, id string) string {
		var p map[string]any
		if err := r.JSON(&p); err != nil {
			t.Fatal(err)
		}
		delete(p, "requestId")
		b, _ := json.Marshal(p)
		return strings.ReplaceAll(string(b), id, "ID")
	}
	const unknownRecord, unknownConsent = "r-aaaaaaaaaaaaaaaaaaaaaaaaaa", "c-aaaaaaaaaaaaaaaaaaaaaaaaaa"
	for _, tt := range []struct {
		note    string
		actor   [3]string
		method  string
		real    string
		unknown string
		headers []string
	}{
		{"another hospital reads a restricted record", drBo, "GET", "/v1/records/" + rec.ID, "/v1/records/" + unknownRecord, treat},
		{"a clinic breaks the glass on a restricted record", drCy, "GET", "/v1/records/" + rec.ID, "/v1/records/" + unknownRecord,
			[]string{"X-Purpose-Of-Use", "ETREAT", "X-Break-Glass-Reason", "unconscious patient in the ER"}},
		{"an insurer reads a record", insurerX, "GET", "/v1/records/" + rec.ID, "/v1/records/" + unknownRecord, payment},
		{"another patient reads a record", patient8, "GET", "/v1/records/" + rec.ID, "/v1/records/" + unknownRecord, []string{"X-Purpose-Of-Use", "PATRQT"}},
		{"another patient revokes a consent", patient8, "DELETE", "/v1/consents/" + c.ID, "/v1/consents/" + unknownConsent, nil},
		{"a provider reads someone's consent", drCy, "GET", "/v1/consents/" + c.ID, "/v1/consents/" + unknownConsent, nil},
	} {
		realID, unknownID := tt.real[strings.LastIndex(tt.real, "/")+1:], tt.unknown[strings.LastIndex(tt.unknown, "/")+1:]
		a, err := j.expect(ctx, 404, tt.method, tt.real, tt.actor, nil, tt.headers...)
		if err != nil {
			t.Errorf("%s: %v", tt.note, err)
			continue
		}
		b, err := j.expect(ctx, 404, tt.method, tt.unknown, tt.actor, nil, tt.headers...)
		if err != nil {
			t.Errorf("%s (unknown id): %v", tt.note, err)
			continue
		}
		if x, y := normalize(a, realID), normalize(b, unknownID); x != y {
			t.Errorf("%s: the answers differ:\n real:    %s\n unknown: %s", tt.note, x, y)
		}
		if a.Header.Get("X-Access-Id") != "" || strings.Contains(string(a.Body), "accessId") {
			t.Errorf("%s: the answer names an access entry, which exists only for real records: %s", tt.note, a.Body)
		}
	}
	// The patient and an auditor are told the truth.
	if _, err := j.expect(ctx, 200, "GET", "/v1/records/"+rec.ID, patient7, nil, "X-Purpose-Of-Use", "PATRQT"); err != nil {
		t.Fatal(err)
	}
	if r, err := j.expect(ctx, 403, "GET", "/v1/records/"+rec.ID, auditor1, nil, treat...); err != nil || r.Header.Get("X-Access-Id") == "" {
		t.Fatalf("auditor: %v", err)
	}
}

// TestBreakGlassLimitOverHTTP: `serve --break-glass-per-hour 1` lets a
// clinician make one emergency read an hour; the next is 429 problem+json.
func TestBreakGlassLimitOverHTTP(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir())
	cfg.BreakGlassPerHour = 1
	m := MustStart(t, cfg)
	j := setupOrgs(t, m)
	r, err := j.expect(ctx, 201, "POST", "/v1/records", drAsh, map[string]any{
		"patient": "p-7", "category": "lab", "contentType": "text/plain", "content": "glucose 5.4"})
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ ID string }
	if err := r.JSON(&rec); err != nil {
		t.Fatal(err)
	}
	glass := []string{"X-Purpose-Of-Use", "ETREAT", "X-Break-Glass-Reason", "unconscious patient in the ER"}
	if _, err := j.expect(ctx, 200, "GET", "/v1/records/"+rec.ID, drCy, nil, glass...); err != nil {
		t.Fatal(err)
	}
	r, err = j.expect(ctx, 429, "GET", "/v1/records/"+rec.ID, drCy, nil, glass...)
	if err != nil {
		t.Fatal(err)
	}
	assertProblem(t, r)
	r, err = j.expect(ctx, 200, "GET", "/v1/notices", patient7, nil)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Notices []struct{ Org, Reason, ReasonCode string }
	}
	if err := r.JSON(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Notices) != 1 || page.Notices[0].Reason != "unconscious patient in the ER" || page.Notices[0].ReasonCode != "other" {
		t.Fatalf("notices %+v", page.Notices)
	}
}
