package jwt

import (
	"time"

	jwxjwt "github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/medshare/medshare/consent"
)

// Roles a token may carry in its "role" claim.
const (
	RolePatient  = "patient"
	RoleProvider = "provider"
	RoleInsurer  = "insurer"
	RoleAdmin    = "admin"
	RoleAuditor  = "auditor"
)

// Private claim names medshare reads besides the registered ones.
const (
	claimRole = "role"
	claimOrg  = "org"
)

// IDGrammar is the grammar of the "sub" and "org" claims: 1 to 128
// characters of ASCII letters, digits, '.', '_' and '-', not starting with
// '.' or '-' (the grammar of consent.ValidID). Ids are compared byte for
// byte, so nothing is normalized: a subject spelled with a Unicode hyphen
// (U+2010), full-width letters, zero-width or other invisible characters,
// or any other spelling NFKC would fold onto an ASCII id is refused rather
// than becoming a second, look-alike identity. An identity provider whose
// subjects do not fit (e-mail addresses, "provider|id") must map them to
// such ids before they reach medshare.
const IDGrammar = "[A-Za-z0-9._-]{1,128}, not starting with '.' or '-'"

// Messages for a "sub" or "org" outside IDGrammar.
const (
	subjectGrammarMessage = "token subject must match " + IDGrammar
	orgGrammarMessage     = "token org must match " + IDGrammar
)

// Claims are the verified claims medshare uses. Org is empty for patients
// and may be empty for admins; IssuedAt is zero when the token has no "iat".
type Claims struct {
	Subject  string
	Role     string
	Org      string
	Issuer   string
	ID       string // "jti"; empty when the issuer sets none
	IssuedAt time.Time
	Expiry   time.Time
}

// checkRole enforces the role/org rules of the API (README, "API v1"): role is
// one of the five known roles; providers, insurers and auditors belong to a
// valid org; patients belong to none; an admin's org is optional. It
// returns a message for people, or "" when the pair is acceptable.
func checkRole(role, org string) string {
	switch role {
	case "":
		return "token has no role"
	case RolePatient:
		if org != "" {
			return "patient token must not carry an org"
		}
		return ""
	case RoleProvider, RoleInsurer, RoleAuditor:
		if org == "" {
			return "token has no org for its role"
		}
	case RoleAdmin:
		if org == "" {
			return ""
		}
	default:
		return "token role is not recognised"
	}
	if !consent.ValidID(org) {
		return orgGrammarMessage
	}
	return ""
}

// validSubject reports whether sub matches IDGrammar.
func validSubject(sub string) bool { return consent.ValidID(sub) }

// claimsOf extracts and checks medshare's claims from a token jwx has
// already verified and validated. EUNAUTHORIZED on any violation.
func claimsOf(tok jwxjwt.Token) (*Claims, error) {
	c := &Claims{
		Subject:  tok.Subject(),
		Issuer:   tok.Issuer(),
		ID:       tok.JwtID(),
		IssuedAt: utc(tok.IssuedAt()),
		Expiry:   utc(tok.Expiration()),
	}
	// jwx treats "exp": 0 as "no expiry" and skips the check even when the
	// claim is required, so a zero or negative exp is refused here.
	if c.Expiry.Unix() <= 0 {
		return nil, unauthorized("token has no expiry")
	}
	switch {
	case c.Subject == "":
		return nil, unauthorized("token has no valid subject")
	case !validSubject(c.Subject):
		return nil, unauthorized(subjectGrammarMessage)
	}
	var ok bool
	if c.Role, ok = stringClaim(tok, claimRole); !ok {
		return nil, unauthorized("token role is not recognised")
	}
	if c.Org, ok = stringClaim(tok, claimOrg); !ok {
		return nil, unauthorized(orgGrammarMessage)
	}
	if msg := checkRole(c.Role, c.Org); msg != "" {
		return nil, unauthorized(msg)
	}
	return c, nil
}

// stringClaim returns the private claim name; ok is false when it is present
// but not a string. An absent claim is "".
func stringClaim(tok jwxjwt.Token, name string) (string, bool) {
	v, present := tok.Get(name)
	if !present {
		return "", true
	}
	s, ok := v.(string)
	return s, ok
}

// utc returns t in UTC, keeping the zero time zero.
func utc(t time.Time) time.Time {
	if t.IsZero() || t.Unix() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

// unauthorized returns an EUNAUTHORIZED error with msg.
func unauthorized(msg string) error {
	return consent.Errorf(consent.EUNAUTHORIZED, "%s", msg)
}
