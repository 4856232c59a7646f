package records

import (
	"sync"
	"time"
)

// Limiter counts events per key in fixed windows and refuses those beyond
// a limit: the rate limits on break-glass reads and denied requests, and
// the claim quotas. It keeps at most MaxKeys windows; when full it drops
// expired windows first, then the oldest. Counts live in the process: a
// restart starts every window afresh (documented in docs/SECURITY.md).
// The zero Limiter, or one with Limit <= 0, allows everything.
type Limiter struct {
	// Limit is how many events a key may have in one window.
	Limit int
	// Window is the length of a window.
	Window time.Duration
	// MaxKeys bounds memory; 0 means 100,000.
	MaxKeys int

	mu      sync.Mutex
	windows map[string]limiterWindow
}

type limiterWindow struct {
	start time.Time
	count int
}

// NewLimiter returns a Limiter allowing limit events per key per window.
func NewLimiter(limit int, window time.Duration) *Limiter {
	return &Limiter{Limit: limit, Window: window}
}

// Allow records one event for key at now and reports whether it is within
// the limit. An event refused is counted too, so a caller who keeps trying
// stays refused until the window ends.
func (l *Limiter) Allow(key string, now time.Time) bool {
	if l == nil || l.Limit <= 0 || l.Window <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.windows == nil {
		l.windows = map[string]limiterWindow{}
	}
	w, ok := l.windows[key]
	if !ok || now.Sub(w.start) >= l.Window || now.Before(w.start) {
		if !ok {
			l.makeRoom(now)
		}
		w = limiterWindow{start: now}
	}
	w.count++
	l.windows[key] = w
	return w.count <= l.Limit
}

// Remaining returns how many events key may still have in its current
// window at now.
func (l *Limiter) Remaining(key string, now time.Time) int {
	if l == nil || l.Limit <= 0 || l.Window <= 0 {
		return int(^uint(0) >> 1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.windows[key]
	if !ok || now.Sub(w.start) >= l.Window || now.Before(w.start) {
		return l.Limit
	}
	return max(0, l.Limit-w.count)
}

// makeRoom drops expired windows, then the oldest, until one more fits.
func (l *Limiter) makeRoom(now time.Time) {
	limit := l.MaxKeys
	if limit <= 0 {
		limit = 100_000
	}
	if len(l.windows) < limit {
		return
	}
	var oldestKey string
	var oldest time.Time
	for k, w := range l.windows {
		if now.Sub(w.start) >= l.Window {
			delete(l.windows, k)
			continue
		}
		if oldestKey == "" || w.start.Before(oldest) {
			oldestKey, oldest = k, w.start
		}
	}
	if len(l.windows) >= limit && oldestKey != "" {
		delete(l.windows, oldestKey)
	}
}
