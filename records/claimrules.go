package records

import (
	"slices"
	"strings"
	"sync"
)

// The claim allow-list: the only elements of a record a claim item may
// cite. A claim needs codes (with their code systems), dates and periods,
// statuses, quantities with their units and amounts of money; it never
// needs a name, an identifier, an address, a telecom, a reference to
// another resource or free text (text, div, display, note, comment,
// description, conclusion, lotNumber …), so none of those can be cited,
// and an insurer cannot recover them by guessing values. docs/CLAIMS.md
// lists the same patterns; TestClaimRulesDocumented keeps the two in step.
//
// A pattern is a JSON Pointer (RFC 6901) whose "*" segments match one
// array index. A pattern names a leaf (a string, number or boolean), never
// an object or array: a whole CodeableConcept would carry its text.
//
// A record must be a FHIR R4 resource of one of the types below, or a
// Bundle, whose entries are cited as /entry/{i}/resource followed by a
// pattern of the entry's resource type (Bundles do not nest).

// claimRule allows patterns in resources of one type. When categories is
// set, the rule applies only to a resource that carries one of those codes
// in the category system (observation-category): an Observation's value
// may be cited only in a laboratory result or a vital sign, never in a
// survey answer (a depression score) or a social-history finding.
type claimRule struct {
	resourceType string
	system       string   // category system the codes below are in
	categories   []string // required category codes; none: any resource of the type
	patterns     []string
}

// observationCategory is the code system of Observation categories.
const observationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"

// Pattern builders: each names the leaves of one FHIR data type under
// prefix.
func coding(prefix string) []string {
	return []string{prefix + "/coding/*/system", prefix + "/coding/*/code"}
}

func codings(prefixes ...string) []string {
	var out []string
	for _, p := range prefixes {
		out = append(out, coding(p)...)
	}
	return out
}

func quantity(prefix string) []string {
	return []string{prefix + "/value", prefix + "/comparator", prefix + "/unit", prefix + "/system", prefix + "/code"}
}

func period(prefix string) []string { return []string{prefix + "/start", prefix + "/end"} }

func money(prefix string) []string { return []string{prefix + "/value", prefix + "/currency"} }

func join(parts ...[]string) []string { return slices.Concat(parts...) }

// claimRules returns the allow-list, per resource type.
func claimRules() []claimRule {
	// Elements shared by Claim and ExplanationOfBenefit.
	billing := join(
		[]string{"/status", "/use", "/created"},
		codings("/type", "/subType", "/priority"),
		period("/billablePeriod"),
		[]string{"/diagnosis/*/sequence"},
		codings("/diagnosis/*/diagnosisCodeableConcept", "/diagnosis/*/type/*", "/diagnosis/*/onAdmission"),
		[]string{"/procedure/*/sequence", "/procedure/*/date"},
		codings("/procedure/*/procedureCodeableConcept", "/procedure/*/type/*"),
		[]string{"/item/*/sequence", "/item/*/servicedDate", "/item/*/factor"},
		codings("/item/*/revenue", "/item/*/category", "/item/*/productOrService", "/item/*/modifier/*", "/item/*/locationCodeableConcept"),
		period("/item/*/servicedPeriod"),
		quantity("/item/*/quantity"),
		money("/item/*/unitPrice"), money("/item/*/net"),
	)
	adjudication := func(prefix string) []string {
		return join(codings(prefix+"/category", prefix+"/reason"), money(prefix+"/amount"), []string{prefix + "/value"})
	}
	return []claimRule{
		{resourceType: "Observation", patterns: join(
			[]string{"/status", "/effectiveDateTime", "/effectiveInstant", "/issued"},
			codings("/category/*", "/code"),
			period("/effectivePeriod"),
		)},
		{resourceType: "Observation", system: observationCategory, categories: []string{"laboratory", "vital-signs"}, patterns: join(
			quantity("/valueQuantity"),
			codings("/valueCodeableConcept", "/interpretation/*", "/dataAbsentReason"),
			[]string{"/valueBoolean", "/valueInteger", "/valueDateTime"},
			quantity("/referenceRange/*/low"), quantity("/referenceRange/*/high"),
			codings("/component/*/code", "/component/*/valueCodeableConcept", "/component/*/interpretation/*"),
			quantity("/component/*/valueQuantity"),
		)},
		{resourceType: "Condition", patterns: join(
			codings("/clinicalStatus", "/verificationStatus", "/category/*", "/severity", "/code", "/bodySite/*", "/stage/*/summary"),
			[]string{"/onsetDateTime", "/abatementDateTime", "/recordedDate"},
			period("/onsetPeriod"), period("/abatementPeriod"),
		)},
		{resourceType: "Procedure", patterns: join(
			[]string{"/status", "/performedDateTime"},
			codings("/statusReason", "/category", "/code", "/bodySite/*", "/outcome", "/reasonCode/*", "/complication/*", "/usedCode/*"),
			period("/performedPeriod"),
		)},
		{resourceType: "MedicationRequest", patterns: join(
			[]string{"/status", "/intent", "/priority", "/authoredOn", "/dispenseRequest/numberOfRepeatsAllowed"},
			codings("/statusReason", "/category/*", "/medicationCodeableConcept", "/reasonCode/*", "/courseOfTherapyType", "/dosageInstruction/*/route"),
			quantity("/dosageInstruction/*/doseAndRate/*/doseQuantity"),
			quantity("/dispenseRequest/quantity"), quantity("/dispenseRequest/expectedSupplyDuration"),
			period("/dispenseRequest/validityPeriod"),
			[]string{"/substitution/allowedBoolean"},
		)},
		{resourceType: "MedicationStatement", patterns: join(
			[]string{"/status", "/effectiveDateTime", "/dateAsserted"},
			codings("/statusReason/*", "/category", "/medicationCodeableConcept", "/reasonCode/*", "/dosage/*/route"),
			period("/effectivePeriod"),
			quantity("/dosage/*/doseAndRate/*/doseQuantity"),
		)},
		{resourceType: "Immunization", patterns: join(
			[]string{"/status", "/occurrenceDateTime", "/recorded", "/primarySource", "/expirationDate",
				"/protocolApplied/*/doseNumberPositiveInt", "/protocolApplied/*/seriesDosesPositiveInt"},
			codings("/statusReason", "/vaccineCode", "/site", "/route", "/reasonCode/*", "/protocolApplied/*/targetDisease/*"),
			quantity("/doseQuantity"),
		)},
		{resourceType: "Encounter", patterns: join(
			[]string{"/status", "/class/system", "/class/code"},
			codings("/type/*", "/serviceType", "/priority", "/reasonCode/*", "/hospitalization/admitSource", "/hospitalization/dischargeDisposition"),
			period("/period"),
			quantity("/length"),
		)},
		{resourceType: "DiagnosticReport", patterns: join(
			[]string{"/status", "/effectiveDateTime", "/issued"},
			codings("/category/*", "/code", "/conclusionCode/*"),
			period("/effectivePeriod"),
		)},
		{resourceType: "AllergyIntolerance", patterns: join(
			[]string{"/type", "/category/*", "/criticality", "/onsetDateTime", "/recordedDate", "/lastOccurrence",
				"/reaction/*/onset", "/reaction/*/severity"},
			codings("/clinicalStatus", "/verificationStatus", "/code", "/reaction/*/substance", "/reaction/*/manifestation/*", "/reaction/*/exposureRoute"),
			period("/onsetPeriod"),
		)},
		{resourceType: "Claim", patterns: join(
			billing,
			money("/total"),
		)},
		{resourceType: "ExplanationOfBenefit", patterns: join(
			billing,
			[]string{"/outcome", "/payment/date"},
			adjudication("/item/*/adjudication/*"),
			adjudication("/adjudication/*"),
			codings("/total/*/category", "/payment/type"),
			money("/total/*/amount"), money("/payment/amount"),
		)},
	}
}

