package consent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Contract operations that change state (submitted as transactions).
const (
	OpRegisterOrg    = "RegisterOrg"
	OpSetOrgStatus   = "SetOrgStatus"
	OpGrantConsent   = "GrantConsent"
	OpRevokeConsent  = "RevokeConsent"
	OpAnchorRecord   = "AnchorRecord"
	OpLogAccess      = "LogAccess"
	OpLogAccessBatch = "LogAccessBatch"
)

// Contract queries (evaluated, never ordered).
const (
	QueryGetOrg       = "GetOrg"
	QueryListOrgs     = "ListOrgs"
	QueryGetConsent   = "GetConsent"
	QueryListConsents = "ListConsents"
	QueryGetAnchor    = "GetAnchor"
	QueryGetAccess    = "GetAccess"
	QueryListAccess   = "ListAccess"
)

// Limits that keep every transaction small and every key printable.
const (
	maxIDLen      = 128
	maxScopeItems = 256
	maxReasons    = 32
	maxBatch      = 1000
	maxListLimit  = 1000
)

// RegisterOrgArgs registers a new organization, active from the start.
type RegisterOrgArgs struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// SetOrgStatusArgs activates or deactivates an organization.
type SetOrgStatusArgs struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// GrantConsentArgs creates a consent. ID is chosen by the caller.
type GrantConsentArgs struct {
	ID         string     `json:"id"`
	PatientRef string     `json:"patientRef"`
	Grantee    Grantee    `json:"grantee"`
	Categories []string   `json:"categories"`
	Records    []string   `json:"records"`
	Purposes   []string   `json:"purposes"`
	ValidUntil *time.Time `json:"validUntil,omitempty"`
}

// RevokeConsentArgs revokes consent ID on behalf of patient By.
type RevokeConsentArgs struct {
	ID string `json:"id"`
	By string `json:"by"` // patientRef of the requester
}

// LogAccessBatchArgs logs several entries in one transaction.
type LogAccessBatchArgs struct {
	Entries []AccessEntry `json:"entries"`
}

// BatchResult reports which entries of a batch were logged and which were
// already on the ledger (retries are harmless).
type BatchResult struct {
	Logged  []string `json:"logged"`
	Skipped []string `json:"skipped"`
}

// IDArgs names one object.
type IDArgs struct {
	ID string `json:"id"`
}

// AnchorArgs names one record version.
type AnchorArgs struct {
	RecordID string `json:"recordId"`
	Version  int    `json:"version"`
}

// ConsentFilter selects consents by patient or by grantee organization
// (exactly one must be set).
type ConsentFilter struct {
	PatientRef string `json:"patientRef,omitempty"`
	GranteeOrg string `json:"granteeOrg,omitempty"`
}

// AccessFilter selects access entries, oldest first: those indexed under
// one reference (PatientRef) or several (PatientRefs), or all when neither
// is set. After is the cursor returned by a previous page.
type AccessFilter struct {
	PatientRef string `json:"patientRef,omitempty"`
	// PatientRefs, instead of PatientRef, merges the entries of several
	// references in time order (at most 1000).
	PatientRefs []string `json:"patientRefs,omitempty"`
	After       string   `json:"after,omitempty"`
	Limit       int      `json:"limit,omitempty"`
}

// AccessPage is one page of access entries; Next is empty on the last page.
type AccessPage struct {
	Entries []AccessEntry `json:"entries"`
	Next    string        `json:"next,omitempty"`
}

// Apply runs the state-changing operation op with JSON args against st and
// returns the JSON result. It is deterministic: the same state, op, args and
// transaction metadata give the same writes and result on every host.
// Errors are *Error with EINVALID, ENOTFOUND, ECONFLICT or EFORBIDDEN.
func Apply(st State, op string, args []byte) ([]byte, error) {
	switch op {
	case OpRegisterOrg:
		return call(st, args, registerOrg)
	case OpSetOrgStatus:
		return call(st, args, setOrgStatus)
	case OpGrantConsent:
		return call(st, args, grantConsent)
	case OpRevokeConsent:
		return call(st, args, revokeConsent)
	case OpAnchorRecord:
		return call(st, args, anchorRecord)
	case OpLogAccess:
		return call(st, args, logAccess)
	case OpLogAccessBatch:
		return call(st, args, logAccessBatch)
	}
	return nil, Errorf(EINVALID, "unknown operation %q", op)
}

