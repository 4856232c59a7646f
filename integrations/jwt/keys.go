package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/medshare/medshare/consent"
)

// minRSABits is the smallest RSA modulus accepted from a remote JWKS.
const minRSABits = 2048

// isHMAC reports whether alg is one of the HS* algorithms, which are only
// ever bound to a configured shared secret, never to a key from a JWKS.
func isHMAC(alg jwa.SignatureAlgorithm) bool {
	return alg == jwa.HS256 || alg == jwa.HS384 || alg == jwa.HS512
}

// supportedAlg reports whether alg may appear in an allow-list. "none" and
// ES256K (which jwx only builds with a tag) are not supported.
func supportedAlg(alg jwa.SignatureAlgorithm) bool {
	switch alg {
	case jwa.ES256, jwa.ES384, jwa.ES512, jwa.EdDSA,
		jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512,
		jwa.HS256, jwa.HS384, jwa.HS512:
		return true
	}
	return false
}

// publicKeyFits reports whether raw is a public key of the type and size
// alg needs. jwx would fail such a pair at verification anyway; checking when
// keys enter the set keeps unusable keys out of it altogether.
func publicKeyFits(alg jwa.SignatureAlgorithm, raw any) bool {
	switch k := raw.(type) {
	case *ecdsa.PublicKey:
		switch alg {
		case jwa.ES256:
			return k.Curve == elliptic.P256()
		case jwa.ES384:
			return k.Curve == elliptic.P384()
		case jwa.ES512:
			return k.Curve == elliptic.P521()
		}
	case *rsa.PublicKey:
		switch alg {
		case jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512:
			return k.N.BitLen() >= minRSABits
		}
	case ed25519.PublicKey:
		return alg == jwa.EdDSA
	}
	return false
}

// usableKeys returns a new set holding the public half of every key in src
// that names a kid, is meant for signatures, declares an algorithm in algs
// and is of the type that algorithm needs. Keys without an "alg" are dropped:
// binding an algorithm by looking at the key is exactly the inference this
// package refuses. For a repeated kid only the first key is kept.
func usableKeys(src jwk.Set, algs map[jwa.SignatureAlgorithm]bool) (jwk.Set, error) {
	dst := jwk.NewSet()
	for i := range src.Len() {
		k, _ := src.Key(i)
		kid := k.KeyID()
		if kid == "" || (k.KeyUsage() != "" && k.KeyUsage() != string(jwk.ForSignature)) {
			continue
		}
		if _, dup := dst.LookupKeyID(kid); dup {
			continue
		}
		alg := jwa.SignatureAlgorithm(k.Algorithm().String())
		if !algs[alg] || isHMAC(alg) {
			continue
		}
		pub, err := k.PublicKey()
		if err != nil {
			continue
		}
		var raw any
		if err := pub.Raw(&raw); err != nil || !publicKeyFits(alg, raw) {
			continue
		}
		if err := dst.AddKey(pub); err != nil {
			return nil, fmt.Errorf("add key %q: %w", kid, err)
		}
	}
	if dst.Len() == 0 {
		return nil, fmt.Errorf("no usable signing keys (each needs kid, alg in %s, and a matching key type)", algList(algs))
	}
	return dst, nil
}

// algList renders an allow-list for error messages.
func algList(algs map[jwa.SignatureAlgorithm]bool) string {
	names := make([]string, 0, len(algs))
	for a := range algs {
		names = append(names, a.String())
	}
	return "[" + strings.Join(names, " ") + "]"
}

// es256Key turns a P-256 key (public or private) into a JWK bound to ES256,
// with its RFC 7638 thumbprint as kid and use "sig".
func es256Key(raw any) (jwk.Key, error) {
	var pub *ecdsa.PublicKey
	switch k := raw.(type) {
	case *ecdsa.PrivateKey:
		if k != nil {
			pub = &k.PublicKey
		}
	case *ecdsa.PublicKey:
		pub = k
	}
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, consent.Errorf(consent.EINVALID, "key must be an ECDSA P-256 key")
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "key is not a valid ECDSA key")
	}
	kid, err := thumbprint(key)
	if err != nil {
		return nil, err
	}
	fields := []field{{jwk.KeyIDKey, kid}, {jwk.AlgorithmKey, jwa.ES256}, {jwk.KeyUsageKey, jwk.ForSignature}}
	if err := setFields(key, fields); err != nil {
		return nil, err
	}
	return key, nil
}

// thumbprint returns the base64url RFC 7638 SHA-256 thumbprint of key.
func thumbprint(key jwk.Key) (string, error) {
	sum, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", consent.WrapError(consent.EINTERNAL, err, "compute key thumbprint")
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// KID returns the kid medshare uses for a P-256 public key: its RFC 7638
// thumbprint (base64url SHA-256). EINVALID if pub is not a P-256 key.
func KID(pub *ecdsa.PublicKey) (string, error) {
	key, err := es256Key(pub)
	if err != nil {
		return "", err
	}
	return key.KeyID(), nil
}

// JWKS returns the JSON Web Key Set {"keys":[...]} publishing keys, each with
// kty, crv, x, y, kid (its thumbprint), alg ES256 and use sig. A key given
// twice (the dev issuer may share its key with the receipt signer) appears
// once. EINVALID if a key is nil or not P-256.
func JWKS(keys ...*ecdsa.PublicKey) ([]byte, error) {
	set := jwk.NewSet()
	for _, pub := range keys {
		key, err := es256Key(pub)
		if err != nil {
			return nil, err
		}
		if _, dup := set.LookupKeyID(key.KeyID()); dup {
			continue
		}
		if err := set.AddKey(key); err != nil {
			return nil, consent.WrapError(consent.EINTERNAL, err, "build JWKS")
		}
	}
	buf, err := json.Marshal(set)
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "encode JWKS")
	}
	return buf, nil
}

// field is one named value for a JWK, JWS header or JWT claim set.
type field struct {
	name  string
	value any
}

// setFields sets each field on dst (a jwk.Key, jws.Headers or jwt.Token).
func setFields(dst interface{ Set(string, any) error }, fields []field) error {
	for _, f := range fields {
		if err := dst.Set(f.name, f.value); err != nil {
			return consent.WrapError(consent.EINTERNAL, err, "set %s", f.name)
		}
	}
	return nil
}
