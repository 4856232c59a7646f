package records_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
	"github.com/medshare/medshare/records"
)

// Claim tests: the claim API answers yes or no per allow-listed element,
// never more, within a quota, one record at a time (issue 8: "the claim
// API must not be an oracle").

const obsCategory = `"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"%s"}]}]`

// labObs is a laboratory Observation with elements a claim may cite (codes,
// date, value) and some it may never cite (names, identifiers, free text).
var labObs = `{"resourceType":"Observation","status":"final",` + fmt.Sprintf(obsCategory, "laboratory") + `,
 "identifier":[{"system":"urn:lab","value":"LAB-12345"}],
 "code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c"}],"text":"HbA1c"},
 "subject":{"reference":"Patient/p-1","display":"Jane Roe"},
 "effectiveDateTime":"2024-03-01T09:30:00Z","valueQuantity":{"value":5.4,"unit":"%"},
 "note":[{"text":"patient mentions a divorce"}]}`

// item is a claim item.
func item(recordID, path, value string) records.ClaimItem {
	return records.ClaimItem{RecordID: recordID, Path: path, Value: json.RawMessage(value)}
}

// claim is a claim about p-1.
func claim(items ...records.ClaimItem) records.ClaimRequest {
	return records.ClaimRequest{ClaimID: "cl-1", Patient: "p-1", Items: items}
}

