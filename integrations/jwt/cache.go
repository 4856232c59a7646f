package jwt

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// DefaultCacheSize is a good VerifierConfig.CacheSize for one node: enough
// for every token of a hospital's working day, ~200 bytes each.
const DefaultCacheSize = 10_000

// tokenCache remembers the claims of tokens that passed Verify, so a token
// presented again skips parsing and the ES256 signature check (80-110 µs,
// the largest fixed cost of a request).
//
// Entries are keyed by the SHA-256 of the whole token: a token differing in
// any byte (a tampered one included) misses and is verified in full. Only
// successes are cached. An entry is served only while the verifier's clock
// is before the token's exp (the skew tolerated by a full verification is
// not extended to cached results) and while the key that signed it is still
// in the key set, bound to the same algorithm, so a key dropped from a
// remote JWKS stops its tokens at once. The cache holds at most max
// entries; when full, the oldest entry is evicted first.
type tokenCache struct {
	mu      sync.RWMutex
	max     int
	entries map[[sha256.Size]byte]cacheEntry
	ring    [][sha256.Size]byte // insertion order, for eviction
	next    int                 // ring slot the next insertion takes
}

// cacheEntry is a verified token's claims and what a hit must recheck.
type cacheEntry struct {
	claims Claims
	kid    string
	alg    jwa.SignatureAlgorithm
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[[sha256.Size]byte]cacheEntry, max), ring: make([][sha256.Size]byte, 0, max)}
}

// get returns the cached entry for key if it is there and now is before
// the token's expiry.
func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) (cacheEntry, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.claims.Expiry) {
		return cacheEntry{}, false
	}
	return e, true
}

// put stores e under key, evicting the oldest entry when full.
func (c *tokenCache) put(key [sha256.Size]byte, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	if len(c.ring) < c.max {
		c.ring = append(c.ring, key)
	} else {
		delete(c.entries, c.ring[c.next])
		c.ring[c.next] = key
		c.next = (c.next + 1) % c.max
	}
	c.entries[key] = e
}

// len is the number of entries, for tests.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
