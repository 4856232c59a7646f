package residency

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// valueSize keeps each value, with its key and headers, within one 4 KiB
// bbolt page, so the file is about count × 4 KiB.
const valueSize = 4000

var bucketName = []byte("values")

// skipUnlessLinux skips tests that need /proc and madvise.
func skipUnlessLinux(tb testing.TB) {
	tb.Helper()
	if runtime.GOOS != "linux" {
		tb.Skip("residency trimming is implemented only on Linux")
	}
}

// key is value i's key: big-endian, so keys sort in order of i.
func key(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

// value is value i's content: a pattern no two values share, and with no
// zero page, so both a stale read and a zeroed page show.
func value(i int) []byte {
	v := make([]byte, valueSize)
	binary.BigEndian.PutUint64(v, uint64(i))
	for j := 8; j < len(v); j++ {
		v[j] = byte(i*131+j*7) | 1
	}
	return v
}

// mustOpen opens a fresh bbolt file (without fsync, which the tests do not
// need) and closes it at the end of the test.
func mustOpen(tb testing.TB, name string) *bbolt.DB {
	tb.Helper()
	db, err := bbolt.Open(filepath.Join(tb.TempDir(), name), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// fill stores values from..to-1, batch per transaction.
func fill(db *bbolt.DB, from, to, batch int) error {
	for start := from; start < to; start += batch {
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketName)
			if err != nil {
				return err
			}
			for i := start; i < min(start+batch, to); i++ {
				if err := b.Put(key(i), value(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("fill %d..%d: %w", start, to, err)
		}
	}
	return nil
}

// verifyAll reads every value back and checks it byte for byte, and that
// there are exactly n.
func verifyAll(db *bbolt.DB, n int) error {
	return db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketName).Cursor()
		i := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if !bytes.Equal(k, key(i)) || !bytes.Equal(v, value(i)) {
				return fmt.Errorf("value %d differs", i)
			}
			i++
		}
		if i != n {
			return fmt.Errorf("read %d values, want %d", i, n)
		}
		return nil
	})
}

func mustFileRSS(tb testing.TB) int64 {
	tb.Helper()
	rss, err := FileRSS()
	if err != nil {
		tb.Fatal(err)
	}
	return rss
}

const mib = 1 << 20

// TestTrimmerDropsResidency reads a 200 MiB file, which maps it all in, and
// checks that the trimmer takes the mapped-file RSS below its budget and
// that every value still reads back unchanged.
func TestTrimmerDropsResidency(t *testing.T) {
	skipUnlessLinux(t)
	const n = 200 * mib / 4096 // ~200 MiB of values, one page each
	const budget = 64 * mib
	db := mustOpen(t, "big.db")
	if err := fill(db, 0, n, 2048); err != nil {
		t.Fatal(err)
	}

	base := mustFileRSS(t)
	if err := verifyAll(db, n); err != nil {
		t.Fatal(err)
	}
	read := mustFileRSS(t)
	if read-base < 150*mib {
		t.Fatalf("reading 200 MiB raised RssFile+RssShmem by %d MiB only; is the file mapped?", (read-base)/mib)
	}

	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr := Start(Options{Budget: budget, Interval: 10 * time.Millisecond, Logger: log}, db)
	trimmed := read
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		// RSS falls during a trim; Stats count it once it is done.
		if trimmed = mustFileRSS(t); trimmed <= budget && tr.Stats().Advised >= 150*mib {
			break
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("mapped-file RSS: %d MiB after fill, %d MiB after reading all, %d MiB after trim (budget %d MiB); %+v",
		base/mib, read/mib, trimmed/mib, budget/mib, tr.Stats())
	if trimmed > budget {
		t.Errorf("mapped-file RSS %d MiB after trimming, want at most %d MiB", trimmed/mib, budget/mib)
	}
	if s := tr.Stats(); s.Trims == 0 || s.Advised < 150*mib {
		t.Errorf("Stats = %+v, want a trim advising the whole file", s)
	}
	if err := verifyAll(db, n); err != nil {
		t.Errorf("after trimming: %v", err)
	}
}

// TestTrimmerConcurrentRemap trims as often as it can while a writer grows
// the file, so bbolt remaps it many times (the mapping doubles from 32 KiB),
// and readers check values and keep copies on the heap, which a madvise on
// a stale mapping address could zero.
func TestTrimmerConcurrentRemap(t *testing.T) {
	skipUnlessLinux(t)
	const n, batch, readers = 64 * mib / 4096, 64, 4
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	for round := range rounds {
		db := mustOpen(t, fmt.Sprintf("remap%d.db", round))
		tr := Start(Options{Budget: 1, Interval: time.Millisecond}, db)
		t.Cleanup(func() { _ = tr.Close() })

		var (
			written atomic.Int64 // values committed so far
			done    = make(chan struct{})
			wg      sync.WaitGroup
			errs    = make(chan error, readers+2)
			addrsMu sync.Mutex
			addrs   = map[uintptr]bool{}
		)
		wg.Go(func() { // writer
			defer close(done)
			for start := 0; start < n; start += batch {
				if err := fill(db, start, start+batch, batch); err != nil {
					errs <- err
					return
				}
				written.Store(int64(start + batch))
			}
		})
		wg.Go(func() { // explicit trims on top of the sampling goroutine
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := tr.Trim(t.Context()); err != nil {
					errs <- err
					return
				}
			}
		})
		for r := range readers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), uint64(r)))
				var kept [][]byte // heap copies, checked again later
				for j := 0; ; j++ {
					select {
					case <-done:
						errs <- checkKept(kept)
						return
					default:
					}
					w := int(written.Load())
					if w == 0 {
						runtime.Gosched()
						continue
					}
					i := rng.IntN(w)
					err := db.View(func(tx *bbolt.Tx) error {
						addrsMu.Lock()
						addrs[db.Info().Data] = true
						addrsMu.Unlock()
						v := tx.Bucket(bucketName).Get(key(i))
						if !bytes.Equal(v, value(i)) {
							return fmt.Errorf("value %d differs during round %d", i, round)
						}
						kept = append(kept, bytes.Clone(v))
						return nil
					})
					if err == nil && len(kept) == 256 {
						err = checkKept(kept)
						kept = kept[:0]
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := verifyAll(db, n); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		path := db.Path()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d mapping addresses seen by readers; %+v", round, len(addrs), tr.Stats())
		if s := tr.Stats(); s.Trims == 0 || s.Advised == 0 {
			t.Errorf("round %d: Stats = %+v, want trims", round, s)
		}

		// The file itself is intact too.
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		err = verifyAll(db, n)
		_ = db.Close()
		if err != nil {
			t.Fatalf("round %d after reopening: %v", round, err)
		}
	}
}

