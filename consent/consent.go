// Package consent holds medshare's consent domain: organizations, consents,
// record anchors and access-log entries, and the deterministic contract that
// applies commands to a key/value world state. The embedded ledger and the
// Fabric chaincode both host this one contract, so their behaviour cannot
// drift. The package also defines the Ledger interface its hosts implement
// and a typed Service over it.
package consent

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"time"
)

// Organization types.
const (
	OrgHospital = "hospital"
	OrgClinic   = "clinic"
	OrgLab      = "lab"
	OrgInsurer  = "insurer"
	OrgAuditor  = "auditor"
)

// Statuses of organizations and consents.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusRevoked  = "revoked"
)

// Purposes of use (HL7 v3 PurposeOfUse) medshare accepts; anything else is
// EINVALID.
const (
	PurposeTreat       = "TREAT"
	PurposeEmergency   = "ETREAT"
	PurposePayment     = "HPAYMT"
	PurposeOperations  = "HOPERAT"
	PurposeResearch    = "HRESCH"
	PurposePatientRqst = "PATRQT"
)

// Purposes lists every accepted purpose code, sorted.
var purposes = []string{"ETREAT", "HOPERAT", "HPAYMT", "HRESCH", "PATRQT", "TREAT"}

// ValidPurpose reports whether p is an accepted purpose code.
func ValidPurpose(p string) bool {
	_, ok := slices.BinarySearch(purposes, p)
	return ok
}

// ValidOrgType reports whether t is an accepted organization type.
func ValidOrgType(t string) bool {
	switch t {
	case OrgHospital, OrgClinic, OrgLab, OrgInsurer, OrgAuditor:
		return true
	}
	return false
}

// Break-glass reason codes: the coded reason a clinician gives for an
// emergency read (header X-Break-Glass-Code; "other" when absent). The
// code is what the policy and the access log see; the free text stays off
// the ledger.
const (
	BreakGlassUnconscious     = "unconscious"      // patient unconscious or unable to consent
	BreakGlassLifeThreatening = "life-threatening" // immediate threat to life or limb
	BreakGlassUrgentCare      = "urgent-care"      // urgent treatment, patient cannot be reached
	BreakGlassOther           = "other"            // another emergency, explained in the free text
)

// breakGlassCodes lists every accepted break-glass code, sorted.
var breakGlassCodes = []string{"life-threatening", "other", "unconscious", "urgent-care"}

// ValidBreakGlassCode reports whether c is an accepted break-glass code.
func ValidBreakGlassCode(c string) bool {
	_, ok := slices.BinarySearch(breakGlassCodes, c)
	return ok
}

// BreakGlassCodes returns the accepted break-glass codes, sorted.
func BreakGlassCodes() []string { return slices.Clone(breakGlassCodes) }

// WildcardCategory in a consent's categories matches every category that is
// not restricted.
const WildcardCategory = "*"

// Org is a registered organization.
type Org struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Grantee is who a consent grants access to: an organization, or one subject
// within it. Subject holds the subject's pseudonym (see Pseudonymizer), never
// the subject's id.
type Grantee struct {
	Org        string `json:"org"`
	SubjectRef string `json:"subjectRef,omitempty"`
}

