package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/medshare/medshare/consent"
)

func TestVerifyMinted(t *testing.T) {
	key := MustKey(t)
	iss := MustIssuer(t, key)
	v := MustVerifier(t, iss.PublicKey())
	tests := []struct {
		name, note     string
		sub, role, org string
	}{
		{name: "OK", note: "a patient token has no org", sub: "p-7", role: RolePatient},
		{name: "OK", note: "a provider token names its org", sub: "dr-1", role: RoleProvider, org: "hospital-b"},
		{name: "OK", note: "an insurer token names its org", sub: "ins-1", role: RoleInsurer, org: "insurer-x"},
		{name: "OK", note: "an auditor token names its org", sub: "aud-1", role: RoleAuditor, org: "regulator"},
		{name: "OK", note: "an admin needs no org", sub: "root", role: RoleAdmin},
		{name: "OK", note: "an admin may name an org", sub: "root", role: RoleAdmin, org: "medshare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := iss.Mint(tt.sub, tt.role, tt.org, time.Hour)
			if err != nil {
				t.Fatalf("%s: Mint: %v", tt.note, err)
			}
			got, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("%s: Verify: %v", tt.note, err)
			}
			want := &Claims{Subject: tt.sub, Role: tt.role, Org: tt.org, Issuer: testIssuer,
				IssuedAt: testNow(), Expiry: testNow().Add(time.Hour)}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Claims{}, "ID")); diff != "" {
				t.Errorf("%s: claims (-want +got):\n%s", tt.note, diff)
			}
			if len(got.ID) < 20 {
				t.Errorf("%s: jti %q is not a random id", tt.note, got.ID)
			}
		})
	}
}

