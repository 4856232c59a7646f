package records

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestClaimRulesCiteNoIdentifyingOrFreeText checks every pattern of the
// allow-list: a pointer to a leaf, no segment naming a person, an
// identifier, contact details, another resource or free text.
func TestClaimRulesCiteNoIdentifyingOrFreeText(t *testing.T) {
	forbidden := []string{
		"id", "identifier", "name", "given", "family", "address", "telecom", "contact", "photo", "birthDate",
		"text", "div", "display", "note", "comment", "description", "conclusion", "lotNumber", "patientInstruction",
		"valueString", "valueAttachment", "presentedForm", "extension", "modifierExtension", "contained", "meta",
		"reference", "subject", "patient", "performer", "requester", "recorder", "asserter", "enterer", "provider",
		"insurer", "payee", "practitioner", "participant", "location", "serviceProvider", "encounter", "basedOn",
		"partOf", "insurance", "supportingInfo", "careTeam", "facility", "referral", "prescription", "related",
		"accident", "account", "manufacturer", "specimen", "result", "media", "imagingStudy", "hasMember", "derivedFrom",
	}
	types := map[string]bool{}
	for _, r := range claimRules() {
		types[r.resourceType] = true
		for _, p := range r.patterns {
			toks, err := ParsePointer(strings.ReplaceAll(p, "*", "0"))
			if err != nil || len(toks) == 0 || claimPattern(toks) != p {
				t.Errorf("%s: pattern %q is not a plain pointer (%v)", r.resourceType, p, err)
				continue
			}
			toks = strings.Split(p[1:], "/")
			for _, tok := range toks {
				if slices.Contains(forbidden, tok) {
					t.Errorf("%s: pattern %q cites %q", r.resourceType, p, tok)
				}
			}
			if last := toks[len(toks)-1]; last == "coding" || last == "*" && !strings.HasSuffix(p, "/category/*") {
				t.Errorf("%s: pattern %q names an object or array, not a leaf", r.resourceType, p)
			}
		}
	}
	want := []string{"AllergyIntolerance", "Claim", "Condition", "DiagnosticReport", "Encounter", "ExplanationOfBenefit",
		"Immunization", "MedicationRequest", "MedicationStatement", "Observation", "Procedure"}
	if got := slices.Sorted(maps.Keys(types)); !slices.Equal(got, want) {
		t.Fatalf("allow-list covers %v, want %v", got, want)
	}
}

// TestCitable checks the union (before loading) and the per-type check.
func TestCitable(t *testing.T) {
	lab := `{"resourceType":"Observation","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"status":"final"}`
	survey := `{"resourceType":"Observation","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"survey"}]}]}`
	wrongSystem := `{"resourceType":"Observation","category":[{"coding":[{"system":"urn:other","code":"laboratory"}]}]}`
	bundle := `{"resourceType":"Bundle","entry":[{"resource":` + lab + `},{"resource":{"resourceType":"Bundle","entry":[{"resource":` + lab + `}]}},{"resource":"x"}]}`
	tests := []struct {
		doc, path     string
		union, inType bool
	}{
		{lab, "/status", true, true},
		{lab, "/resourceType", true, true},
		{lab, "/code/coding/12/code", true, true},
		{lab, "/code/coding/x/code", false, false},
		{lab, "/code/coding/01/code", false, false},
		{lab, "/code/coding/*/code", false, false}, // "*" is not an index
		{lab, "/code/coding/0/display", false, false},
		{lab, "/code/text", false, false},
		{lab, "/note/0/text", false, false},
		{lab, "/subject/reference", false, false},
		{lab, "/identifier/0/value", false, false},
		{lab, "/code", false, false},
		{lab, "", false, false},
		{lab, "/st~0atus", false, false},
		{lab, "/valueQuantity/value", true, true},
		{survey, "/valueQuantity/value", true, false},
		{survey, "/status", true, true},
		{wrongSystem, "/valueQuantity/value", true, false},
		{lab, "/vaccineCode/coding/0/code", true, false},
		{lab, "/total/value", true, false},
		{`{"resourceType":"Patient","name":[{"family":"Roe"}]}`, "/status", true, false},
		{`"Observation"`, "/status", true, false},
		{bundle, "/entry/0/resource/status", true, true},
		{bundle, "/entry/0/resource/valueQuantity/value", true, true},
		{bundle, "/entry/0/resource/note/0/text", false, false},
		{bundle, "/entry/1/resource/entry/0/resource/status", false, false},
		{bundle, "/entry/1/resource/status", true, false}, // a nested Bundle
		{bundle, "/entry/2/resource/status", true, false},
		{bundle, "/entry/9/resource/status", true, false},
		{bundle, "/status", true, false},
		{lab, "/entry/0/resource/status", true, false},
	}
	for _, tt := range tests {
		toks, err := ParsePointer(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := decodeJSON([]byte(tt.doc))
		if err != nil {
			t.Fatal(err)
		}
		if got := citable(toks); got != tt.union {
			t.Errorf("citable(%q) = %v, want %v", tt.path, got, tt.union)
		}
		if got := citableIn(doc, toks); got != tt.inType {
			t.Errorf("citableIn(%.40s…, %q) = %v, want %v", tt.doc, tt.path, got, tt.inType)
		}
	}
}

// TestClaimRulesDocumented checks that docs/CLAIMS.md lists exactly the
// allow-list, type by type, in its shorthand.
func TestClaimRulesDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/CLAIMS.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string]bool{}
	item := regexp.MustCompile("(?:(coding|quantity|period|money)\\s+)?`(/[^`]*)`")
	for _, sec := range strings.Split(string(raw), "\n### ")[1:] {
		heading, body, _ := strings.Cut(sec, "\n")
		body, _, _ = strings.Cut(body, "\n## ")
		set := map[string]bool{}
		for _, m := range item.FindAllStringSubmatch(body, -1) {
			var ps []string
			switch m[1] {
			case "coding":
				ps = coding(m[2])
			case "quantity":
				ps = quantity(m[2])
			case "period":
				ps = period(m[2])
			case "money":
				ps = money(m[2])
			default:
				ps = []string{m[2]}
			}
			for _, p := range ps {
				set[p] = true
			}
		}
		sections[strings.TrimSpace(heading)] = set
	}
	for _, r := range claimRules() {
		heading := r.resourceType
		if len(r.categories) > 0 {
			heading += " (category " + strings.Join(r.categories, " or ") + ")"
		}
		doc, ok := sections[heading]
		if !ok {
			t.Errorf("docs/CLAIMS.md has no section %q", heading)
			continue
		}
		code := map[string]bool{}
		for _, p := range r.patterns {
			code[p] = true
		}
		for p := range code {
			if !doc[p] {
				t.Errorf("%s: %s is allowed in code but not in docs/CLAIMS.md", heading, p)
			}
		}
		for p := range doc {
			if !code[p] {
				t.Errorf("%s: docs/CLAIMS.md lists %s, which the code does not allow", heading, p)
			}
		}
	}
}