// checkKept checks heap copies of values against their keys' content.
func checkKept(kept [][]byte) error {
	for _, v := range kept {
		i := int(binary.BigEndian.Uint64(v))
		if !bytes.Equal(v, value(i)) {
			return fmt.Errorf("heap copy of value %d was altered", i)
		}
	}
	return nil
}

func TestTrimmerClose(t *testing.T) {
	skipUnlessLinux(t)
	t.Run("StopsGoroutine", func(t *testing.T) {
		db := mustOpen(t, "close.db")
		if err := fill(db, 0, 100, 100); err != nil {
			t.Fatal(err)
		}
		tr := Start(Options{Budget: 1, Interval: time.Millisecond}, db)
		time.Sleep(20 * time.Millisecond)
		if err := tr.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-tr.done:
		default:
			t.Fatal("sampling goroutine still running after Close")
		}
		s := tr.Stats()
		if s.Trims == 0 {
			t.Error("no trims before Close")
		}
		time.Sleep(20 * time.Millisecond)
		if got := tr.Stats(); got != s {
			t.Errorf("Stats changed after Close: %+v, then %+v", s, got)
		}
		if err := tr.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	t.Run("DatabaseClosedFirst", func(t *testing.T) {
		db := mustOpen(t, "closed.db")
		if err := fill(db, 0, 100, 100); err != nil {
			t.Fatal(err)
		}
		tr := Start(Options{Budget: 1, Interval: time.Millisecond}, db)
		defer tr.Close()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if n, err := tr.Trim(t.Context()); n != 0 || err != nil {
			t.Errorf("Trim of a closed database = %d, %v; want 0, nil", n, err)
		}
	})
	t.Run("TrimCancelled", func(t *testing.T) {
		db := mustOpen(t, "cancel.db")
		tr := Start(Options{}, db)
		defer tr.Close()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := tr.Trim(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Trim with a cancelled context = %v, want context.Canceled", err)
		}
	})
}

// BenchmarkRandomRead reads random 4 KB values of a 200 MiB file with no
// trimmer, with one at the default settings and with one trimming every
// 10 ms, and reports the mapped-file RSS at the end.
func BenchmarkRandomRead(b *testing.B) {
	skipUnlessLinux(b)
	const n = 200 * mib / 4096
	db := mustOpen(b, "bench.db")
	if err := fill(db, 0, n, 2048); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		opts *Options
	}{
		{"NoTrimmer", nil},
		{"Trimmer", &Options{}},
		{"TrimmerEvery10ms", &Options{Budget: 1, Interval: 10 * time.Millisecond}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if bc.opts != nil {
				tr := Start(*bc.opts, db)
				defer tr.Close()
			}
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, valueSize)
				for pb.Next() {
					err := db.View(func(tx *bbolt.Tx) error {
						copy(buf, tx.Bucket(bucketName).Get(key(rand.IntN(n))))
						return nil
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(mustFileRSS(b))/mib, "rss-file-MiB")
		})
	}
}