// TestVerify is the rejection table: every row must fail with EUNAUTHORIZED
// and the message that names its reason, or pass when wantMsg is empty.
func TestVerify(t *testing.T) {
	key, other := MustKey(t), MustKey(t)
	kid, otherKID := MustKID(t, key), MustKID(t, other)
	v := MustVerifier(t, &key.PublicKey)
	hdr := map[string]any{"alg": "ES256", "kid": kid, "typ": "JWT"}
	with := func(edit func(c map[string]any)) map[string]any {
		c := baseClaims()
		edit(c)
		return c
	}
	headerWith := func(k string, val any) map[string]any {
		h := map[string]any{"alg": "ES256", "kid": kid, "typ": "JWT"}
		if val == nil {
			delete(h, k)
		} else {
			h[k] = val
		}
		return h
	}
	valid := MustSign(t, key, hdr, baseClaims())
	pubBytes, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		note    string
		token   func(t *testing.T) string
		wantMsg string // "" means the token verifies
	}{
		{name: "OK", note: "a token signed by a trusted key with all claims",
			token: func(*testing.T) string { return valid }},
		{name: "OK", note: "exp passed 10s ago is within the 30s skew",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["exp"] = testNow().Add(-10 * time.Second).Unix() }))
			}},
		{name: "OK", note: "nbf 20s ahead is within the 30s skew",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["nbf"] = testNow().Add(20 * time.Second).Unix() }))
			}},
		{name: "OK", note: "aud may be an array containing medshare",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["aud"] = []string{"other", "medshare"} }))
			}},
		{name: "OK", note: "typ at+jwt (RFC 9068) is accepted, as is no typ",
			token: func(t *testing.T) string { return MustSign(t, key, headerWith("typ", "at+jwt"), baseClaims()) }},
		{name: "OK", note: "no typ header",
			token: func(t *testing.T) string { return MustSign(t, key, headerWith("typ", nil), baseClaims()) }},

		{name: "ErrAlgNone", note: `alg "none" with an empty signature is not even well-formed`,
			token: func(t *testing.T) string {
				_, tok := rawJWS(t, map[string]any{"alg": "none", "kid": kid}, baseClaims(), nil)
				return tok
			}, wantMsg: "token is malformed"},
		{name: "ErrAlgNone", note: `alg "none" with some signature bytes is refused by the allow-list`,
			token: func(t *testing.T) string {
				_, tok := rawJWS(t, map[string]any{"alg": "none", "kid": kid}, baseClaims(), []byte("sig"))
				return tok
			}, wantMsg: "token algorithm is not allowed"},
		{name: "ErrAlgHS256", note: "HS256 keyed with the public key bytes (key confusion) is refused",
			token: func(t *testing.T) string {
				in, _ := rawJWS(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"}, baseClaims(), nil)
				mac := hmac.New(sha256.New, pubBytes)
				mac.Write([]byte(in))
				return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
			}, wantMsg: "token algorithm is not allowed"},
		{name: "ErrAlgES384", note: "an algorithm outside the allow-list is refused before any key lookup",
			token:   func(t *testing.T) string { return MustSign(t, key, headerWith("alg", "ES384"), baseClaims()) },
			wantMsg: "token algorithm is not allowed"},
		{name: "ErrUnknownKID", note: "a kid naming no key in the set",
			token:   func(t *testing.T) string { return MustSign(t, key, headerWith("kid", "nope"), baseClaims()) },
			wantMsg: "unknown signing key"},
		{name: "ErrMissingKID", note: "a token without kid is refused even though the set has one key",
			token:   func(t *testing.T) string { return MustSign(t, key, headerWith("kid", nil), baseClaims()) },
			wantMsg: "token has no key id"},
		{name: "ErrBadSignature", note: "signed by a foreign key under a kid that is in the set",
			token:   func(t *testing.T) string { return MustSign(t, other, hdr, baseClaims()) },
			wantMsg: "token signature is invalid"},
		{name: "ErrUnknownKID", note: "signed by a foreign key under its own kid",
			token:   func(t *testing.T) string { return MustSign(t, other, headerWith("kid", otherKID), baseClaims()) },
			wantMsg: "unknown signing key"},
		{name: "ErrWrongIssuer", note: "iss of another issuer",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["iss"] = "https://evil.test" }))
			}, wantMsg: "token issuer is not trusted"},
		{name: "ErrWrongIssuer", note: "no iss at all",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { delete(c, "iss") }))
			}, wantMsg: "token issuer is not trusted"},
		{name: "ErrWrongAudience", note: "aud of another service",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["aud"] = "billing" }))
			}, wantMsg: "token audience is not medshare"},
		{name: "ErrExpired", note: "exp 31s ago is beyond the skew",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["exp"] = testNow().Add(-31 * time.Second).Unix() }))
			}, wantMsg: "token expired"},
		{name: "ErrNotYetValid", note: "nbf 31s ahead is beyond the skew",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["nbf"] = testNow().Add(31 * time.Second).Unix() }))
			}, wantMsg: "token is not valid yet"},
		{name: "ErrIssuedInFuture", note: "iat a minute ahead",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["iat"] = testNow().Add(time.Minute).Unix() }))
			}, wantMsg: "token was issued in the future"},
		{name: "ErrMissingExp", note: "no exp",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { delete(c, "exp") }))
			}, wantMsg: "token has no expiry"},
		{name: "ErrMissingExp", note: "exp 0, which jwx alone would treat as never expiring",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["exp"] = 0 }))
			}, wantMsg: "token has no expiry"},
		{name: "ErrMissingSub", note: "no sub",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { delete(c, "sub") }))
			}, wantMsg: "token has no valid subject"},
		{name: "ErrMissingSub", note: "an empty sub is no subject",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["sub"] = "" }))
			}, wantMsg: "token has no valid subject"},
		{name: "ErrMissingSub", note: "a sub with a control character",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["sub"] = "p-7\nforged log line" }))
			}, wantMsg: subjectGrammarMessage},
		{name: "ErrMissingRole", note: "no role",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { delete(c, "role") }))
			}, wantMsg: "token has no role"},
		{name: "ErrUnknownRole", note: "a role medshare does not know",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["role"] = "superuser" }))
			}, wantMsg: "token role is not recognised"},
		{name: "ErrUnknownRole", note: "a role that is not a string",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["role"] = []string{"admin"} }))
			}, wantMsg: "token role is not recognised"},
		{name: "ErrMissingOrg", note: "a provider without org",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["role"] = "provider" }))
			}, wantMsg: "token has no org for its role"},
		{name: "ErrMissingOrg", note: "an auditor without org",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["role"] = "auditor" }))
			}, wantMsg: "token has no org for its role"},
		{name: "ErrBadOrg", note: "an insurer whose org is not a valid id",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["role"], c["org"] = "insurer", "../x" }))
			}, wantMsg: orgGrammarMessage},
		{name: "ErrBadOrg", note: "an org that is not a string",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["role"], c["org"] = "provider", 7 }))
			}, wantMsg: orgGrammarMessage},
		{name: "ErrPatientWithOrg", note: "a patient token carrying an org",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["org"] = "hospital-b" }))
			}, wantMsg: "patient token must not carry an org"},
		{name: "ErrTampered", note: "one character of the payload segment flipped",
			token: func(*testing.T) string {
				parts := strings.Split(valid, ".")
				p := []byte(parts[1])
				i := len(p) / 2
				if p[i] == 'A' {
					p[i] = 'B'
				} else {
					p[i] = 'A'
				}
				return parts[0] + "." + string(p) + "." + parts[2]
			}, wantMsg: "token signature is invalid"},
		{name: "ErrTampered", note: "claims re-encoded with a raised role under the original signature",
			token: func(t *testing.T) string {
				parts := strings.Split(valid, ".")
				_, forged := rawJWS(t, hdr, with(func(c map[string]any) { c["role"] = "admin" }), nil)
				fp := strings.Split(forged, ".")
				return parts[0] + "." + fp[1] + "." + parts[2]
			}, wantMsg: "token signature is invalid"},
		{name: "ErrNonCanonical", note: "non-zero unused bits in the last signature character decode to the same bytes",
			token: func(*testing.T) string {
				last := valid[len(valid)-1]
				return valid[:len(valid)-1] + string(base64URLAlphabet[b64Value(last)|1])
			}, wantMsg: "token is malformed"},
		{name: "ErrNonCanonical", note: "padding on the signature",
			token: func(*testing.T) string { return valid + "==" }, wantMsg: "token is malformed"},
		{name: "ErrNonCanonical", note: "surrounding whitespace",
			token: func(*testing.T) string { return " " + valid + "\n" }, wantMsg: "token is malformed"},
		{name: "ErrNonCanonical", note: "the same JWS in JSON serialization",
			token: func(*testing.T) string {
				p := strings.Split(valid, ".")
				return `{"payload":"` + p[1] + `","protected":"` + p[0] + `","signature":"` + p[2] + `"}`
			}, wantMsg: "token is malformed"},
		{name: "ErrWrongType", note: "a receipt-typed JWS is not an access token",
			token:   func(t *testing.T) string { return MustSign(t, key, headerWith("typ", ReceiptType), baseClaims()) },
			wantMsg: "token type is not accepted"},
		{name: "ErrCritical", note: "a crit header names an extension nobody here understands",
			token:   func(t *testing.T) string { return MustSign(t, key, headerWith("crit", []string{"exp"}), baseClaims()) },
			wantMsg: "token uses unsupported critical headers"},
		{name: "ErrTooLarge", note: "a validly signed token over 8192 bytes is refused before parsing",
			token: func(t *testing.T) string {
				return MustSign(t, key, hdr, with(func(c map[string]any) { c["pad"] = strings.Repeat("x", 8192) }))
			}, wantMsg: "token is too large"},
		{name: "ErrMalformed", note: "a word", token: func(*testing.T) string { return "garbage" }, wantMsg: "token is malformed"},
		{name: "ErrMalformed", note: "two segments", token: func(*testing.T) string { return "eyJhbGciOiJFUzI1NiJ9.e30" }, wantMsg: "token is malformed"},
		{name: "ErrMalformed", note: "four segments", token: func(*testing.T) string { return valid + ".AAAA" }, wantMsg: "token is malformed"},
		{name: "ErrMalformed", note: "only dots", token: func(*testing.T) string { return ".." }, wantMsg: "token is malformed"},
		{name: "ErrMalformed", note: "a header that is not JSON", token: func(*testing.T) string { return "AAAA.AAAA.AAAA" }, wantMsg: "token is malformed"},
		{name: "ErrMalformed", note: "a Bearer prefix left on", token: func(*testing.T) string { return "Bearer " + valid }, wantMsg: "token is malformed"},
		{name: "ErrMalformed", note: "a payload that is not JSON",
			token: func(t *testing.T) string {
				sig, err := jws.Sign([]byte("not json"), jws.WithKey(jwa.ES256, key, jws.WithProtectedHeaders(mustHeaders(t, kid))))
				if err != nil {
					t.Fatal(err)
				}
				return string(sig)
			}, wantMsg: "token is invalid"},
		{name: "ErrEmpty", note: "no token at all", token: func(*testing.T) string { return "" }, wantMsg: "token is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			got, err := v.Verify(context.Background(), tok)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("%s: Verify: %v", tt.note, err)
				}
				if got.Subject != "p-7" {
					t.Errorf("%s: subject %q", tt.note, got.Subject)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: verified, want %q", tt.note, tt.wantMsg)
			}
			code, msg := errorCode(err)
			if code != consent.EUNAUTHORIZED || msg != tt.wantMsg {
				t.Errorf("%s: got %s %q, want %s %q (%v)", tt.note, code, msg, consent.EUNAUTHORIZED, tt.wantMsg, err)
			}
			if tok != "" && strings.Contains(err.Error(), tok) {
				t.Errorf("%s: error echoes the token", tt.note)
			}
		})
	}
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// mustHeaders returns protected headers with alg ES256 and kid.
func mustHeaders(tb testing.TB, kid string) jws.Headers {
	tb.Helper()
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, kid); err != nil {
		tb.Fatal(err)
	}
	return h
}

