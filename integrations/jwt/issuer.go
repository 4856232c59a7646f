package jwt

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	jwxjwt "github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/medshare/medshare/consent"
)

// Issuer mints ES256 access tokens in embedded mode (no external identity
// provider). A Verifier accepts them when built with
// VerifierConfig{Issuer: iss, Audience: aud, Keys: []*ecdsa.PublicKey{i.PublicKey()}}.
// It is safe for concurrent use.
type Issuer struct {
	key      jwk.Key
	pub      *ecdsa.PublicKey
	issuer   string
	audience string
	now      func() time.Time
}

// NewIssuer returns an Issuer signing with key, a P-256 private key, as
// issuer for audience. Its kid is the key's RFC 7638 thumbprint. EINVALID if
// key is not P-256 or issuer or audience is empty.
func NewIssuer(key *ecdsa.PrivateKey, issuer, audience string) (*Issuer, error) {
	if issuer == "" || audience == "" {
		return nil, consent.Errorf(consent.EINVALID, "issuer: issuer and audience are required")
	}
	k, err := es256Key(key)
	if err != nil {
		return nil, err
	}
	return &Issuer{key: k, pub: &key.PublicKey, issuer: issuer, audience: audience, now: time.Now}, nil
}

// PublicKey returns the public half of the signing key.
func (i *Issuer) PublicKey() *ecdsa.PublicKey { return i.pub }

// KID returns the key id put in every token header.
func (i *Issuer) KID() string { return i.key.KeyID() }

// Mint returns a signed token for sub with role and org, valid for ttl from
// now. It carries iss, aud, sub, iat, nbf, exp, a random jti, role, and org
// unless org is empty. EINVALID when sub is outside IDGrammar, ttl is not
// positive, or role and org break the rules Verify enforces; EINTERNAL if
// signing fails.
func (i *Issuer) Mint(sub, role, org string, ttl time.Duration) (string, error) {
	if !validSubject(sub) {
		return "", consent.Errorf(consent.EINVALID, "%s", subjectGrammarMessage)
	}
	if msg := checkRole(role, org); msg != "" {
		return "", consent.Errorf(consent.EINVALID, "%s", msg)
	}
	if ttl <= 0 {
		return "", consent.Errorf(consent.EINVALID, "token lifetime must be positive")
	}
	jti, err := randomID()
	if err != nil {
		return "", err
	}
	now := i.now().Truncate(time.Second)
	tok := jwxjwt.New()
	tok.Options().Enable(jwxjwt.FlattenAudience) // "aud": "medshare", not ["medshare"]
	fields := []field{
		{jwxjwt.IssuerKey, i.issuer}, {jwxjwt.AudienceKey, i.audience}, {jwxjwt.SubjectKey, sub},
		{jwxjwt.IssuedAtKey, now}, {jwxjwt.NotBeforeKey, now}, {jwxjwt.ExpirationKey, now.Add(ttl)},
		{jwxjwt.JwtIDKey, jti}, {claimRole, role},
	}
	if org != "" {
		fields = append(fields, field{claimOrg, org})
	}
	if err := setFields(tok, fields); err != nil {
		return "", err
	}
	signed, err := jwxjwt.Sign(tok, jwxjwt.WithKey(jwa.ES256, i.key))
	if err != nil {
		return "", consent.WrapError(consent.EINTERNAL, err, "sign token")
	}
	return string(signed), nil
}

// randomID returns 128 random bits, base64url-encoded.
func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", consent.WrapError(consent.EINTERNAL, err, "generate token id")
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
