package jwt

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

// decodeSegment decodes one segment of a compact JWS as JSON.
func decodeSegment(tb testing.TB, tok string, i int) map[string]any {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestMintShape(t *testing.T) {
	iss := MustIssuer(t, MustKey(t))
	tok, err := iss.Mint("p-7", RolePatient, "", 90*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wantHdr := map[string]any{"alg": "ES256", "kid": iss.KID(), "typ": "JWT"}
	if diff := cmp.Diff(wantHdr, decodeSegment(t, tok, 0)); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	claims := decodeSegment(t, tok, 1)
	jti, _ := claims["jti"].(string)
	if len(jti) != 22 {
		t.Errorf("jti %q is not 128 random bits", jti)
	}
	delete(claims, "jti")
	now := float64(testNow().Unix())
	want := map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "p-7", "role": "patient",
		"iat": now, "nbf": now, "exp": now + 90*60,
	}
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("a patient token has a flat aud and no org (-want +got):\n%s", diff)
	}
}

func TestMint(t *testing.T) {
	iss := MustIssuer(t, MustKey(t))
	tests := []struct {
		name           string
		note           string
		sub, role, org string
		ttl            time.Duration
	}{
		{name: "ErrNoSubject", note: "an empty subject", role: RolePatient, ttl: time.Hour},
		{name: "ErrBadSubject", note: "a subject with a newline", sub: "a\nb", role: RolePatient, ttl: time.Hour},
		{name: "ErrNoRole", note: "an empty role", sub: "p-7", ttl: time.Hour},
		{name: "ErrUnknownRole", note: "an unknown role", sub: "p-7", role: "nurse", ttl: time.Hour},
		{name: "ErrMissingOrg", note: "a provider without org", sub: "dr-1", role: RoleProvider, ttl: time.Hour},
		{name: "ErrPatientWithOrg", note: "a patient with an org", sub: "p-7", role: RolePatient, org: "hospital-b", ttl: time.Hour},
		{name: "ErrBadOrg", note: "an org that is not an id", sub: "dr-1", role: RoleProvider, org: "a b", ttl: time.Hour},
		{name: "ErrBadTTL", note: "a zero lifetime", sub: "p-7", role: RolePatient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := iss.Mint(tt.sub, tt.role, tt.org, tt.ttl)
			if code := consent.ErrorCode(err); code != consent.EINVALID {
				t.Errorf("%s: got %v, want %s", tt.note, err, consent.EINVALID)
			}
		})
	}
}

func TestNewIssuer(t *testing.T) {
	key := MustKey(t)
	for _, tt := range []struct {
		name, note, issuer, audience string
	}{
		{name: "ErrNoIssuer", note: "an empty issuer", audience: testAudience},
		{name: "ErrNoAudience", note: "an empty audience", issuer: testIssuer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewIssuer(key, tt.issuer, tt.audience); consent.ErrorCode(err) != consent.EINVALID {
				t.Errorf("%s: got %v, want %s", tt.note, err, consent.EINVALID)
			}
		})
	}
	t.Run("ErrNoKey", func(t *testing.T) {
		if _, err := NewIssuer(nil, testIssuer, testAudience); consent.ErrorCode(err) != consent.EINVALID {
			t.Errorf("a nil key: got %v, want %s", err, consent.EINVALID)
		}
	})
}
