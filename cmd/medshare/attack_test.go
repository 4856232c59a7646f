package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medshare/medshare/integrations/jwt"
)

// forge builds a compact JWS by hand (stdlib only), so attacks do not rely
// on the library under test.
func forge(tb testing.TB, header, claims map[string]any, sign func(input []byte) []byte) string {
	tb.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

// es256 signs with key as JWS ES256 (r‖s, 32 bytes each).
func es256(key *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// TestTokenAttacks drives forged and broken tokens through the running
// API: every one is refused with 401 or 403 problem+json.
func TestTokenAttacks(t *testing.T) {
	dir := t.TempDir()
	m := MustStart(t, testConfig(dir))
	setupOrgs(t, m)
	key, err := jwt.LoadOrCreateKey(keysOf(dir).devIssuer())
	if err != nil {
		t.Fatal(err)
	}
	kid := m.Issuer.KID()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKID, _ := jwt.KID(&other.PublicKey)
	now := time.Now().Unix()
	good := func() map[string]any {
		return map[string]any{"iss": devIssuer, "aud": audience, "sub": "dr-ash", "role": "provider", "org": "hospital-a",
			"iat": now, "nbf": now - 5, "exp": now + 600}
	}
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	without := func(k string) map[string]any { c := good(); delete(c, k); return c }
	hdr := map[string]any{"alg": "ES256", "kid": kid, "typ": "JWT"}
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	// Sanity: a hand-forged token with the right key is accepted, so the
	// refusals below are about the attack, not the forging.
	if r := rawDo(t, m.URL(), "GET", "/v1/orgs", forge(t, hdr, good(), es256(key)), "", nil); r.Status != 200 {
		t.Fatalf("well-formed forged token refused: %d %s", r.Status, r.Body)
	}
	tampered := forge(t, hdr, good(), es256(key))
	parts := strings.Split(tampered, ".")
	evil, _ := json.Marshal(with("role", "admin"))
	parts[1] = base64.RawURLEncoding.EncodeToString(evil)
	tampered = strings.Join(parts, ".")
	tests := []struct {
		note  string
		token string
		want  int
	}{
		{"alg none", forge(t, map[string]any{"alg": "none", "kid": kid}, good(), func([]byte) []byte { return nil }), 401},
		{"HS256 keyed with the public key", forge(t, map[string]any{"alg": "HS256", "kid": kid}, good(), func(in []byte) []byte {
			m := hmac.New(sha256.New, pubDER)
			m.Write(in)
			return m.Sum(nil)
		}), 401},
		{"unknown kid", forge(t, map[string]any{"alg": "ES256", "kid": "nope"}, good(), es256(key)), 401},
		{"no kid", forge(t, map[string]any{"alg": "ES256"}, good(), es256(key)), 401},
		{"key not in JWKS, known kid", forge(t, hdr, good(), es256(other)), 401},
		{"key not in JWKS, own kid", forge(t, map[string]any{"alg": "ES256", "kid": otherKID}, good(), es256(other)), 401},
		{"wrong iss", forge(t, hdr, with("iss", "evil"), es256(key)), 401},
		{"wrong aud", forge(t, hdr, with("aud", "other-app"), es256(key)), 401},
		{"expired", forge(t, hdr, with("exp", now-3600), es256(key)), 401},
		{"not yet valid", forge(t, hdr, with("nbf", now+3600), es256(key)), 401},
		{"no exp", forge(t, hdr, without("exp"), es256(key)), 401},
		{"no role", forge(t, hdr, without("role"), es256(key)), 401},
		{"unknown role", forge(t, hdr, with("role", "superuser"), es256(key)), 401},
		{"patient carrying an org", forge(t, hdr, map[string]any{"iss": devIssuer, "aud": audience, "sub": "p-7", "role": "patient", "org": "hospital-a", "exp": now + 600}, es256(key)), 401},
		{"provider without org", forge(t, hdr, without("org"), es256(key)), 401},
		{"tampered payload", tampered, 401},
		{"signature of zeros", strings.Join(append(strings.Split(forge(t, hdr, good(), es256(key)), ".")[:2], base64.RawURLEncoding.EncodeToString(make([]byte, 64))), "."), 401},
		{"org not registered", forge(t, hdr, with("org", "ghost-hospital"), es256(key)), 403},
		{"oversized token (over the 8 KiB token limit)", forge(t, hdr, with("pad", strings.Repeat("x", 9000)), es256(key)), 401},
		{"oversized header (over the 16 KiB header buffer)", forge(t, hdr, with("pad", strings.Repeat("x", 20000)), es256(key)), 431},
		{"garbage", "not-a-token", 401},
		{"a 100-year token", forge(t, hdr, with("exp", time.Unix(now, 0).AddDate(100, 0, 0).Unix()), es256(key)), 401},
		{"a 25-hour token without iat", forge(t, hdr, map[string]any{"iss": devIssuer, "aud": audience, "sub": "dr-ash", "role": "provider", "org": "hospital-a", "exp": now + 25*3600}, es256(key)), 401},
		{"issued 2 days ago, expiring in 10 minutes", forge(t, hdr, with("iat", now-48*3600), es256(key)), 401},
		{"subject with U+2010 HYPHEN", forge(t, hdr, with("sub", "dr\u2010ash"), es256(key)), 401},
		{"subject in full-width letters", forge(t, hdr, with("sub", "\uff44\uff52-ash"), es256(key)), 401},
		{"subject with a zero-width space", forge(t, hdr, with("sub", "dr-\u200bash"), es256(key)), 401},
		{"subject with a ligature (NFKC folds it)", forge(t, hdr, with("sub", "dr-\ufb01sh"), es256(key)), 401},
		{"org with U+2011 NON-BREAKING HYPHEN", forge(t, hdr, with("org", "hospital\u2011a"), es256(key)), 401},
		{"auditor role with a hospital's org", forge(t, hdr, with("role", "auditor"), es256(key)), 403},
		{"insurer role with a hospital's org", forge(t, hdr, with("role", "insurer"), es256(key)), 403},
		{"provider role with an insurer's org", forge(t, hdr, with("org", "insurer-x"), es256(key)), 403},
	}
	attacks := 0
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			for _, path := range []string{"/v1/orgs", "/v1/access-log"} {
				r, err := rawTry(m.URL(), "GET", path, tt.token, "", nil)
				if err != nil && tt.want == http.StatusRequestHeaderFieldsTooLarge && errors.Is(err, syscall.ECONNRESET) {
					// The server answers 431 and closes at once; when that
					// beats the client's last header bytes, the kernel
					// resets the connection and the answer is lost with
					// it. Either way the request reached no handler.
					attacks++
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if r.Status != tt.want {
					t.Fatalf("%s: status %d, want %d: %s", path, r.Status, tt.want, r.Body)
				}
				assertProblem(t, r)
				attacks++
			}
		})
	}
	// A deactivated org's tokens stop working at once.
	j := newJourneys(t, m)
	j.tokens = map[string]string{}
	tok := forge(t, hdr, good(), es256(key))
	if _, err := j.expect(context.Background(), 200, "PATCH", "/v1/orgs/hospital-a", admin, map[string]string{"status": "inactive"}); err != nil {
		t.Fatal(err)
	}
	if r := rawDo(t, m.URL(), "GET", "/v1/orgs", tok, "", nil); r.Status != 403 {
		t.Fatalf("deactivated org token: %d", r.Status)
	}
	t.Logf("token attacks tried: %d cases × 2 endpoints = %d requests, all refused", len(tests), attacks)
}
