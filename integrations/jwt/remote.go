package jwt

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/medshare/medshare/consent"
)

const (
	// forcedRefreshEvery rate-limits the JWKS refresh an unknown kid may
	// trigger, so a stream of forged kids cannot hammer the issuer.
	forcedRefreshEvery = time.Minute
	// maxJWKSBytes bounds a JWKS response body.
	maxJWKSBytes = 1 << 20
	// defaultFetchTimeout bounds a JWKS request when the client sets none:
	// the fetcher jwx uses issues requests without a context.
	defaultFetchTimeout = 10 * time.Second
)

// remoteSet is a JWKS kept fresh by a jwk.Cache.
type remoteSet struct {
	cache  *jwk.Cache
	url    string
	set    jwk.Set // jwk.NewCachedSet over cache
	cancel context.CancelFunc

	mu         sync.Mutex
	lastForced time.Time
}

// newRemoteSet registers c.JWKSURL with a new cache living until ctx is done
// or close is called, and fetches it once. EINVALID for a bad URL;
// EUNAVAILABLE when the fetch fails or the JWKS holds no usable key.
func newRemoteSet(ctx context.Context, c VerifierConfig, algs map[jwa.SignatureAlgorithm]bool) (*remoteSet, error) {
	if err := checkJWKSURL(c.JWKSURL); err != nil {
		return nil, err
	}
	refresh := c.JWKSRefresh
	if refresh == 0 {
		refresh = DefaultJWKSRefresh
	}
	cctx, cancel := context.WithCancel(ctx)
	cache := jwk.NewCache(cctx)
	err := cache.Register(c.JWKSURL,
		jwk.WithHTTPClient(jwksClient(c.HTTPClient)),
		jwk.WithMinRefreshInterval(refresh),
		// A key type jwx cannot parse must not hide the other keys.
		jwk.WithIgnoreParseError(true),
		jwk.WithPostFetcher(jwk.PostFetchFunc(func(_ string, s jwk.Set) (jwk.Set, error) {
			return usableKeys(s, algs)
		})),
	)
	if err != nil {
		cancel()
		return nil, consent.WrapError(consent.EINVALID, err, "verifier: register JWKS URL")
	}
	if _, err := cache.Refresh(ctx, c.JWKSURL); err != nil {
		cancel()
		return nil, consent.WrapError(consent.EUNAVAILABLE, err, "verifier: fetch JWKS")
	}
	return &remoteSet{cache: cache, url: c.JWKSURL, set: jwk.NewCachedSet(cache, c.JWKSURL), cancel: cancel}, nil
}

// refreshFor refetches the JWKS because a token named a kid the cached set
// lacks, at most once per forcedRefreshEvery. It reports whether a refresh
// succeeded; a failed refresh keeps the cached keys.
func (r *remoteSet) refreshFor(ctx context.Context, now time.Time) bool {
	r.mu.Lock()
	if !r.lastForced.IsZero() && now.Sub(r.lastForced) < forcedRefreshEvery {
		r.mu.Unlock()
		return false
	}
	r.lastForced = now
	r.mu.Unlock()
	_, err := r.cache.Refresh(ctx, r.url)
	return err == nil
}

// close stops the background refreshes.
func (r *remoteSet) close() { r.cancel() }

// checkJWKSURL accepts https URLs, and http only to a loopback host (local
// development and tests), so keys are never fetched in the clear.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return consent.Errorf(consent.EINVALID, "verifier: JWKS URL is not an absolute URL")
	}
	if u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname()) {
		return nil
	}
	return consent.Errorf(consent.EINVALID, "verifier: JWKS URL must use https (http only to loopback)")
}

// isLoopback reports whether host is localhost or a loopback IP.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// jwksClient returns a copy of c (or of a default client) with a timeout and
// a transport that bounds response bodies and closes them: jwx v2 reads the
// JWKS with an unbounded io.ReadAll and never closes the body, and does not
// read it at all on a non-200 status.
func jwksClient(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	if cp.Timeout == 0 {
		cp.Timeout = defaultFetchTimeout
	}
	base := cp.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = &boundedTransport{base: base}
	return &cp
}

// boundedTransport wraps response bodies in a boundedBody.
type boundedTransport struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		// jwx rejects the status without touching the body: release it now.
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxJWKSBytes))
		_ = res.Body.Close()
		res.Body = http.NoBody
		return res, nil
	}
	res.Body = &boundedBody{rc: res.Body, left: maxJWKSBytes}
	return res, nil
}

// boundedBody fails reads past maxJWKSBytes and closes the underlying body
// as soon as it is exhausted, fails, or overflows.
type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

// Read implements io.Reader. It reads one byte beyond the limit so a body of
// exactly the limit still ends in io.EOF.
func (b *boundedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		_ = b.rc.Close()
		return 0, fmt.Errorf("JWKS response is larger than %d bytes", maxJWKSBytes)
	}
	b.left -= int64(n)
	if err != nil {
		_ = b.rc.Close()
	}
	return n, err
}

// Close implements io.Closer.
func (b *boundedBody) Close() error { return b.rc.Close() }
