// Package jwt holds everything medshare does with JOSE: it verifies bearer
// tokens, runs the dev issuer used in embedded mode, signs and checks
// claim-verification receipts, and publishes the JWKS document.
//
// It is the only package of the project that imports
// github.com/lestrrat-go/jwx; the rest of medshare sees Claims, *Verifier,
// *Issuer, *Signer and byte slices. Every error is a *consent.Error: token
// failures carry consent.EUNAUTHORIZED with a short message safe to show to
// the caller (never the token itself), configuration mistakes carry
// consent.EINVALID, and an unreachable JWKS endpoint consent.EUNAVAILABLE.
//
// Verification is deliberately narrower than what jwx accepts by default:
// only compact serialization with canonical base64url, a mandatory kid that
// names a key in the set, and only the algorithm bound to that key, which
// must also be in the configured allow-list. The algorithm is never inferred
// from the key or trusted from the token header. Beyond the signature, a
// token's "sub" and "org" must match IDGrammar ([A-Za-z0-9._-]{1,128}, not
// starting with '.' or '-'; no Unicode, so no look-alike identities), and it
// may live at most VerifierConfig.MaxLifetime (default 24h, measured as
// exp - iat, or exp - now without iat).
//
// A Verifier may keep verified tokens (VerifierConfig.CacheSize): bounded,
// keyed by the token's SHA-256, never answering at or after the token's exp
// nor once its key has left the key set, and never holding a failure.
package jwt