// Query runs the read-only query op with JSON args against st. Hosts may
// pass a State whose Put fails: queries never write.
func Query(st State, op string, args []byte) ([]byte, error) {
	switch op {
	case QueryGetOrg:
		return call(st, args, func(st State, a IDArgs) (*Org, error) { return getOrg(st, a.ID) })
	case QueryListOrgs:
		return call(st, args, func(st State, _ struct{}) ([]Org, error) { return listOrgs(st) })
	case QueryGetConsent:
		return call(st, args, func(st State, a IDArgs) (*Consent, error) { return getConsent(st, a.ID) })
	case QueryListConsents:
		return call(st, args, listConsents)
	case QueryGetAnchor:
		return call(st, args, getAnchor)
	case QueryGetAccess:
		return call(st, args, getAccess)
	case QueryListAccess:
		return call(st, args, listAccess)
	}
	return nil, Errorf(EINVALID, "unknown query %q", op)
}

// IsQuery reports whether op is a read-only query.
func IsQuery(op string) bool {
	switch op {
	case QueryGetOrg, QueryListOrgs, QueryGetConsent, QueryListConsents, QueryGetAnchor, QueryGetAccess, QueryListAccess:
		return true
	}
	return false
}

// call decodes args strictly into A, runs fn and encodes its result.
func call[A, R any](st State, args []byte, fn func(State, A) (R, error)) ([]byte, error) {
	var a A
	if err := decodeStrict(args, &a); err != nil {
		return nil, err
	}
	r, err := fn(st, a)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(r)
	if err != nil {
		return nil, WrapError(EINTERNAL, err, "encode result")
	}
	return out, nil
}

// decodeStrict decodes one JSON value, rejecting unknown fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return WrapError(EINVALID, err, "malformed arguments")
	}
	// More would miss a stray '}' or ']'; only EOF proves nothing follows.
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(EINVALID, "malformed arguments: trailing data")
	}
	return nil
}

// validTime reports whether t can be stored: its UTC year is 0–9999, the
// range RFC 3339 and time.Time's JSON encoding accept. An offset can push a
// parsed time just outside it, which would otherwise fail only on encode.
func validTime(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// validID reports whether id is 1–128 characters of [A-Za-z0-9._-], not
// starting with a dot or dash, so it is safe in keys, paths and queries.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen || id[0] == '.' || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidID reports whether id is acceptable as an organization, consent,
// record or entry id.
func ValidID(id string) bool { return validID(id) }

// validCategory reports whether c is a lowercase token [a-z0-9-], 1–64 long.
func validCategory(c string) bool {
	if c == "" || len(c) > 64 || c[0] == '-' {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			return false
		}
	}
	return true
}

// ValidCategory reports whether c is an acceptable category code.
func ValidCategory(c string) bool { return validCategory(c) }

// getJSON loads key into v, reporting whether it existed.
func getJSON(st State, key string, v any) (bool, error) {
	b, err := st.Get(key)
	if err != nil {
		return false, WrapError(EINTERNAL, err, "read state")
	}
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, WrapError(EINTERNAL, err, "decode state at %q", key)
	}
	return true, nil
}

// putJSON stores v at key.
func putJSON(st State, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return WrapError(EINTERNAL, err, "encode state")
	}
	if err := st.Put(key, b); err != nil {
		return WrapError(EINTERNAL, err, "write state")
	}
	return nil
}

// normalizeSet sorts and dedupes a list so stored consents are canonical.
func normalizeSet(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// timeKey formats t for keys so that lexical order is time order.
func timeKey(t time.Time) string {
	return t.UTC().Format("20060102T150405.000000000Z")
}

// checkRef validates a pseudonym: base64url of 32 bytes.
func checkRef(name, ref string) error {
	if len(ref) != 43 || strings.ContainsFunc(ref, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return Errorf(EINVALID, "%s must be a pseudonym (base64url of 32 bytes)", name)
	}
	return nil
}

func errNotFound(kind, id string) error {
	return Errorf(ENOTFOUND, "%s %q not found", kind, id)
}

func errf(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
