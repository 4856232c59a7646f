// Package residency keeps the resident memory of bbolt's memory map in
// check.
//
// bbolt reads through a read-only, shared mmap of the whole file. Every page
// a reader touches stays mapped into the process, so after random reads over
// a large file the process's file-backed RSS approaches the file size even
// though the Go heap is small. The pages are clean copies of the file held by
// the kernel's page cache: dropping them from this process's page tables
// frees nothing that cannot be faulted back in (a minor fault, no disk I/O
// while the page cache keeps them).
//
// A Trimmer samples the process's mapped-file RSS (RssFile + RssShmem in
// /proc/self/status) every Options.Interval and, when it exceeds
// Options.Budget, drops bbolt's mappings with madvise(MADV_DONTNEED). It is a
// no-op on systems other than Linux.
//
// # Safety against remapping
//
// bbolt replaces its mapping when the file grows (DB.mmap, called from
// DB.allocate), munmapping the old region, after which Go may map something
// else, its heap for instance, at the same addresses. MADV_DONTNEED on such
// memory would zero it. A Trimmer therefore never uses an address outside an
// open read transaction: bbolt's remap takes DB.mmaplock exclusively and
// every read transaction holds it shared from DB.beginTx until Tx.Rollback,
// so while the transaction is open the mapping at DB.Info().Data can neither
// move nor shrink. The length advised is at most the smaller of two bounds,
// each alone sufficient:
//
//   - Tx.Size(), the transaction's high-water mark (meta pgid × page size).
//     bbolt reads any page below it straight from the mapping, and
//     DB.allocate remaps to cover a page before moving the high-water mark
//     past it; remaps only grow the mapping.
//   - the extent, from /proc/self/maps, of the shared, read-only file mapping
//     that starts at that address, which is the kernel's own record of what
//     is mapped there.
//
// The file size is not a safe bound: once the mapping exceeds DB.AllocSize,
// DB.grow extends the file to the high-water mark plus DB.AllocSize without
// remapping, so the file can be longer than the mapping (observed: a
// 33,710,080-byte file under a 33,554,432-byte mapping).
package residency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// Defaults for zero Options fields.
const (
	// DefaultBudget is the mapped-file RSS above which a Trimmer trims.
	DefaultBudget = 128 << 20
	// DefaultInterval is how often a Trimmer samples the RSS. Between two
	// samples the RSS can exceed the budget by what readers fault in, and
	// the kernel maps up to 64 KiB around each fault (fault-around): about
	// 90 MiB/s at 2000 random 4 KiB reads/s. A sample costs ~10 µs, so
	// sampling often is cheap; trims happen only over budget.
	DefaultInterval = 250 * time.Millisecond
)

// chunkSize bounds the range advised under one read transaction, so a
// writer that needs to remap waits for at most a few milliseconds.
const chunkSize = 64 << 20

// Options configure a Trimmer.
type Options struct {
	// Budget is the mapped-file RSS of the whole process, in bytes, above
	// which the Trimmer drops its databases' pages. It counts every
	// file-backed page of the process, the executable's included, so it must
	// leave room for those. Zero or negative: DefaultBudget.
	Budget int64
	// Interval is how often the RSS is sampled. Zero or negative:
	// DefaultInterval.
	Interval time.Duration
	// Logger receives debug traces of each trim. Default discards.
	Logger *slog.Logger
}

// Stats counts a Trimmer's work since Start.
type Stats struct {
	// Trims is the number of times the databases' mappings were dropped.
	Trims int64
	// Advised is the total length of the ranges passed to madvise, in
	// bytes: an upper bound on what was dropped.
	Advised int64
}

