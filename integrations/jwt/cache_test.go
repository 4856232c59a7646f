package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

// MustCachedVerifier returns a Verifier with a cache of size entries,
// trusting keys, on clock.
func MustCachedVerifier(tb testing.TB, size int, clock func() time.Time, keys ...*ecdsa.PublicKey) *Verifier {
	tb.Helper()
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Keys: keys, Now: clock, CacheSize: size,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = v.Close() })
	return v
}

// MustMint mints a provider token for sub valid for ttl from testNow().
func MustMint(tb testing.TB, iss *Issuer, sub string, ttl time.Duration) string {
	tb.Helper()
	tok, err := iss.Mint(sub, RoleProvider, "hospital-b", ttl)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// cached reports whether tok's claims are in v's cache.
func cached(v *Verifier, tok string) bool {
	_, ok := v.cache.get(sumOf(tok), time.Time{})
	return ok
}

func sumOf(tok string) [sha256.Size]byte { return sha256.Sum256([]byte(tok)) }

func TestVerifyCacheServesVerifiedToken(t *testing.T) {
	key := MustKey(t)
	v := MustCachedVerifier(t, 10, testNow, &key.PublicKey)
	tok := MustMint(t, MustIssuer(t, key), "dr-1", time.Hour)
	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if !cached(v, tok) {
		t.Fatal("a verified token is not cached")
	}
	second, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("cached claims differ from verified ones (-first +second):\n%s", diff)
	}
	second.Role = RoleAdmin // a caller's change must not reach the cache
	third, _ := v.Verify(context.Background(), tok)
	if third.Role != RoleProvider {
		t.Errorf("a caller's edit of returned claims leaked into the cache: role %q", third.Role)
	}
}

// TestVerifyCacheNeverPastExp moves the clock across a cached token's exp:
// the cache answers before it, never at or after it. Past exp plus the
// skew the full verification tolerates, the cached token is refused.
func TestVerifyCacheNeverPastExp(t *testing.T) {
	key := MustKey(t)
	clock := &mutableClock{now: testNow()}
	v := MustCachedVerifier(t, 10, clock.Now, &key.PublicKey)
	tok := MustMint(t, MustIssuer(t, key), "dr-1", time.Minute)
	exp := testNow().Add(time.Minute)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		note    string
		at      time.Time
		hit     bool
		wantMsg string
	}{
		{note: "one second before exp: served from the cache", at: exp.Add(-time.Second), hit: true},
		{note: "at exp: not from the cache (the full check still grants the skew)", at: exp},
		{note: "within the skew after exp: not from the cache", at: exp.Add(DefaultSkew - time.Second)},
		{note: "past exp and skew: refused although cached", at: exp.Add(DefaultSkew + time.Second), wantMsg: "token expired"},
	} {
		clock.mu.Lock()
		clock.now = tt.at
		clock.mu.Unlock()
		if _, ok := v.cache.get(sumOf(tok), tt.at); ok != tt.hit {
			t.Errorf("%s: cache hit %v, want %v", tt.note, ok, tt.hit)
		}
		_, err := v.Verify(context.Background(), tok)
		if code, msg := errorCode(err); msg != tt.wantMsg || (err != nil && code != consent.EUNAUTHORIZED) {
			t.Errorf("%s: got %q (%v), want %q", tt.note, msg, err, tt.wantMsg)
		}
	}
}

// TestVerifyCacheTampered presents variants of a cached token: each
// differs in some byte, so none is served from the cache, and each fails
// its full verification.
func TestVerifyCacheTampered(t *testing.T) {
	key, other := MustKey(t), MustKey(t)
	v := MustCachedVerifier(t, 10, testNow, &key.PublicKey)
	tok := MustMint(t, MustIssuer(t, key), "dr-1", time.Hour)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	admin := baseClaims()
	admin["role"] = RoleAdmin
	hdr := map[string]any{"alg": "ES256", "kid": MustKID(t, key), "typ": "JWT"}
	forged := MustSign(t, other, hdr, admin)
	for _, tt := range []struct {
		note, tok string
	}{
		{"the payload of another token under the cached token's signature",
			parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]},
		{"the cached token's last signature character changed", tok[:len(tok)-2] + flip(tok[len(tok)-2]) + tok[len(tok)-1:]},
		{"the cached token's first payload character changed", parts[0] + "." + flip(parts[1][0]) + parts[1][1:] + "." + parts[2]},
		{"a token signed by a foreign key under the cached token's kid", forged},
		{"the cached token with trailing whitespace", tok + " "},
	} {
		_, err := v.Verify(context.Background(), tt.tok)
		if code := consent.ErrorCode(err); code != consent.EUNAUTHORIZED {
			t.Errorf("%s: got %v, want EUNAUTHORIZED", tt.note, err)
		}
		if cached(v, tt.tok) {
			t.Errorf("%s: a failed token was cached", tt.note)
		}
	}
	if got := v.cache.len(); got != 1 {
		t.Errorf("cache holds %d entries, want only the genuine token", got)
	}
}