// claimAllowList is the compiled allow-list: every rule's patterns, and the
// union of all patterns for checking a claim before any record is loaded.
type claimAllowList struct {
	rules []claimRule
	sets  []map[string]bool // rule i's patterns
	union map[string]bool
}

// allowList compiles claimRules once; it is never modified afterwards.
var allowList = sync.OnceValue(func() *claimAllowList {
	l := &claimAllowList{rules: claimRules(), union: map[string]bool{"/resourceType": true}}
	for _, r := range l.rules {
		set := map[string]bool{"/resourceType": true}
		for _, p := range r.patterns {
			set[p], l.union[p] = true, true
		}
		l.sets = append(l.sets, set)
	}
	return l
})

// claimPattern returns the pattern form of a pointer's tokens: array
// indices become "*", other tokens are escaped again (RFC 6901). Tokens
// that hold "*" literally are escaped so they never pass as a wildcard.
func claimPattern(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteByte('/')
		if _, ok := arrayIndex(t); ok {
			b.WriteByte('*')
			continue
		}
		if t == "*" {
			b.WriteString("~2") // never a pattern: not a valid escape
			continue
		}
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// bundleEntry splits a pointer into a Bundle entry: /entry/{i}/resource
// followed by rest. ok is false for any other pointer.
func bundleEntry(toks []string) (i int, rest []string, ok bool) {
	if len(toks) < 4 || toks[0] != "entry" || toks[2] != "resource" {
		return 0, nil, false
	}
	i, ok = arrayIndex(toks[1])
	return i, toks[3:], ok
}

// citable reports whether a claim may cite the element at the JSON Pointer
// tokens toks in a record of some type: the check made before any record
// is loaded, against the union of every type's patterns (and the same
// inside a Bundle entry).
func citable(toks []string) bool {
	if _, rest, ok := bundleEntry(toks); ok {
		toks = rest
	}
	return allowList().union[claimPattern(toks)]
}

// citableIn reports whether the element at toks may be cited in doc, a
// decoded record: its resource type (and category) must allow it.
func citableIn(doc any, toks []string) bool {
	res, ok := doc.(map[string]any)
	if !ok {
		return false
	}
	if typ, _ := res["resourceType"].(string); typ == "Bundle" {
		i, rest, ok := bundleEntry(toks)
		if !ok {
			return false
		}
		entries, _ := res["entry"].([]any)
		if i >= len(entries) {
			return false
		}
		entry, _ := entries[i].(map[string]any)
		inner, _ := entry["resource"].(map[string]any)
		if t, _ := inner["resourceType"].(string); t == "Bundle" {
			return false
		}
		return citableIn(inner, rest)
	}
	typ, _ := res["resourceType"].(string)
	p := claimPattern(toks)
	l := allowList()
	for i, r := range l.rules {
		if r.resourceType == typ && l.sets[i][p] && hasCategory(res, r) {
			return true
		}
	}
	return false
}

// hasCategory reports whether res carries one of rule r's category codes
// (always, for a rule without categories).
func hasCategory(res map[string]any, r claimRule) bool {
	if len(r.categories) == 0 {
		return true
	}
	cats, _ := res["category"].([]any)
	for _, c := range cats {
		cc, _ := c.(map[string]any)
		list, _ := cc["coding"].([]any)
		for _, cd := range list {
			m, _ := cd.(map[string]any)
			code, _ := m["code"].(string)
			system, _ := m["system"].(string)
			if system == r.system && slices.Contains(r.categories, code) {
				return true
			}
		}
	}
	return false
}
