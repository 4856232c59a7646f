package jwt

import (
	"crypto/ecdsa"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/medshare/medshare/consent"
)

// ReceiptType is the "typ" header of every receipt. Verify refuses it, so a
// receipt never passes as an access token even when both keys share a JWKS.
const ReceiptType = "medshare-receipt+jws"

// maxReceiptBytes bounds a receipt VerifyReceipt will parse.
const maxReceiptBytes = 1 << 20

// Signer signs claim-verification receipts as compact ES256 JWS whose kid
// is published in the JWKS (see JWKS). It is safe for concurrent use.
type Signer struct {
	key jwk.Key
	pub *ecdsa.PublicKey
}

// NewSigner returns a Signer using key, a P-256 private key; its kid is the
// key's RFC 7638 thumbprint. EINVALID if key is not P-256.
func NewSigner(key *ecdsa.PrivateKey) (*Signer, error) {
	k, err := es256Key(key)
	if err != nil {
		return nil, err
	}
	return &Signer{key: k, pub: &key.PublicKey}, nil
}

// KID returns the kid in every receipt header.
func (s *Signer) KID() string { return s.key.KeyID() }

// PublicKey returns the public key to publish with JWKS.
func (s *Signer) PublicKey() *ecdsa.PublicKey { return s.pub }

// Sign returns a compact JWS over payload with protected header alg ES256,
// the signer's kid and typ ReceiptType. EINVALID for an empty payload;
// EINTERNAL if signing fails.
func (s *Signer) Sign(payload []byte) (string, error) {
	if len(payload) == 0 {
		return "", consent.Errorf(consent.EINVALID, "receipt payload is empty")
	}
	hdr := jws.NewHeaders()
	if err := setFields(hdr, []field{{jws.KeyIDKey, s.key.KeyID()}, {jws.TypeKey, ReceiptType}}); err != nil {
		return "", err
	}
	out, err := jws.Sign(payload, jws.WithKey(jwa.ES256, s.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", consent.WrapError(consent.EINTERNAL, err, "sign receipt")
	}
	return string(out), nil
}

// VerifyReceipt checks compact, a receipt, against jwks, a published JWKS
// document, without any network access, and returns the signed payload. The
// receipt must be canonical compact JWS with typ ReceiptType, alg ES256 and a
// kid naming a P-256 key the JWKS declares for ES256. EINVALID otherwise.
func VerifyReceipt(compact string, jwks []byte) ([]byte, error) {
	if len(compact) > maxReceiptBytes {
		return nil, consent.Errorf(consent.EINVALID, "receipt is too large")
	}
	h, err := inspect(compact, consent.EINVALID, "receipt")
	if err != nil {
		return nil, err
	}
	if h.alg != jwa.ES256 {
		return nil, consent.Errorf(consent.EINVALID, "receipt algorithm must be ES256")
	}
	if h.typ != ReceiptType {
		return nil, consent.Errorf(consent.EINVALID, "receipt type must be %s", ReceiptType)
	}
	published, err := jwk.Parse(jwks, jwk.WithIgnoreParseError(true))
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "JWKS is not a valid key set")
	}
	set, err := usableKeys(published, map[jwa.SignatureAlgorithm]bool{jwa.ES256: true})
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "JWKS holds no ES256 signing key")
	}
	if _, ok := set.LookupKeyID(h.kid); !ok {
		return nil, consent.Errorf(consent.EINVALID, "receipt signing key is not in the JWKS")
	}
	payload, err := jws.Verify([]byte(compact),
		jws.WithKeySet(set, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(false), jws.WithUseDefault(false)))
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "receipt signature is invalid")
	}
	return payload, nil
}
