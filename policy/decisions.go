package policy

import (
	"encoding/json"
	"math"
	"slices"
	"sync"
	"time"
)

// maxCachedDecisions bounds a decisionCache; when full it is emptied and
// refills with the decisions in use.
const maxCachedDecisions = 8192

// decisionCache keeps the decisions of the embedded policy by their whole
// input but its time, each with the span of times over which it holds. A
// chart viewer reads the same patient's records again and again with the
// same subject, purpose and consents; an OPA evaluation costs a decision
// tens of microseconds (more in a busy server, with cold caches), a lookup
// one JSON encoding of the input.
//
// It is exact for the embedded policy, which is a pure function of its
// input and data (fixed at New) and reads input.time only as from <= time
// and time < until, against each consent's validFrom and validUntil: its
// decision cannot change while time stays between two consecutive such
// bounds. A policy from Options.Dir may read time otherwise (hours of
// service, say), so New gives such an engine no decision cache. The key is
// the input's JSON with the time left out, every field included, so a
// consent's new version or status (a revoke), a new consent, another
// subject, purpose, resource or break-glass reason is another key.
type decisionCache struct {
	mu sync.RWMutex
	m  map[string]cachedDecision
}

// cachedDecision holds for input times in [from, until), Unix nanoseconds.
type cachedDecision struct {
	d           Decision
	from, until int64
}

func newDecisionCache() *decisionCache {
	return &decisionCache{m: make(map[string]cachedDecision)}
}

// key returns in's cache key and its time in Unix nanoseconds; ok is false
// when in cannot be cached (its time or a consent's is outside int64
// nanoseconds, where the policy sees text, or it does not encode).
func decisionKey(in *Input) (key string, now int64, ok bool) {
	now, ok = unixNanos(in.Time)
	if !ok {
		return "", 0, false
	}
	k := *in
	k.Time = time.Time{}
	b, err := json.Marshal(&k)
	if err != nil {
		return "", 0, false
	}
	return string(b), now, true
}

// get returns the decision cached under key if it holds at now.
func (c *decisionCache) get(key string, now int64) (Decision, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || now < e.from || now >= e.until {
		return Decision{}, false
	}
	return cloneDecision(e.d), true
}

// put caches d, decided for in at now, for the span of times around now
// bounded by in's consents' validFrom and validUntil.
func (c *decisionCache) put(key string, in *Input, now int64, d Decision) {
	from, until := int64(math.MinInt64), int64(math.MaxInt64)
	bound := func(t time.Time) {
		n, ok := unixNanos(t)
		if !ok {
			return // the policy sees text, which no comparison passes: no bound
		}
		if n <= now {
			from = max(from, n)
		} else {
			until = min(until, n)
		}
	}
	for i := range in.Consents {
		bound(in.Consents[i].ValidFrom)
		if u := in.Consents[i].ValidUntil; u != nil {
			bound(*u)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedDecisions {
		clear(c.m)
	}
	c.m[key] = cachedDecision{d: cloneDecision(d), from: from, until: until}
}

// unixNanos returns t in Unix nanoseconds, as the policy sees it; false
// outside int64 nanoseconds (see nanos).
func unixNanos(t time.Time) (int64, bool) {
	if t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0, false
	}
	return t.UnixNano(), true
}

// cloneDecision copies d's slices, so no caller shares the cached ones.
func cloneDecision(d Decision) Decision {
	d.Reasons, d.Obligations = slices.Clone(d.Reasons), slices.Clone(d.Obligations)
	return d
}
