// Package policy decides every access in medshare with OPA. The engine is a
// pure function of its input: the caller authenticates the subject, loads the
// resource's metadata and the patient's consents for the subject's
// organization, and asks Decide. The rules live in rego/ (package
// medshare.authz, rule decision), are embedded in the binary and can be
// replaced from a directory; their _test.rego tests run inside go test.
//
// Every decision carries human-readable reasons and the digest of the policy
// that made it, so an access-log entry can later be shown lawful under exactly
// that policy and the consent version it cites.
package policy

import (
	"slices"
	"time"

	"github.com/medshare/medshare/consent"
)

// Roles a subject may have.
const (
	RolePatient  = "patient"
	RoleProvider = "provider"
	RoleInsurer  = "insurer"
	RoleAdmin    = "admin"
	RoleAuditor  = "auditor"
)

// Actions the policy decides.
const (
	ActionRead        = "read"         // record content
	ActionWrite       = "write"        // upload a record
	ActionList        = "list"         // record metadata
	ActionGrant       = "grant"        // create a consent
	ActionRevoke      = "revoke"       // revoke a consent
	ActionReadConsent = "read_consent" // read a consent
	ActionVerifyClaim = "verify_claim" // check claim facts against one record
	ActionReadAudit   = "read_audit"   // read the access log
	ActionManageOrgs  = "manage_orgs"  // register or (de)activate organizations
	ActionListOrgs    = "list_orgs"    // list organizations
)

// Obligations a decision may attach; the caller must honour them.
const (
	ObligationNotifyPatient = "notify-patient" // tell the patient about the access
	ObligationFlagAudit     = "flag-audit"     // mark the access-log entry for review
)

// MaxReasonLen is the longest reason Decide returns, in bytes: the limit an
// access-log entry accepts.
const MaxReasonLen = 512

// DefaultRestricted returns the categories restricted by default: neither the
// wildcard category nor break-glass opens them, only a consent naming the
// category or the record.
func DefaultRestricted() []string {
	return []string{"mental-health", "substance-use", "sexual-health", "genetic", "hiv"}
}

// Subject is who asks.
type Subject struct {
	ID         string `json:"id"`
	Role       string `json:"role"`                 // patient | provider | insurer | admin | auditor
	Org        string `json:"org,omitempty"`        // provider, insurer, auditor
	OrgType    string `json:"orgType,omitempty"`    // hospital | clinic | lab | insurer | auditor: the type of Org
	Ref        string `json:"ref"`                  // the subject's pseudonym; a consent's grantee.subjectRef compares to it
	PatientRef string `json:"patientRef,omitempty"` // role patient: their own patient pseudonym
}

// Resource is what the subject acts on. For verify_claim it is the record a
// claim cites (id, patient, category), so consent scope applies per record.
type Resource struct {
	Type     string `json:"type"` // record | consent | access-log | org | claim
	ID       string `json:"id,omitempty"`
	Patient  string `json:"patient,omitempty"` // patientRef of the record's, consent's or log's owner
	Category string `json:"category,omitempty"`
	Org      string `json:"org,omitempty"` // record: authoring org; consent: grantee org
}

// Emergency is a break-glass declaration.
type Emergency struct {
	Declared bool   `json:"declared"`
	Reason   string `json:"reason,omitempty"`
}

// Input is one access question. Consents holds the patient's consents granted
// to the subject's organization, active or not: the policy itself checks
// status, validity at Time, grantee, purpose and scope. The policy sees each
// consent's id, patientRef, grantee, categories, records, purposes,
// validFrom, validUntil, status and version. It sees times (Time, validFrom,
// validUntil) as Unix nanoseconds; one outside int64 nanoseconds (before 1678
// or after 2262) as its RFC 3339 text, which makes a consent not apply.
type Input struct {
	Subject   Subject           `json:"subject"`
	Action    string            `json:"action"`
	Resource  Resource          `json:"resource"`
	Purpose   string            `json:"purpose,omitempty"` // HL7 PurposeOfUse: TREAT, ETREAT, HPAYMT …
	Consents  []consent.Consent `json:"consents"`
	Emergency Emergency         `json:"emergency"`
	Time      time.Time         `json:"time"` // when the access happens; required
}

// Decision is the policy's answer. Reasons is never empty. ConsentID and
// ConsentVersion name the consent an allow relied on, if any; PolicyDigest
// names the policy that decided (see Engine.Digest).
type Decision struct {
	Allow          bool     `json:"allow"`
	Reasons        []string `json:"reasons"`
	Obligations    []string `json:"obligations"`
	ConsentID      string   `json:"consentId,omitempty"`
	ConsentVersion int      `json:"consentVersion,omitempty"`
	PolicyDigest   string   `json:"policyDigest"`
}

// BreakGlass reports whether d is an allow that relied on break-glass: it
// obliges the caller to notify the patient.
func (d Decision) BreakGlass() bool {
	return d.Allow && slices.Contains(d.Obligations, ObligationNotifyPatient)
}
