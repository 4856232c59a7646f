package main

import (
	"context"
	"sync"
	"time"

	"github.com/medshare/medshare/consent"
)

// orgCache answers "is this org registered and active" for every request.
// On the embedded ledger the lookup is a local read and the TTL is zero (a
// deactivation takes effect on the next request); on Fabric a lookup is a
// peer query, so answers are kept for a few seconds and a deactivation
// takes effect within that TTL.
type orgCache struct {
	orgs *consent.Service
	ttl  time.Duration

	mu sync.Mutex
	m  map[string]orgEntry
}

type orgEntry struct {
	org *consent.Org
	at  time.Time
}

func newOrgCache(orgs *consent.Service, ttl time.Duration) *orgCache {
	return &orgCache{orgs: orgs, ttl: ttl, m: map[string]orgEntry{}}
}

// orgTTL is how long org lookups are cached for cfg's ledger.
func orgTTL(cfg Config) time.Duration {
	if cfg.Ledger == "fabric" {
		return 5 * time.Second
	}
	return 0
}

// get returns the org, from the cache while fresh. Errors are not cached.
func (c *orgCache) get(ctx context.Context, id string) (*consent.Org, error) {
	if c.ttl > 0 {
		c.mu.Lock()
		e, ok := c.m[id]
		c.mu.Unlock()
		if ok && time.Since(e.at) < c.ttl {
			return e.org, nil
		}
	}
	o, err := c.orgs.Org(ctx, id)
	if err != nil || c.ttl == 0 {
		return o, err
	}
	c.mu.Lock()
	if len(c.m) > 10_000 {
		clear(c.m)
	}
	c.m[id] = orgEntry{org: o, at: time.Now()}
	c.mu.Unlock()
	return o, nil
}
