package records

import "sync"

// boundedCacheSize caps each of the service's in-process caches.
const boundedCacheSize = 100_000

// boundedMap is a mutex-guarded map of at most boundedCacheSize entries.
// When full it forgets an arbitrary half, so it suits caches whose misses
// only cost a lookup or a harmless repeated write: committed anchors, which
// never change, so a read on a slow ledger does not query a peer each time;
// pseudonyms whose alias is already stored. The zero value is ready to use.
type boundedMap[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (b *boundedMap[K, V]) get(k K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}

func (b *boundedMap[K, V]) put(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[K]V{}
	}
	if len(b.m) >= boundedCacheSize {
		n := 0
		for old := range b.m {
			delete(b.m, old)
			if n++; n >= boundedCacheSize/2 {
				break
			}
		}
	}
	b.m[k] = v
}
