package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

// stdlibThumbprint computes the RFC 7638 thumbprint of a P-256 key without
// jwx, to check the kid jwx derives.
func stdlibThumbprint(tb testing.TB, pub *ecdsa.PublicKey) string {
	tb.Helper()
	b, err := pub.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	canon := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, enc.EncodeToString(b[1:33]), enc.EncodeToString(b[33:]))
	sum := sha256.Sum256([]byte(canon))
	return enc.EncodeToString(sum[:])
}

func TestKID(t *testing.T) {
	key := MustKey(t)
	want := stdlibThumbprint(t, &key.PublicKey)
	for _, got := range []string{MustKID(t, key), MustIssuer(t, key).KID(), MustSigner(t, key).KID()} {
		if got != want {
			t.Errorf("kid %q, want RFC 7638 thumbprint %q", got, want)
		}
	}
}

func TestJWKS(t *testing.T) {
	a, b := MustKey(t), MustKey(t)
	doc := MustJWKS(t, &a.PublicKey, &b.PublicKey, &a.PublicKey)
	var got struct{ Keys []map[string]string }
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatal(err)
	}
	var want struct{ Keys []map[string]string }
	for _, k := range []*ecdsa.PrivateKey{a, b} {
		raw, _ := k.PublicKey.Bytes()
		want.Keys = append(want.Keys, map[string]string{
			"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
			"kid": stdlibThumbprint(t, &k.PublicKey),
			"x":   base64.RawURLEncoding.EncodeToString(raw[1:33]),
			"y":   base64.RawURLEncoding.EncodeToString(raw[33:]),
		})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JWKS of a, b, a (-want +got):\n%s", diff)
	}
}

func TestJWKSRejectsOtherCurves(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		note string
		key  *ecdsa.PublicKey
	}{
		{name: "ErrInvalid", note: "a P-384 key", key: &p384.PublicKey},
		{name: "ErrInvalid", note: "a nil key", key: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := JWKS(tt.key); consent.ErrorCode(err) != consent.EINVALID {
				t.Errorf("%s: got %v, want %s", tt.note, err, consent.EINVALID)
			}
		})
	}
}
