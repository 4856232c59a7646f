package jwt

import (
	"time"
	"unicode"
	"unicode/utf8"

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

// maxSubjectLen bounds "sub"; subjects end up in access-log entries.
const maxSubjectLen = 256

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

// checkRole enforces the role/org rules of DESIGN.md section 7: role is
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
		return "token org is not a valid id"
	}
	return ""
}

// validSubject reports whether sub is a usable subject: non-empty, bounded,
// valid UTF-8 without control characters (it is logged and displayed).
func validSubject(sub string) bool {
	if sub == "" || len(sub) > maxSubjectLen || !utf8.ValidString(sub) {
		return false
	}
	for _, r := range sub {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

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
	if !validSubject(c.Subject) {
		return nil, unauthorized("token has no valid subject")
	}
	var ok bool
	if c.Role, ok = stringClaim(tok, claimRole); !ok {
		return nil, unauthorized("token role is not recognised")
	}
	if c.Org, ok = stringClaim(tok, claimOrg); !ok {
		return nil, unauthorized("token org is not a valid id")
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
