package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	jwxjwt "github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/medshare/medshare/consent"
)

// Defaults applied by NewVerifier to zero VerifierConfig fields.
const (
	DefaultSkew          = 30 * time.Second
	DefaultMaxTokenBytes = 8192
	DefaultJWKSRefresh   = 15 * time.Minute
	DefaultMaxLifetime   = 24 * time.Hour
	minHMACSecret        = 32
)

// VerifierConfig configures a Verifier. Keys come from exactly one source:
// either JWKSURL (a remote issuer), or Keys and/or HMACSecret (local keys,
// such as the dev issuer's public key).
type VerifierConfig struct {
	// Issuer is the exact "iss" tokens must carry. Required.
	Issuer string
	// Audience must appear in "aud" (medshare uses "medshare"). Required.
	Audience string

	// Keys are local P-256 public keys, each bound to ES256 with its RFC 7638
	// thumbprint as kid. For the dev issuer: Keys: []*ecdsa.PublicKey{iss.PublicKey()}.
	Keys []*ecdsa.PublicKey
	// HMACSecret, when set, is a shared secret (at least 32 bytes) under kid
	// HMACKeyID, bound to the one HS* algorithm listed in Algorithms.
	HMACSecret []byte
	HMACKeyID  string

	// JWKSURL is a remote JWKS fetched through HTTPClient and kept fresh in
	// the background. Only keys with a kid, use "sig" (or none), an "alg" in
	// Algorithms and a matching key type are used. https, or http to loopback.
	JWKSURL string
	// HTTPClient fetches JWKSURL; nil means a default client. A client
	// without a Timeout gets 10s, because jwx sends JWKS requests without a
	// context; response bodies are capped at 1 MiB.
	HTTPClient *http.Client
	// JWKSRefresh is the minimum interval between background refreshes
	// (longer if the server's Cache-Control says so); default 15 minutes.
	JWKSRefresh time.Duration

	// Algorithms is the allow-list of "alg" values; default ["ES256"].
	// "none" is refused; HS* only with HMACSecret.
	Algorithms []string
	// Skew is the clock skew tolerated on exp, nbf and iat; default 30s.
	Skew time.Duration
	// MaxTokenBytes bounds the token size, checked before any parsing;
	// default 8192.
	MaxTokenBytes int
	// MaxLifetime bounds how long a token may live: exp - iat, or exp - now
	// when the token carries no iat, may not exceed it; default
	// DefaultMaxLifetime (24h). It keeps a leaked or hand-signed long-lived
	// token (say, one valid for 100 years) from being accepted.
	MaxLifetime time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	// CacheSize, when positive, keeps the claims of up to that many
	// verified tokens, keyed by the token's SHA-256, so a token presented
	// again is not parsed and its signature not checked again. A cached
	// result is never served at or after the token's exp, nor once its
	// signing key has left the key set; failures are never cached. 0
	// disables the cache; DefaultCacheSize suits a node.
	CacheSize int
}

// Verifier verifies bearer tokens. It is safe for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	algs     map[jwa.SignatureAlgorithm]bool
	set      jwk.Set
	remote   *remoteSet // nil for local keys
	skew     time.Duration
	maxBytes int
	maxLife  time.Duration
	now      func() time.Time
	cache    *tokenCache // nil when CacheSize is 0
}

// NewVerifier returns a Verifier for c. With JWKSURL it fetches the JWKS once
// before returning and keeps refreshing it until ctx is done or Close is
// called. EINVALID for a bad configuration; EUNAVAILABLE when the first JWKS
// fetch fails or yields no usable key.
func NewVerifier(ctx context.Context, c VerifierConfig) (*Verifier, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	algs, err := allowList(c.Algorithms, len(c.HMACSecret) > 0)
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		issuer: c.Issuer, audience: c.Audience, algs: algs,
		skew: c.Skew, maxBytes: c.MaxTokenBytes, maxLife: c.MaxLifetime, now: c.Now,
	}
	if v.skew == 0 {
		v.skew = DefaultSkew
	}
	if v.maxBytes == 0 {
		v.maxBytes = DefaultMaxTokenBytes
	}
	if v.maxLife == 0 {
		v.maxLife = DefaultMaxLifetime
	}
	if v.now == nil {
		v.now = time.Now
	}
	if c.CacheSize > 0 {
		v.cache = newTokenCache(c.CacheSize)
	}
	if c.JWKSURL != "" {
		v.remote, err = newRemoteSet(ctx, c, algs)
		if err != nil {
			return nil, err
		}
		v.set = v.remote.set
		return v, nil
	}
	if v.set, err = localSet(c, algs); err != nil {
		return nil, err
	}
	return v, nil
}