// Consent is a patient's grant of access, as kept on the ledger.
type Consent struct {
	ID         string     `json:"id"`
	PatientRef string     `json:"patientRef"`
	Grantee    Grantee    `json:"grantee"`
	Categories []string   `json:"categories"`
	Records    []string   `json:"records"`
	Purposes   []string   `json:"purposes"`
	ValidFrom  time.Time  `json:"validFrom"`
	ValidUntil *time.Time `json:"validUntil,omitempty"`
	Status     string     `json:"status"`
	Version    int        `json:"version"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	Tx         string     `json:"tx"` // id of the transaction that made this version
}

// ActiveAt reports whether c is in force at t: active status and t inside its
// validity window.
func (c *Consent) ActiveAt(t time.Time) bool {
	if c.Status != StatusActive || t.Before(c.ValidFrom) {
		return false
	}
	return c.ValidUntil == nil || t.Before(*c.ValidUntil)
}

// Anchor binds a record version to a salted hash of its content, on the
// ledger. Hash is base64url(sha256(salt‖content)).
type Anchor struct {
	RecordID   string    `json:"recordId"`
	Version    int       `json:"version"`
	PatientRef string    `json:"patientRef"`
	Org        string    `json:"org"`
	Category   string    `json:"category"`
	Hash       string    `json:"hash"`
	AnchoredAt time.Time `json:"anchoredAt"`
	Tx         string    `json:"tx"`
}

// Access decisions.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// AccessEntry is one access-log entry: who tried to do what to which record,
// why, what was decided and on what basis. Actor is a pseudonym.
type AccessEntry struct {
	ID             string    `json:"id"`
	Time           time.Time `json:"time"`
	Action         string    `json:"action"`
	RecordID       string    `json:"recordId,omitempty"`
	PatientRef     string    `json:"patientRef"`
	ActorRef       string    `json:"actorRef"`
	Role           string    `json:"role"`
	Org            string    `json:"org,omitempty"`
	Purpose        string    `json:"purpose"`
	Decision       string    `json:"decision"`
	Reasons        []string  `json:"reasons"`
	BreakGlass     bool      `json:"breakGlass"`
	ConsentID      string    `json:"consentId,omitempty"`
	ConsentVersion int       `json:"consentVersion,omitempty"`
	PolicyDigest   string    `json:"policyDigest"`
	// BreakGlassCode is the coded emergency reason of a break-glass read
	// (see BreakGlassCodes); its free text is kept off the ledger,
	// encrypted in the patient's notice, and NoteCommit commits to it.
	BreakGlassCode string `json:"breakGlassCode,omitempty"`
	// NoteCommit is base64url(sha256(salt‖free text)) of a break-glass
	// reason, so an auditor holding the text can show it was the one given.
	NoteCommit string `json:"noteCommit,omitempty"`
	// ClaimItems records, for a claim verification, each cited element
	// and its answer — never the claimed value.
	ClaimItems []ClaimItemLog `json:"claimItems,omitempty"`
	// Sealed is set only in the form an entry takes on the shared ledger:
	// every field above but ID, Time and PatientRef sealed under a key only
	// data custodians hold (see Pseudonymizer.SealEntry), and PatientRef a
	// pairwise reference. Node-local copies (journal, outbox) leave it empty.
	Sealed     string    `json:"sealed,omitempty"`
	AnchoredAt time.Time `json:"anchoredAt"`
	Tx         string    `json:"tx"`

	cursor string // position in the index a page was read from
}

// ClaimItemLog is one claim item as the access log keeps it: the element a
// claim cited and whether it was verified, never the value claimed.
type ClaimItemLog struct {
	Path string `json:"path"`
	OK   bool   `json:"ok"`
}

// Pseudonymizer turns subject ids into the pseudonyms that go on the ledger:
// base64url(HMAC-SHA256(pepper, kind+":"+id)). The pepper never leaves the
// node's key directory.
type Pseudonymizer struct {
	pepper []byte
	seal   cipher.AEAD // access-entry seal, derived from the pepper; stateless, safe for concurrent use
}

// NewPseudonymizer returns a Pseudonymizer keyed by pepper (at least 32 bytes).
func NewPseudonymizer(pepper []byte) (*Pseudonymizer, error) {
	if len(pepper) < 32 {
		return nil, Errorf(EINVALID, "pseudonym pepper must be at least 32 bytes")
	}
	p := &Pseudonymizer{pepper: slices.Clone(pepper)}
	var err error
	if p.seal, err = p.entryAEAD(); err != nil {
		return nil, err
	}
	return p, nil
}

// PatientRef is the ledger pseudonym of patient id.
func (p *Pseudonymizer) PatientRef(id string) string { return p.ref("patient", id) }

// SubjectRef is the ledger pseudonym of an actor or grantee subject id.
func (p *Pseudonymizer) SubjectRef(id string) string { return p.ref("subject", id) }

// Pair is the pairwise pseudonym of a patient (by their node-internal
// PatientRef) in their relationship with organization org: what a consent
// granted to org carries on the ledger, what indexes org's access entries
// about the patient, and what a receipt given to org names. Two
// organizations get unrelated references for the same patient, and no
// reference can be linked to another without the pepper. org "" is the
// patient's own relationship (their own reads).
func (p *Pseudonymizer) Pair(patientRef, org string) string {
	return p.ref("pair", patientRef+"\x00"+org)
}

// RecordRef is the reference to a patient that a record's anchor carries
// on the ledger: bound to that one record, so anchors of one patient's
// records cannot be linked to each other or to anything else, while a node
// holding the pepper can still check that a stored record belongs to its
// patient.
func (p *Pseudonymizer) RecordRef(patientRef, recordID string) string {
	return p.ref("record", patientRef+"\x00"+recordID)
}

func (p *Pseudonymizer) ref(kind, id string) string {
	m := hmac.New(sha256.New, p.pepper)
	m.Write([]byte(kind + ":" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