// TestVerifyAlgBoundToKey shows that a token must use the algorithm bound to
// its key, even when the header names another algorithm of the allow-list.
func TestVerifyAlgBoundToKey(t *testing.T) {
	key := MustKey(t)
	kid := MustKID(t, key)
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Keys: []*ecdsa.PublicKey{&key.PublicKey},
		Algorithms: []string{"ES256", "ES384"}, Now: testNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := MustSign(t, key, map[string]any{"alg": "ES384", "kid": kid}, baseClaims())
	_, err = v.Verify(context.Background(), tok)
	if code, msg := errorCode(err); code != consent.EUNAUTHORIZED || msg != "token algorithm does not match its signing key" {
		t.Errorf("got %s %q (%v)", code, msg, err)
	}
}

func TestVerifyHMAC(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, HMACSecret: secret, HMACKeyID: "shared",
		Algorithms: []string{"HS256"}, Now: testNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(secret []byte) string {
		in, _ := rawJWS(t, map[string]any{"alg": "HS256", "kid": "shared"}, baseClaims(), nil)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	t.Run("OK", func(t *testing.T) {
		if _, err := v.Verify(context.Background(), sign(secret)); err != nil {
			t.Fatalf("a token under the configured secret: %v", err)
		}
	})
	t.Run("ErrBadSignature", func(t *testing.T) {
		_, err := v.Verify(context.Background(), sign([]byte(strings.Repeat("t", 32))))
		if code, msg := errorCode(err); code != consent.EUNAUTHORIZED || msg != "token signature is invalid" {
			t.Errorf("a token under another secret: got %s %q", code, msg)
		}
	})
}

func TestNewVerifier(t *testing.T) {
	key := MustKey(t)
	keys := []*ecdsa.PublicKey{&key.PublicKey}
	secret := []byte(strings.Repeat("s", 32))
	tests := []struct {
		name string
		note string
		cfg  VerifierConfig
	}{
		{name: "ErrNoIssuer", note: "issuer is required",
			cfg: VerifierConfig{Audience: testAudience, Keys: keys}},
		{name: "ErrNoAudience", note: "audience is required",
			cfg: VerifierConfig{Issuer: testIssuer, Keys: keys}},
		{name: "ErrNoKeys", note: "some key source is required",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience}},
		{name: "ErrTwoSources", note: "a JWKS URL excludes local keys",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: keys, JWKSURL: "https://id.test/jwks"}},
		{name: "ErrAlgNone", note: `"none" may not be allow-listed`,
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: keys, Algorithms: []string{"ES256", "none"}}},
		{name: "ErrAlgNone", note: `nor "NONE"`,
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: keys, Algorithms: []string{"NONE"}}},
		{name: "ErrAlgUnknown", note: "an algorithm jwx does not verify",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: keys, Algorithms: []string{"ES256K"}}},
		{name: "ErrHMACWithoutSecret", note: "HS256 needs a secret",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: keys, Algorithms: []string{"ES256", "HS256"}}},
		{name: "ErrHMACWithoutAlg", note: "a secret needs an HS* algorithm",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, HMACSecret: secret, HMACKeyID: "k"}},
		{name: "ErrHMACAmbiguous", note: "a secret binds to exactly one HS* algorithm",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, HMACSecret: secret, HMACKeyID: "k", Algorithms: []string{"HS256", "HS512"}}},
		{name: "ErrHMACShort", note: "a secret under 32 bytes",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, HMACSecret: secret[:16], HMACKeyID: "k", Algorithms: []string{"HS256"}}},
		{name: "ErrES256NotAllowed", note: "local keys are ES256 keys",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: keys, Algorithms: []string{"RS256"}}},
		{name: "ErrBadKey", note: "a nil key",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: []*ecdsa.PublicKey{nil}}},
		{name: "ErrPlainHTTP", note: "http to a non-loopback host",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: "http://id.example.com/jwks"}},
		{name: "ErrRelativeURL", note: "a JWKS URL without host",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: "/jwks"}},
		{name: "ErrNegative", note: "a negative skew",
			cfg: VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: keys, Skew: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(context.Background(), tt.cfg)
			if err == nil {
				_ = v.Close()
				t.Fatalf("%s: NewVerifier succeeded", tt.note)
			}
			if code := consent.ErrorCode(err); code != consent.EINVALID {
				t.Errorf("%s: code %s, want %s (%v)", tt.note, code, consent.EINVALID, err)
			}
		})
	}
}

func TestVerifyMaxTokenBytes(t *testing.T) {
	key := MustKey(t)
	iss := MustIssuer(t, key)
	tok, err := iss.Mint("p-7", RolePatient, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Keys: []*ecdsa.PublicKey{iss.PublicKey()},
		MaxTokenBytes: len(tok) - 1, Now: testNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), tok)
	if code, msg := errorCode(err); code != consent.EUNAUTHORIZED || msg != "token is too large" {
		t.Errorf("a token one byte over the configured limit: got %s %q", code, msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	key := MustKey(b)
	iss := MustIssuer(b, key)
	v := MustVerifier(b, iss.PublicKey())
	tok, err := iss.Mint("dr-1", RoleProvider, "hospital-b", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