// validate checks the parts of c that need no key material.
func (c *VerifierConfig) validate() error {
	switch {
	case c.Issuer == "":
		return consent.Errorf(consent.EINVALID, "verifier: issuer is required")
	case c.Audience == "":
		return consent.Errorf(consent.EINVALID, "verifier: audience is required")
	case c.JWKSURL != "" && (len(c.Keys) > 0 || len(c.HMACSecret) > 0):
		return consent.Errorf(consent.EINVALID, "verifier: use either a JWKS URL or local keys, not both")
	case c.JWKSURL == "" && len(c.Keys) == 0 && len(c.HMACSecret) == 0:
		return consent.Errorf(consent.EINVALID, "verifier: no keys configured (set a JWKS URL or local keys)")
	case c.Skew < 0 || c.MaxTokenBytes < 0 || c.JWKSRefresh < 0 || c.CacheSize < 0 || c.MaxLifetime < 0:
		return consent.Errorf(consent.EINVALID, "verifier: skew, token size, refresh interval, cache size and maximum lifetime must not be negative")
	case len(c.HMACSecret) > 0 && (len(c.HMACSecret) < minHMACSecret || c.HMACKeyID == ""):
		return consent.Errorf(consent.EINVALID, "verifier: an HMAC secret needs at least %d bytes and a key id", minHMACSecret)
	}
	return nil
}

// allowList parses names into a set of algorithms, refusing "none", unknown
// names, and HS* unless an HMAC secret is configured.
func allowList(names []string, haveSecret bool) (map[jwa.SignatureAlgorithm]bool, error) {
	if len(names) == 0 {
		names = []string{jwa.ES256.String()}
	}
	algs := make(map[jwa.SignatureAlgorithm]bool, len(names))
	for _, n := range names {
		alg := jwa.SignatureAlgorithm(n)
		switch {
		case strings.EqualFold(n, jwa.NoSignature.String()):
			return nil, consent.Errorf(consent.EINVALID, `verifier: algorithm "none" is never accepted`)
		case !supportedAlg(alg):
			return nil, consent.Errorf(consent.EINVALID, "verifier: unsupported algorithm %q", n)
		case isHMAC(alg) && !haveSecret:
			return nil, consent.Errorf(consent.EINVALID, "verifier: %s needs an HMAC secret", n)
		}
		algs[alg] = true
	}
	return algs, nil
}

// localSet builds the key set for local keys: each P-256 key under ES256,
// and the HMAC secret under the single HS* algorithm of the allow-list.
func localSet(c VerifierConfig, algs map[jwa.SignatureAlgorithm]bool) (jwk.Set, error) {
	set := jwk.NewSet()
	if len(c.Keys) > 0 && !algs[jwa.ES256] {
		return nil, consent.Errorf(consent.EINVALID, "verifier: local keys are ES256 keys but ES256 is not allowed")
	}
	for _, pub := range c.Keys {
		key, err := es256Key(pub)
		if err != nil {
			return nil, err
		}
		if err := set.AddKey(key); err != nil {
			return nil, consent.WrapError(consent.EINVALID, err, "verifier: add key")
		}
	}
	if len(c.HMACSecret) == 0 {
		return set, nil
	}
	key, err := hmacKey(c, algs)
	if err != nil {
		return nil, err
	}
	if _, dup := set.LookupKeyID(key.KeyID()); dup {
		return nil, consent.Errorf(consent.EINVALID, "verifier: HMAC key id collides with a public key")
	}
	if err := set.AddKey(key); err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "verifier: add HMAC key")
	}
	return set, nil
}

// hmacKey wraps the shared secret as a JWK bound to the allow-list's only
// HS* algorithm; two HS* algorithms would make that binding ambiguous.
func hmacKey(c VerifierConfig, algs map[jwa.SignatureAlgorithm]bool) (jwk.Key, error) {
	var alg jwa.SignatureAlgorithm
	for a := range algs {
		if isHMAC(a) {
			if alg != "" {
				return nil, consent.Errorf(consent.EINVALID, "verifier: list exactly one HS* algorithm for the HMAC secret")
			}
			alg = a
		}
	}
	if alg == "" {
		return nil, consent.Errorf(consent.EINVALID, "verifier: an HMAC secret needs an HS* algorithm in the allow-list")
	}
	key, err := jwk.FromRaw(c.HMACSecret)
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "verifier: HMAC secret")
	}
	if err := key.Set(jwk.KeyIDKey, c.HMACKeyID); err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "verifier: HMAC key id")
	}
	if err := key.Set(jwk.AlgorithmKey, alg); err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "verifier: HMAC algorithm")
	}
	return key, nil
}

// Close stops background JWKS refreshes. It is safe to call more than once
// and on a Verifier with local keys; it always returns nil.
func (v *Verifier) Close() error {
	if v.remote != nil {
		v.remote.close()
	}
	return nil
}

// Verify checks token and returns its claims. Every failure is an
// EUNAUTHORIZED *consent.Error with a short message for the caller: the
// token is too large or malformed, its algorithm is not allowed or not the
// one bound to its key, its kid is missing or unknown, its signature, iss,
// aud, exp, nbf or iat fail, it lives longer than MaxLifetime, its sub or
// org is outside IDGrammar, or its sub, role or org claims are missing or
// inconsistent. ctx bounds a JWKS refresh triggered by an unknown kid.
// With a cache (VerifierConfig.CacheSize), a token that passed before is
// answered from it until its exp.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	switch {
	case token == "":
		return nil, unauthorized("token is empty")
	case len(token) > v.maxBytes:
		return nil, unauthorized("token is too large")
	}
	var sum [sha256.Size]byte
	if v.cache != nil {
		sum = sha256.Sum256([]byte(token))
		if e, ok := v.cache.get(sum, v.now()); ok && v.keyStillBound(e.kid, e.alg) {
			c := e.claims
			return &c, nil
		}
	}
	cl, h, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(sum, cacheEntry{claims: *cl, kid: h.kid, alg: h.alg})
	}
	return cl, nil
}

