package records

import "testing"

func TestBoundedMapForgetsHalfWhenFull(t *testing.T) {
	var b boundedMap[int, int]
	if _, ok := b.get(1); ok {
		t.Fatal("zero boundedMap holds an entry")
	}
	for i := range boundedCacheSize {
		b.put(i, i*2)
	}
	if v, ok := b.get(7); !ok || v != 14 {
		t.Fatalf("get(7) = %d, %v before it was full, want 14, true", v, ok)
	}
	b.put(-1, 5)
	if n := len(b.m); n != boundedCacheSize/2+1 {
		t.Fatalf("after overflowing, %d entries held, want %d", n, boundedCacheSize/2+1)
	}
	if v, ok := b.get(-1); !ok || v != 5 {
		t.Fatalf("the entry put when full is missing: %d, %v", v, ok)
	}
}
