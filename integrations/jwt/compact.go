package jwt

import (
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/medshare/medshare/consent"
)

// header is what this package reads from a JWS before verifying it.
type header struct {
	alg jwa.SignatureAlgorithm
	kid string
	typ string
}

// inspect checks that s is a canonical compact JWS and returns its protected
// header. Failures are *consent.Error with code and a message about what
// ("token", "receipt").
//
// jwx accepts more than medshare wants: JSON serialization, surrounding
// whitespace, padded or standard-alphabet base64 and non-zero trailing bits,
// all of which let one signed token travel under many spellings. It also
// ignores "crit". We refuse all of that here, before jwx sees the input.
func inspect(s, code, what string) (header, error) {
	if !canonicalCompact(s) {
		return header{}, consent.Errorf(code, "%s is malformed", what)
	}
	msg, err := jws.Parse([]byte(s), jws.WithCompact())
	if err != nil {
		return header{}, consent.WrapError(code, err, "%s is malformed", what)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	// No extension is understood, so any "crit" (even empty) is refused, and
	// "b64" (RFC 7797) changes what is signed, so it is refused too.
	for _, name := range []string{jws.CriticalKey, "b64"} {
		if _, ok := h.Get(name); ok {
			return header{}, consent.Errorf(code, "%s uses unsupported critical headers", what)
		}
	}
	if h.KeyID() == "" {
		return header{}, consent.Errorf(code, "%s has no key id", what)
	}
	return header{alg: h.Algorithm(), kid: h.KeyID(), typ: h.Type()}, nil
}

// canonicalCompact reports whether s is exactly three non-empty segments of
// unpadded base64url, each the only encoding of its bytes.
func canonicalCompact(s string) bool {
	if strings.Count(s, ".") != 2 {
		return false
	}
	for seg := range strings.SplitSeq(s, ".") {
		if !canonicalSegment(seg) {
			return false
		}
	}
	return true
}

// canonicalSegment reports whether seg is unpadded base64url whose unused
// trailing bits are zero, as RFC 7515 section 2 requires of base64url.
func canonicalSegment(seg string) bool {
	n := len(seg)
	if n == 0 || n%4 == 1 {
		return false
	}
	for i := range n {
		if b64Value(seg[i]) < 0 {
			return false
		}
	}
	switch last := b64Value(seg[n-1]); n % 4 {
	case 2:
		return last&0x0f == 0
	case 3:
		return last&0x03 == 0
	}
	return true
}

// b64Value returns the 6-bit value of a base64url character, or -1.
func b64Value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}