// flip returns a base64url character other than c.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestVerifyCacheBounded verifies more distinct tokens than the cache holds:
// it never grows past its size and evicts the oldest first.
func TestVerifyCacheBounded(t *testing.T) {
	key := MustKey(t)
	iss := MustIssuer(t, key)
	v := MustCachedVerifier(t, 3, testNow, &key.PublicKey)
	var toks []string
	for i := range 5 {
		tok := MustMint(t, iss, fmt.Sprintf("dr-%d", i), time.Hour)
		toks = append(toks, tok)
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		if got := v.cache.len(); got > 3 {
			t.Fatalf("after %d tokens the cache holds %d entries, more than its size 3", i+1, got)
		}
	}
	var got []bool
	for _, tok := range toks {
		got = append(got, cached(v, tok))
	}
	if want := []bool{false, false, true, true, true}; !cmp.Equal(got, want) {
		t.Errorf("cached tokens %v, want %v (oldest evicted first)", got, want)
	}
}

// TestVerifyCacheKeyRemoved drops a cached token's key from the remote JWKS:
// the token is refused once the set no longer holds its key.
func TestVerifyCacheKeyRemoved(t *testing.T) {
	iss1, iss2 := MustIssuer(t, MustKey(t)), MustIssuer(t, MustKey(t))
	srv := MustJWKSServer(t, iss1.PublicKey())
	clock := &mutableClock{now: testNow()}
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL + "/.well-known/jwks.json",
		HTTPClient: srv.Client(), Now: clock.Now, CacheSize: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	tok := MustMint(t, iss1, "dr-1", time.Hour)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	srv.publish(t, iss2.PublicKey()) // rotate iss1 out
	// A token under the new kid makes the verifier refetch the set.
	if _, err := v.Verify(context.Background(), MustMint(t, iss2, "dr-2", time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), tok)
	if _, msg := errorCode(err); msg != "unknown signing key" {
		t.Errorf("cached token of a removed key: got %q (%v), want unknown signing key", msg, err)
	}
}

func TestVerifyCacheConcurrent(t *testing.T) {
	key := MustKey(t)
	iss := MustIssuer(t, key)
	v := MustCachedVerifier(t, 4, testNow, &key.PublicKey)
	toks := make([]string, 8)
	for i := range toks {
		toks[i] = MustMint(t, iss, fmt.Sprintf("dr-%d", i), time.Hour)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				tok := toks[(w+i)%len(toks)]
				cl, err := v.Verify(context.Background(), tok)
				if err != nil {
					t.Error(err)
					return
				}
				if want := fmt.Sprintf("dr-%d", (w+i)%len(toks)); cl.Subject != want {
					t.Errorf("got subject %q, want %q", cl.Subject, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := v.cache.len(); got > 4 {
		t.Errorf("cache holds %d entries, more than its size 4", got)
	}
}

func TestNewVerifierCacheSize(t *testing.T) {
	key := MustKey(t)
	_, err := NewVerifier(context.Background(), VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, Keys: []*ecdsa.PublicKey{&key.PublicKey}, CacheSize: -1,
	})
	if code := consent.ErrorCode(err); code != consent.EINVALID {
		t.Errorf("negative cache size: got %v, want EINVALID", err)
	}
	v := MustVerifier(t, &key.PublicKey)
	if v.cache != nil {
		t.Error("a verifier without CacheSize has a cache")
	}
}

// BenchmarkVerifyCached is BenchmarkVerify with a cache: every verification
// after the first is a hit.
func BenchmarkVerifyCached(b *testing.B) {
	key := MustKey(b)
	v := MustCachedVerifier(b, DefaultCacheSize, testNow, &key.PublicKey)
	tok := MustMint(b, MustIssuer(b, key), "dr-1", time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
