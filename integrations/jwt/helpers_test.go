package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
)

const (
	testIssuer   = "https://id.medshare.test"
	testAudience = "medshare"
)

// testNow is the fixed clock of every test, on a whole second because JWT
// times are whole seconds.
func testNow() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

// MustKey returns a fresh P-256 key.
func MustKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// MustIssuer returns a dev issuer on key whose clock is testNow().
func MustIssuer(tb testing.TB, key *ecdsa.PrivateKey) *Issuer {
	tb.Helper()
	iss, err := NewIssuer(key, testIssuer, testAudience)
	if err != nil {
		tb.Fatal(err)
	}
	iss.now = testNow
	return iss
}

// MustVerifier returns a Verifier trusting keys at testNow().
func MustVerifier(tb testing.TB, keys ...*ecdsa.PublicKey) *Verifier {
	tb.Helper()
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Keys: keys, Now: testNow,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = v.Close() })
	return v
}

// MustKID returns the thumbprint kid of key.
func MustKID(tb testing.TB, key *ecdsa.PrivateKey) string {
	tb.Helper()
	kid, err := KID(&key.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	return kid
}

// baseClaims returns a valid patient claim set at testNow().
func baseClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "p-7", "jti": "jti-1",
		"iat": testNow().Unix(), "nbf": testNow().Unix(), "exp": testNow().Add(time.Hour).Unix(),
		"role": "patient",
	}
}

// MustSign signs claims with key (ES256) under the protected header hdr,
// taken as is: no alg, kid or typ is added or corrected, so tests control
// every header field, including an alg that lies about the signature.
func MustSign(tb testing.TB, key *ecdsa.PrivateKey, hdr, claims map[string]any) string {
	tb.Helper()
	in, _ := rawJWS(tb, hdr, claims, nil)
	digest := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		tb.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// rawJWS assembles a compact JWS from a header, claims and a signature,
// for tokens no library would produce.
func rawJWS(tb testing.TB, hdr, claims map[string]any, sig []byte) (signingInput, token string) {
	tb.Helper()
	h, err := json.Marshal(hdr)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	signingInput = enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	return signingInput, signingInput + "." + enc.EncodeToString(sig)
}

// errorCode returns err's consent code and message.
func errorCode(err error) (code, msg string) {
	var e *consent.Error
	if errors.As(err, &e) {
		return e.Code, e.Message
	}
	return consent.ErrorCode(err), ""
}