// Trimmer drops the resident pages of bbolt mappings when the process's
// mapped-file RSS exceeds a budget. Its methods are safe for concurrent use.
type Trimmer struct {
	dbs      []*bbolt.DB
	budget   int64
	interval time.Duration
	log      *slog.Logger
	pageSize uintptr

	mu        sync.Mutex // serializes trims; guards lastAfter
	lastAfter int64      // mapped-file RSS right after the last trim

	trims   atomic.Int64
	advised atomic.Int64

	cancel    context.CancelFunc
	done      chan struct{} // closed when the sampling goroutine has exited
	closeOnce sync.Once
}

// Start returns a Trimmer for dbs and, on Linux, starts its sampling
// goroutine; Close stops it. Each db must stay open until Close returns or
// be closed by its owner, after which the Trimmer skips it. A db opened with
// Mlock is skipped: locked pages cannot be dropped.
func Start(o Options, dbs ...*bbolt.DB) *Trimmer {
	t := &Trimmer{
		dbs:      dbs,
		budget:   o.Budget,
		interval: o.Interval,
		log:      o.Logger,
		pageSize: uintptr(os.Getpagesize()),
		done:     make(chan struct{}),
	}
	if t.budget <= 0 {
		t.budget = DefaultBudget
	}
	if t.interval <= 0 {
		t.interval = DefaultInterval
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	if !supported {
		close(t.done)
		return t
	}
	go t.run(ctx)
	return t
}

// Close stops the sampling goroutine and waits for it, and for a trim in
// progress, to finish. Calling it again does nothing; it always returns nil.
func (t *Trimmer) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		<-t.done
	})
	return nil
}

// Stats returns the work done so far.
func (t *Trimmer) Stats() Stats {
	return Stats{Trims: t.trims.Load(), Advised: t.advised.Load()}
}

// Trim drops the resident pages of every database now, whatever the RSS,
// and returns the number of bytes advised. It stops early with ctx's error.
// A database closed by its owner is skipped.
func (t *Trimmer) Trim(ctx context.Context) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.trimLocked(ctx)
}

// trimLocked trims every database; t.mu must be held. Stats count the
// trim and what it advised even when ctx ends it part way (Close during a
// trim).
func (t *Trimmer) trimLocked(ctx context.Context) (int64, error) {
	var total int64
	defer func() {
		t.trims.Add(1)
		t.advised.Add(total)
	}()
	var errs []error
	for _, db := range t.dbs {
		n, err := trimDB(ctx, db, t.pageSize)
		total += n
		if err != nil {
			if ctx.Err() != nil {
				return total, fmt.Errorf("trim %s: %w", db.Path(), ctx.Err())
			}
			errs = append(errs, fmt.Errorf("trim %s: %w", db.Path(), err))
		}
	}
	return total, errors.Join(errs...)
}

// run samples the RSS every interval until ctx is cancelled.
func (t *Trimmer) run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := t.maybeTrim(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errNoRSS) {
				t.log.Warn("residency trimmer stopped", "err", err)
				return
			}
			t.log.Debug("residency trim failed", "err", err)
		}
	}
}

// errNoRSS marks a failure to read the RSS, after which sampling stops.
var errNoRSS = errors.New("cannot read RSS")

// maybeTrim trims when the mapped-file RSS exceeds the budget and has grown
// by more than a sixteenth of it since the last trim. The second condition
// keeps a budget smaller than the process's other file-backed pages (its
// executable, say) from trimming at every tick.
func (t *Trimmer) maybeTrim(ctx context.Context) error {
	before, err := FileRSS()
	if err != nil {
		return fmt.Errorf("%w: %w", errNoRSS, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if before <= t.budget || before-t.lastAfter <= t.budget/16 {
		return nil
	}
	start := time.Now()
	advised, err := t.trimLocked(ctx)
	after, rerr := FileRSS()
	if rerr != nil {
		return fmt.Errorf("%w: %w", errNoRSS, rerr)
	}
	t.lastAfter = after
	t.log.Debug("residency trimmed",
		"rss_file_before", before, "rss_file_after", after, "budget", t.budget,
		"advised", advised, "took", time.Since(start))
	return err
}