// keyStillBound reports whether kid still names a key of the set bound to
// alg: a cached token is served only while its key is.
func (v *Verifier) keyStillBound(kid string, alg jwa.SignatureAlgorithm) bool {
	key, ok := v.set.LookupKeyID(kid)
	return ok && v.algs[alg] && key.Algorithm().String() == alg.String()
}

// verify is the full verification of Verify, without the cache; it also
// returns the token's header.
func (v *Verifier) verify(ctx context.Context, token string) (*Claims, header, error) {
	h, err := inspect(token, consent.EUNAUTHORIZED, "token")
	if err != nil {
		return nil, h, err
	}
	if err := v.checkHeader(ctx, h); err != nil {
		return nil, h, err
	}
	tok, err := jwxjwt.Parse([]byte(token),
		jwxjwt.WithKeySet(v.set, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(false), jws.WithUseDefault(false)),
		jwxjwt.WithValidate(true),
		jwxjwt.WithIssuer(v.issuer),
		jwxjwt.WithAudience(v.audience),
		jwxjwt.WithRequiredClaim(jwxjwt.ExpirationKey),
		jwxjwt.WithRequiredClaim(jwxjwt.SubjectKey),
		jwxjwt.WithAcceptableSkew(v.skew),
		jwxjwt.WithClock(jwxjwt.ClockFunc(v.now)),
	)
	if err != nil {
		return nil, h, v.parseError(err)
	}
	cl, err := claimsOf(tok)
	if err != nil {
		return nil, h, err
	}
	if err := v.checkLifetime(cl); err != nil {
		return nil, h, err
	}
	return cl, h, nil
}

// checkLifetime refuses a token living longer than the maximum: exp - iat,
// or exp - now for a token without iat. A cached token passed this check
// when it was first verified, and its remaining life only shrinks.
func (v *Verifier) checkLifetime(cl *Claims) error {
	from := cl.IssuedAt
	if from.IsZero() {
		from = v.now()
	}
	if cl.Expiry.Sub(from) > v.maxLife {
		return unauthorized("token lifetime exceeds the maximum of " + v.maxLife.String())
	}
	return nil
}

// checkHeader applies the allow-list and binds the token to its key: the
// kid must name a key in the set whose own algorithm is the token's.
func (v *Verifier) checkHeader(ctx context.Context, h header) error {
	if !v.algs[h.alg] {
		return unauthorized("token algorithm is not allowed")
	}
	if t := strings.ToLower(h.typ); t != "" && t != "jwt" && t != "at+jwt" {
		// Receipts and other JWS documents signed by keys in the same
		// JWKS must never pass as access tokens.
		return unauthorized("token type is not accepted")
	}
	key, ok := v.set.LookupKeyID(h.kid)
	if !ok && v.remote != nil && v.remote.refreshFor(ctx, v.now()) {
		key, ok = v.set.LookupKeyID(h.kid)
	}
	if !ok {
		return unauthorized("unknown signing key")
	}
	if key.Algorithm().String() != h.alg.String() {
		return unauthorized("token algorithm does not match its signing key")
	}
	return nil
}

// parseError turns a jwx parse or validation error into a message for
// people; the jwx error is kept as the cause for logs.
func (v *Verifier) parseError(err error) error {
	msg := "token is invalid"
	switch {
	case jws.IsVerificationError(err):
		msg = "token signature is invalid"
	case errors.Is(err, jwxjwt.ErrTokenExpired()):
		msg = "token expired"
	case errors.Is(err, jwxjwt.ErrTokenNotYetValid()):
		msg = "token is not valid yet"
	case errors.Is(err, jwxjwt.ErrInvalidIssuedAt()):
		msg = "token was issued in the future"
	case errors.Is(err, jwxjwt.ErrInvalidIssuer()):
		msg = "token issuer is not trusted"
	case errors.Is(err, jwxjwt.ErrInvalidAudience()):
		msg = "token audience is not " + v.audience
	case errors.Is(err, jwxjwt.ErrRequiredClaim()):
		msg = missingClaimMessage(err)
	}
	return consent.WrapError(consent.EUNAUTHORIZED, err, "%s", msg)
}

// missingClaimMessage names the required claim err is about. jwx reports
// which claim only in the error text, so it is matched against the text
// jwx produces for each claim medshare requires.
func missingClaimMessage(err error) string {
	switch err.Error() {
	case jwxjwt.ErrMissingRequiredClaim(jwxjwt.ExpirationKey).Error():
		return "token has no expiry"
	case jwxjwt.ErrMissingRequiredClaim(jwxjwt.SubjectKey).Error():
		return "token has no valid subject"
	}
	return "token lacks a required claim"
}
