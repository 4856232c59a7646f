package records

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(3, time.Minute)
	for i := range 3 {
		if !l.Allow("a", t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("event %d refused", i)
		}
	}
	if l.Allow("a", t0.Add(10*time.Second)) {
		t.Fatal("fourth event in the window allowed")
	}
	if !l.Allow("b", t0.Add(10*time.Second)) {
		t.Fatal("another key refused")
	}
	if got := l.Remaining("a", t0.Add(20*time.Second)); got != 0 {
		t.Fatalf("remaining = %d, want 0", got)
	}
	if !l.Allow("a", t0.Add(time.Minute)) {
		t.Fatal("event in the next window refused")
	}
	var off *Limiter
	if !off.Allow("x", t0) || !NewLimiter(0, time.Minute).Allow("x", t0) {
		t.Fatal("a disabled limiter refused")
	}
}

func TestLimiterBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &Limiter{Limit: 1, Window: time.Hour, MaxKeys: 10}
	for i := range 100 {
		l.Allow(string(rune('a'+i%26))+string(rune('a'+i/26)), t0.Add(time.Duration(i)*time.Second))
	}
	if n := len(l.windows); n > 10 {
		t.Fatalf("limiter holds %d windows, want at most 10", n)
	}
}