// put uploads content for patient as hosp-a's dr-a.
func (e *env) put(t *testing.T, patient, category, contentType, content string) *records.Record {
	t.Helper()
	r, err := e.svc.Upload(context.Background(), e.author, records.UploadRequest{
		Patient: patient, Category: category, ContentType: contentType, Content: []byte(content)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// grantPayment has p-1 grant ins-x an HPAYMT consent for categories.
func (e *env) grantPayment(t *testing.T, categories ...string) {
	t.Helper()
	if _, err := e.svc.Grant(context.Background(), e.pat, records.GrantRequest{
		Grantee: records.GranteeView{Org: "ins-x"}, Categories: categories, Purposes: []string{"HPAYMT"}}); err != nil {
		t.Fatal(err)
	}
}

// verify runs a claim that must be answered.
func (e *env) verify(t *testing.T, req records.ClaimRequest) *records.ClaimResult {
	t.Helper()
	res, err := e.svc.VerifyClaim(context.Background(), e.ins, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// oks returns each item's answer.
func oks(res *records.ClaimResult) []bool {
	out := make([]bool, len(res.Items))
	for i, it := range res.Items {
		out[i] = it.OK
	}
	return out
}

// receiptPayload decodes fakeSigner's receipt.
func receiptPayload(t *testing.T, res *records.ClaimResult) (raw []byte, p struct {
	PatientRef string
	Items      []struct{ RecordID, Path, ValueHash string }
	Anchors    []struct{ RecordID, Org, Hash string }
	AccessIDs  []string
}) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(res.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return raw, p
}

// claimEntries returns p-1's verify_claim entries.
func (e *env) claimEntries(t *testing.T) []consent.AccessEntry {
	t.Helper()
	var out []consent.AccessEntry
	for _, en := range e.entries(t) {
		if en.Action == "verify_claim" {
			out = append(out, en)
		}
	}
	return out
}

// newClaimEntries returns p-1's verify_claim entries not in before.
func (e *env) newClaimEntries(t *testing.T, before []consent.AccessEntry) []consent.AccessEntry {
	t.Helper()
	seen := map[string]bool{}
	for _, en := range before {
		seen[en.ID] = true
	}
	var out []consent.AccessEntry
	for _, en := range e.claimEntries(t) {
		if !seen[en.ID] {
			out = append(out, en)
		}
	}
	return out
}

// spyRing is a KeyRing that reports every DEK it unwraps.
type spyRing struct {
	records.KeyRing
	unwrap func(wrapped []byte)
}

func (s spyRing) Unwrap(version int, wrapped, aad []byte) ([]byte, error) {
	s.unwrap(wrapped)
	return s.KeyRing.Unwrap(version, wrapped, aad)
}

// spyStore is a Store that reports every record it loads.
type spyStore struct {
	records.Store
	load func(id string)
}

func (s spyStore) Record(ctx context.Context, id string) (*records.Record, error) {
	s.load(id)
	return s.Store.Record(ctx, id)
}

// spy records, in order, "load <id>" for each record loaded and "open
// <id>" for each record whose DEK is unwrapped.
type spy struct {
	mu     sync.Mutex
	events []string
}

// install puts the spy between e's service and its store and key ring,
// naming the records of p-1 and p-2 by their wrapped DEKs.
func (sp *spy) install(t *testing.T, e *env) {
	t.Helper()
	sp.mu.Lock()
	sp.events = nil
	sp.mu.Unlock()
	byDEK := map[string]string{}
	for _, p := range []string{"p-1", "p-2"} {
		rs, err := e.store.Records(context.Background(), records.RecordFilter{PatientRef: e.refs.PatientRef(p), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			full, err := e.store.Record(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			byDEK[string(full.WrappedDEK)] = r.ID
		}
	}
	keys := e.svc.Keys
	if s, ok := keys.(spyRing); ok {
		keys = s.KeyRing
	}
	e.svc.Store = spyStore{Store: e.store, load: func(id string) { sp.add("load " + id) }}
	e.svc.Keys = spyRing{KeyRing: keys, unwrap: func(wrapped []byte) {
		id, ok := byDEK[string(wrapped)]
		if !ok {
			id = "?"
		}
		sp.add("open " + id)
	}}
}

func (sp *spy) add(ev string) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.events = append(sp.events, ev)
}

func (sp *spy) opened() []string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var out []string
	for _, ev := range sp.events {
		if id, ok := strings.CutPrefix(ev, "open "); ok {
			out = append(out, id)
		}
	}
	return out
}

// TestVerifyClaimAllowList: a claim may cite only allow-listed elements.
// Names, identifiers and free text are refused (400, naming the item)
// before anything is loaded or logged; an element allowed for some type
// but not the record's answers "not verified"; an Observation's value
// only in a laboratory result or vital sign; a record that is not JSON is
// never opened.
func TestVerifyClaimAllowList(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	lab := e.put(t, "p-1", "lab", "application/fhir+json", labObs)
	e.grantPayment(t, "lab")
	t.Run("ErrInvalid_NotCitable", func(t *testing.T) {
		for _, path := range []string{
			"/subject/display", "/subject/reference", "/note/0/text", "/code/text", "/code/coding/0/display",
			"/identifier/0/value", "/code", "/valueQuantity", "/code/coding/0", "", "/a", "/entry/0/resource/note/0/text",
		} {
			before := len(e.entries(t))
			_, err := e.svc.VerifyClaim(ctx, e.ins, claim(item(lab.ID, "/status", `"final"`), item(lab.ID, path, `"Jane Roe"`)))
			if consent.ErrorCode(err) != consent.EINVALID || !strings.Contains(err.Error(), "items[1]") || !strings.Contains(err.Error(), "may not be cited") {
				t.Errorf("citing %q: %v, want EINVALID naming items[1]", path, err)
			}
			if n := len(e.entries(t)); n != before {
				t.Errorf("citing %q logged %d entries", path, n-before)
			}
		}
	})
	t.Run("ErrInvalid_ValueNotScalar", func(t *testing.T) {
		_, err := e.svc.VerifyClaim(ctx, e.ins, claim(item(lab.ID, "/status", `{"a":1}`)))
		if consent.ErrorCode(err) != consent.EINVALID {
			t.Fatalf("object value: %v", err)
		}
	})
	t.Run("OK_CitableElements", func(t *testing.T) {
		res := e.verify(t, claim(
			item(lab.ID, "/status", `"final"`),
			item(lab.ID, "/code/coding/0/system", `"http://loinc.org"`),
			item(lab.ID, "/code/coding/0/code", `"4548-4"`),
			item(lab.ID, "/effectiveDateTime", `"2024-03-01T09:30:00Z"`),
			item(lab.ID, "/valueQuantity/value", `5.40`),
			item(lab.ID, "/valueQuantity/unit", `"%"`),
			item(lab.ID, "/resourceType", `"Observation"`),
		))
		if !res.Verified {
			t.Fatalf("answer %+v", res.Items)
		}
	})
	t.Run("NotVerified_AllowedForAnotherType", func(t *testing.T) {
		odd := e.put(t, "p-1", "lab", "application/fhir+json",
			`{"resourceType":"Observation","status":"final","vaccineCode":{"coding":[{"code":"207"}]},"total":{"value":10}}`)
		res := e.verify(t, claim(item(odd.ID, "/status", `"final"`), item(odd.ID, "/vaccineCode/coding/0/code", `"207"`), item(odd.ID, "/total/value", `10`)))
		if got := oks(res); !slices.Equal(got, []bool{true, false, false}) {
			t.Fatalf("answers %v, want only /status verified", got)
		}
	})
	t.Run("NotVerified_ObservationValueOutsideLabOrVitals", func(t *testing.T) {
		survey := e.put(t, "p-1", "lab", "application/fhir+json", `{"resourceType":"Observation","status":"final",`+
			fmt.Sprintf(obsCategory, "survey")+`,"code":{"coding":[{"system":"http://loinc.org","code":"44261-6"}]},"valueQuantity":{"value":14}}`)
		res := e.verify(t, claim(item(survey.ID, "/code/coding/0/code", `"44261-6"`), item(survey.ID, "/valueQuantity/value", `14`)))
		if got := oks(res); !slices.Equal(got, []bool{true, false}) {
			t.Fatalf("answers %v: a survey score must not be citable", got)
		}
	})
	t.Run("NotVerified_NonJSONNeverOpened", func(t *testing.T) {
		plain := e.put(t, "p-1", "lab", "text/plain", `{"resourceType":"Observation","status":"final"}`)
		var sp spy
		sp.install(t, e)
		res := e.verify(t, claim(item(plain.ID, "/status", `"final"`)))
		if res.Items[0].OK || len(sp.opened()) != 0 {
			t.Fatalf("text/plain record: answer %+v, opened %v", res.Items, sp.opened())
		}
	})
	t.Run("OK_BundleEntries", func(t *testing.T) {
		bundle := e.put(t, "p-1", "lab", "application/fhir+json", `{"resourceType":"Bundle","type":"collection","entry":[
			{"resource":{"resourceType":"Procedure","status":"completed","code":{"coding":[{"code":"430193006"}]}}},
			{"resource":{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Procedure","status":"completed"}}]}}]}`)
		res := e.verify(t, claim(
			item(bundle.ID, "/entry/0/resource/status", `"completed"`),
			item(bundle.ID, "/entry/0/resource/code/coding/0/code", `"430193006"`),
			item(bundle.ID, "/entry/0/resource/valueQuantity/value", `1`),
			item(bundle.ID, "/status", `"completed"`),
		))
		if got := oks(res); !slices.Equal(got, []bool{true, true, false, false}) {
			t.Fatalf("answers %v", got)
		}
	})
}

// TestVerifyClaimQuota: one insurer organization may cite one element of
// one record DefaultClaimAttempts times per window, whether or not the
// record exists; beyond that the claim is refused (ETOOMANY) and the
// exhaustion is logged as a denial first.
func TestVerifyClaimQuota(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	now := time.Now().UTC().Add(time.Minute) // after the ledger stamps the consents below
	e.svc.Now = func() time.Time { return now }
	lab := e.put(t, "p-1", "lab", "application/fhir+json", labObs)
	e.grantPayment(t, "lab")
	unknown := "r-" + strings.Repeat("q", 26)
	for _, id := range []string{lab.ID, unknown} {
		for i := range records.DefaultClaimAttempts {
			e.verify(t, claim(item(id, "/valueQuantity/value", fmt.Sprintf("5.%d", i))))
		}
		before := e.claimEntries(t)
		res, err := e.svc.VerifyClaim(ctx, e.ins, claim(item(id, "/status", `"final"`), item(id, "/valueQuantity/value", `5.4`)))
		if consent.ErrorCode(err) != consent.ETOOMANY || res != nil {
			t.Fatalf("attempt %d on %s: %v, %+v; want ETOOMANY", records.DefaultClaimAttempts+1, id, err, res)
		}
		logged := e.newClaimEntries(t, before)
		if len(logged) != 1 || logged[0].Decision != "deny" || logged[0].RecordID != id ||
			!strings.Contains(strings.Join(logged[0].Reasons, ";"), "claim verification quota exhausted for element /valueQuantity/value") ||
			!slices.Equal(logged[0].ClaimItems, []consent.ClaimItemLog{{Path: "/valueQuantity/value"}}) {
			t.Fatalf("exhaustion logged as %+v", logged)
		}
	}
	// The refused claim spent nothing: /status still has its attempts.
	for range records.DefaultClaimAttempts {
		e.verify(t, claim(item(lab.ID, "/status", `"final"`)))
	}
	// One claim citing an element more often than its quota is refused.
	many := make([]records.ClaimItem, records.DefaultClaimAttempts+1)
	for i := range many {
		many[i] = item(lab.ID, "/effectiveDateTime", fmt.Sprintf(`"2024-03-0%dT09:30:00Z"`, i+1))
	}
	if _, err := e.svc.VerifyClaim(ctx, e.ins, claim(many...)); consent.ErrorCode(err) != consent.ETOOMANY {
		t.Fatalf("one claim guessing %d times: %v", len(many), err)
	}
	// A new window, a new quota.
	now = now.Add(records.DefaultClaimWindow)
	if res := e.verify(t, claim(item(lab.ID, "/valueQuantity/value", `5.4`))); !res.Verified {
		t.Fatalf("next day: %+v", res.Items)
	}
	// The quota is configurable; a Limiter with Limit 0 allows any number.
	e.svc.ClaimQuota = &records.Limiter{}
	for range 3 * records.DefaultClaimAttempts {
		e.verify(t, claim(item(lab.ID, "/valueQuantity/unit", `"%"`)))
	}
}

// TestVerifyClaimLogsElementsNotValues: each verify_claim entry lists the
// elements cited in its record and their answers, never the values.
func TestVerifyClaimLogsElementsNotValues(t *testing.T) {
	e := newEnv(t)
	lab := e.put(t, "p-1", "lab", "application/fhir+json", labObs)
	e.grantPayment(t, "lab")
	res := e.verify(t, claim(item(lab.ID, "/code/coding/0/code", `"4548-4"`), item(lab.ID, "/valueQuantity/value", `7.123456`)))
	if got := oks(res); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("answers %v", got)
	}
	es := e.claimEntries(t)
	want := []consent.ClaimItemLog{{Path: "/code/coding/0/code", OK: true}, {Path: "/valueQuantity/value", OK: false}}
	if len(es) != 1 || es[0].Decision != "allow" || !slices.Equal(es[0].ClaimItems, want) {
		t.Fatalf("access log %+v, want claim items %+v", es, want)
	}
	page, err := e.svc.Ledger.AccessLog(context.Background(), consent.AccessFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(page); bytes.Contains(b, []byte("7.123456")) || bytes.Contains(b, []byte("4548-4")) {
		t.Fatal("the access log holds a claimed value")
	}
}

// TestVerifyClaimAnswersUniformly: a wrong value, a path not in the record,
// an unknown record, another patient's record and records the consent does
// not cover (another category, a restricted one) all get the one answer
// "not verified"; the receipt names only records something was verified
// in; records the policy refused are logged as denied and never opened.
// Without any payment consent the claim is refused with the same answer
// whether the patient exists or not.
func TestVerifyClaimAnswersUniformly(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	lab := e.put(t, "p-1", "lab", "application/fhir+json", labObs)
	img := e.put(t, "p-1", "imaging", "application/fhir+json", labObs)
	mh := e.put(t, "p-1", "mental-health", "application/fhir+json", labObs)
	e.register(t, policy.Subject{ID: "p-2", Role: "patient", Ref: e.refs.SubjectRef("p-2"), PatientRef: e.refs.PatientRef("p-2")}, "hosp-a")
	other := e.put(t, "p-2", "lab", "application/fhir+json", labObs)
	cl := claim(
		item(lab.ID, "/code/coding/0/code", `"4548-4"`),
		item(lab.ID, "/valueQuantity/value", `7.1`),
		item(lab.ID, "/effectivePeriod/start", `"2024-03-01"`),
		item("r-"+strings.Repeat("z", 26), "/status", `"final"`),
		item(other.ID, "/status", `"final"`),
		item(img.ID, "/status", `"final"`),
		item(mh.ID, "/status", `"final"`),
	)

	// No payment consent: refused, the same for an unknown patient.
	_, err := e.svc.VerifyClaim(ctx, e.ins, cl)
	nobody := cl
	nobody.Patient = "p-nobody"
	_, nerr := e.svc.VerifyClaim(ctx, e.ins, nobody)
	if consent.ErrorCode(err) != consent.EFORBIDDEN || consent.ErrorCode(nerr) != consent.EFORBIDDEN || err.Error() != nerr.Error() {
		t.Fatalf("without consent: %v; unknown patient: %v; want the same EFORBIDDEN", err, nerr)
	}
	var ae *records.AccessError
	if errors.As(err, &ae) {
		t.Fatalf("refusal carries an access id: %v", err)
	}
	if es := e.claimEntries(t); len(es) != 3 || es[0].Decision != "deny" || len(es[0].ClaimItems) == 0 {
		t.Fatalf("refusal logged %+v, want a denial for each of p-1's cited records", es)
	}

	// With a payment consent for the lab category.
	e.grantPayment(t, "lab")
	var sp spy
	sp.install(t, e)
	before := e.claimEntries(t)
	res := e.verify(t, cl)
	want := []bool{true, false, false, false, false, false, false}
	if got := oks(res); !slices.Equal(got, want) || res.Verified {
		t.Fatalf("answers %v, want %v", got, want)
	}
	for i, it := range res.Items {
		if !it.OK && it.Reason != res.Items[1].Reason {
			t.Errorf("item %d answered %q, item 1 %q: failures must look alike", i, it.Reason, res.Items[1].Reason)
		}
	}
	if opened := sp.opened(); !slices.Equal(opened, []string{lab.ID}) {
		t.Fatalf("opened %v: a record the policy refused was decrypted", opened)
	}
	logged := map[string]string{}
	for _, en := range e.newClaimEntries(t, before) {
		logged[en.RecordID] = en.Decision
	}
	if len(logged) != 3 || logged[lab.ID] != "allow" || logged[img.ID] != "deny" || logged[mh.ID] != "deny" {
		t.Fatalf("logged %v", logged)
	}
	_, p := receiptPayload(t, res)
	if len(p.Anchors) != 1 || len(p.AccessIDs) != 1 || p.Anchors[0].RecordID != lab.ID {
		t.Fatalf("receipt anchors %+v, access ids %v: want only the record something was verified in", p.Anchors, p.AccessIDs)
	}
	// A record with nothing verified in it is not in the receipt either.
	res = e.verify(t, claim(item(lab.ID, "/status", `"amended"`)))
	if _, p := receiptPayload(t, res); len(p.Anchors) != 0 || len(p.AccessIDs) != 0 {
		t.Fatalf("receipt of a claim with nothing verified names %+v", p)
	}
}

// TestVerifyClaimReceiptBindsValuesAndAuthor: the receipt names the
// patient by the pairwise reference for the insurer, binds each claimed
// value by its hash (SHA-256 of its canonical JSON) and each record's
// author organization, and quotes no content.
func TestVerifyClaimReceiptBindsValuesAndAuthor(t *testing.T) {
	e := newEnv(t)
	lab := e.put(t, "p-1", "lab", "application/fhir+json", labObs)
	e.grantPayment(t, "lab")
	res := e.verify(t, claim(item(lab.ID, "/code/coding/0/code", `"4548-4"`), item(lab.ID, "/valueQuantity/unit", `"\u0025"`), item(lab.ID, "/valueQuantity/value", ` 5.4 `)))
	raw, p := receiptPayload(t, res)
	internal := e.refs.PatientRef("p-1")
	if p.PatientRef != e.refs.Pair(internal, "ins-x") || bytes.Contains(raw, []byte(internal)) {
		t.Fatalf("receipt patientRef %q, want the pairwise reference for ins-x", p.PatientRef)
	}
	hash := func(canonical string) string {
		sum := sha256.Sum256([]byte(canonical))
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}
	for i, canonical := range []string{`"4548-4"`, `"%"`, `5.4`} {
		if p.Items[i].ValueHash != hash(canonical) || res.Items[i].ValueHash != hash(canonical) {
			t.Errorf("item %d value hash %q, want sha256 of %s", i, p.Items[i].ValueHash, canonical)
		}
	}
	if len(p.Anchors) != 1 || p.Anchors[0].Org != "hosp-a" || p.Anchors[0].Hash != lab.Hash {
		t.Fatalf("anchors %+v, want the lab record's, authored by hosp-a", p.Anchors)
	}
	for _, leak := range []string{"Observation", "Jane", "LAB-12345", "divorce"} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Fatalf("receipt leaks %q: %s", leak, raw)
		}
	}
	// The insurer still cannot read content.
	if _, err := e.svc.Fetch(context.Background(), e.ins, records.FetchRequest{ID: lab.ID, Purpose: "HPAYMT"}); consent.ErrorCode(err) != consent.ENOTFOUND {
		t.Fatalf("insurer read: %v", err)
	}
}

// TestVerifyClaimOpensOneRecordAtATime: a claim loads, opens and checks
// its records one after the other, never holding two plaintexts; it
// decrypts at most MaxClaimBytes in all and never a record above
// MaxClaimRecordBytes: those answer "not verified".
func TestVerifyClaimOpensOneRecordAtATime(t *testing.T) {
	e := newEnv(t)
	e.grantPayment(t, "lab")
	big := func(n int) string {
		return `{"resourceType":"Observation","status":"final","note":[{"text":"` + strings.Repeat("x", n) + `"}]}`
	}
	var ids []string
	var items []records.ClaimItem
	for range 6 {
		r := e.put(t, "p-1", "lab", "application/fhir+json", big(64<<10))
		ids = append(ids, r.ID)
		items = append(items, item(r.ID, "/status", `"final"`))
	}
	var sp spy
	sp.install(t, e)
	res := e.verify(t, claim(items...))
	if !res.Verified {
		t.Fatalf("answers %v", oks(res))
	}
	var want []string
	for _, id := range ids {
		want = append(want, "load "+id, "open "+id)
	}
	if !slices.Equal(sp.events, want) {
		t.Fatalf("events %v, want each record loaded and opened before the next", sp.events)
	}

	// A claim budget of three records' worth: the rest are not opened.
	e.svc.MaxClaimBytes = 3*(64<<10) + 3*200
	sp.install(t, e)
	res = e.verify(t, claim(items...))
	if got := oks(res); !slices.Equal(got, []bool{true, true, true, false, false, false}) || len(sp.opened()) != 3 {
		t.Fatalf("answers %v, opened %v; want three records within the budget", got, sp.opened())
	}
	// A record above the per-record cap is never opened.
	e.svc.MaxClaimBytes = 0
	small := e.put(t, "p-1", "lab", "application/fhir+json", big(10))
	e.svc.MaxClaimRecordBytes = 32 << 10
	sp.install(t, e)
	res = e.verify(t, claim(item(ids[0], "/status", `"final"`), item(small.ID, "/status", `"final"`)))
	if got := oks(res); !slices.Equal(got, []bool{false, true}) || !slices.Equal(sp.opened(), []string{small.ID}) {
		t.Fatalf("answers %v, opened %v; want only the small record opened", got, sp.opened())
	}
}

// TestVerifyClaimLogsEveryCitedRecordBeforeAnswering cites three records,
// the second in a category the payment consent does not cover: all three
// are decided and logged (the second as denied) and the claim is answered,
// the second record's item "not verified". With the access log down
// nothing is answered.
func TestVerifyClaimLogsEveryCitedRecordBeforeAnswering(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	lab, imaging, lab2 := e.put(t, "p-1", "lab", "application/fhir+json", labObs),
		e.put(t, "p-1", "imaging", "application/fhir+json", labObs), e.put(t, "p-1", "lab", "application/fhir+json", labObs)
	e.grantPayment(t, "lab")
	cl := claim(
		item(lab.ID, "/code/coding/0/code", `"4548-4"`),
		item(imaging.ID, "/code/coding/0/code", `"4548-4"`),
		item(lab2.ID, "/code/coding/0/code", `"4548-4"`),
	)
	before := e.claimEntries(t)
	res := e.verify(t, cl)
	if got := oks(res); !slices.Equal(got, []bool{true, false, true}) {
		t.Fatalf("answers %v", got)
	}
	decisions := map[string]string{}
	for _, en := range e.newClaimEntries(t, before) {
		decisions[en.RecordID] = en.Decision
	}
	if len(decisions) != 3 || decisions[lab.ID] != "allow" || decisions[imaging.ID] != "deny" || decisions[lab2.ID] != "allow" {
		t.Fatalf("logged %v, want lab allowed, imaging denied, lab2 allowed", decisions)
	}

	e.svc.Access = records.LedgerAccessLog{Ledger: consent.NewService(failingLedger{Ledger: e.ledger, op: consent.OpLogAccess})}
	if res, err := e.svc.VerifyClaim(ctx, e.ins, cl); consent.ErrorCode(err) != consent.EUNAVAILABLE || res != nil {
		t.Fatalf("claim with the access log down: %v, %+v", err, res)
	}
}
