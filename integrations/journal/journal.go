// Package journal is the embedded stack's access-log outbox: an
// append-only file in which each access entry is made durable with one
// group-committed fdatasync before the record's content leaves, to be cut
// into ledger blocks by a consent.OutboxWorker moments later.
//
// A read on the embedded ledger used to commit its entry as a block of its
// own: one bbolt transaction, two fsyncs (pages, then meta page) plus
// signing, per read. The journal needs one fsync, shared by every entry
// that arrives while the previous one runs, and keeps the ledger work off
// the read path, exactly as the Fabric outbox does (docs/ARCHITECTURE.md).
//
// # File format
//
// The file is a sequence of frames: a little-endian uint32 payload length,
// a little-endian uint32 CRC-32C of the payload, then the payload, a JSON
// object. An "e" frame holds a new pending entry; an "a" frame marks
// entries anchored with their tx and block. Opening replays the file.
//
// The file is extended ahead of the frames, preallocateChunk bytes of
// zeros at a time, so that a commit overwrites blocks the file system has
// already allocated and its fdatasync need not also commit a new file size
// (a third cheaper on ext4 here). Zeros after the last frame are that
// space, not damage.
//
// A torn tail is the remains of a write that was never acknowledged: a
// frame cut short or failing its checksum, with nothing but zeros after
// tornWindow bytes from it (a commit writes at most that much, and the
// disk may have kept any part of an unfinished one). It is cut off. A bad
// frame followed by more data than that is corruption, and Open refuses it
// (EINTEGRITY) rather than drop acknowledged entries.
//
// When enough anchored entries have accumulated, the journal is compacted:
// the pending entries are written to a new file, which replaces the old one
// atomically (write, fsync, rename, fsync of the directory). Entries
// anchored before a compaction are on the ledger, and no longer listed
// here.
//
// After a failed write or fsync the journal fails closed: every later call
// returns EUNAVAILABLE until it is reopened, since the kernel may have
// dropped the unwritten pages (an fsync error cannot be retried safely).
package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/medshare/medshare/consent"
)

// DefaultCompactAfter is Options.CompactAfter's default.
const DefaultCompactAfter = 10_000

// preallocateChunk is how far the file is extended with zeros when a
// commit would run past its end.
const preallocateChunk = 1 << 20

// tornWindow bounds the bytes one commit writes (a single larger frame is
// written alone): only within it, after a bad frame, can an unacknowledged
// write have left data.
const tornWindow = 64 << 10

// Options configure Open.
type Options struct {
	// Path is the journal file; its directory is created (0700) if needed
	// and the file is created with mode 0600.
	Path string
	// CompactAfter is the number of anchored entries held before the file
	// is compacted; 0 → DefaultCompactAfter.
	CompactAfter int
	// Now stamps OutboxEntry.Enqueued; default time.Now.
	Now func() time.Time
	// Logger receives compaction and failure events; default slog.Default.
	Logger *slog.Logger
}

// Journal is a consent.Outbox on an append-only file. It is safe for
// concurrent use.
type Journal struct {
	path         string
	compactAfter int
	now          func() time.Time
	logger       *slog.Logger

	mu         sync.Mutex
	f          *os.File
	size       int64 // end of the last frame: where the next commit writes
	alloc      int64 // file size: size, then zeros up to here
	failed     error // sticky: set by a failed write, fsync or compaction
	closed     bool
	committing bool            // a caller is writing the queue
	idle       sync.Cond       // signalled when committing ends
	compactAt  int             // anchored count that triggers the next compaction
	queue      []byte          // frames waiting to be written
	ops        []*op           // their waiters, in queue order
	inflight   map[string]bool // entry ids queued, not yet durable
	writes     int             // fsync'd appends, for tests of grouping

	byID      map[string]*item
	all       []*item            // every held entry, by (time, id)
	byPatient map[string][]*item // the same, per patientRef
	pending   int
	anchored  int
}

var _ consent.Outbox = (*Journal)(nil)

// Open opens or creates the journal at o.Path and replays it.
func Open(o Options) (*Journal, error) {
	if o.Path == "" {
		return nil, errors.New("journal: no path")
	}
	j := &Journal{
		path: o.Path, compactAfter: o.CompactAfter, now: o.Now, logger: o.Logger,
		inflight: map[string]bool{}, byID: map[string]*item{}, byPatient: map[string][]*item{},
	}
	if j.compactAfter <= 0 {
		j.compactAfter = DefaultCompactAfter
	}
	j.compactAt = j.compactAfter
	j.idle.L = &j.mu
	if j.now == nil {
		j.now = time.Now
	}
	if j.logger == nil {
		j.logger = slog.Default()
	}
	dir := filepath.Dir(o.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: create %s: %w", dir, err)
	}
	_, statErr := os.Stat(o.Path)
	f, err := os.OpenFile(o.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", o.Path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := j.replay(f); err != nil {
		f.Close()
		return nil, err
	}
	j.f = f
	return j, nil
}

// replay applies every good frame of f, cuts a torn tail off and leaves
// f's offset at the end.
func (j *Journal) replay(f *os.File) error {
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("journal: read %s: %w", j.path, err)
	}
	good, err := scan(j.path, data, func(fr *frame) {
		switch fr.T {
		case "e":
			if _, dup := j.byID[fr.Entry.ID]; !dup {
				j.hold(consent.OutboxEntry{Entry: *fr.Entry, Status: consent.OutboxPending, Enqueued: fr.Enqueued})
			}
		case "a":
			j.markAnchored(fr.IDs, fr.Tx, fr.Block)
		}
	})
	if err != nil {
		return err
	}
	j.size, j.alloc = int64(good), int64(len(data))
	if good < len(data) && !allZero(data[good:]) {
		j.logger.Warn("journal: cutting off a torn tail (an unacknowledged write)", "path", j.path, "offset", good, "bytes", len(data)-good)
		if err := f.Truncate(int64(good)); err != nil {
			return fmt.Errorf("journal: truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("journal: sync after truncate: %w", err)
		}
		j.alloc = j.size
	}
	return nil
}

// validEntry holds an entry to what every outbox requires (the contract
// checks the rest when it is anchored).
func validEntry(e *consent.AccessEntry) error {
	switch y := e.Time.UTC().Year(); {
	case !consent.ValidID(e.ID):
		return consent.Errorf(consent.EINVALID, "access entry id %q is invalid", e.ID)
	case e.PatientRef == "" || len(e.PatientRef) > 128 || strings.ContainsAny(e.PatientRef, "/\x00"):
		return consent.Errorf(consent.EINVALID, "access entry %s: patientRef is invalid", e.ID)
	case e.Time.IsZero() || y < 0 || y > 9999:
		return consent.Errorf(consent.EINVALID, "access entry %s: time is missing or out of range", e.ID)
	}
	return nil
}

// Enqueue implements consent.Outbox: e is pending once Enqueue returns,
// its frame fsync'd together with those of concurrent callers. Its time is
// kept in UTC. ECONFLICT for an id the journal holds or is writing;
// EINVALID for an invalid id, patientRef or time; EUNAVAILABLE once the
// journal has failed or closed.
func (j *Journal) Enqueue(ctx context.Context, e consent.AccessEntry) error {
	if err := validEntry(&e); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "enqueue access entry %s", e.ID)
	}
	e.Time = e.Time.UTC()
	o := consent.OutboxEntry{Entry: e, Status: consent.OutboxPending, Enqueued: j.now().UTC().Truncate(time.Millisecond)}
	b, err := encodeFrame(&frame{T: "e", Entry: &o.Entry, Enqueued: o.Enqueued})
	if err != nil {
		return err
	}
	j.mu.Lock()
	if _, dup := j.byID[e.ID]; dup || j.inflight[e.ID] {
		j.mu.Unlock()
		return consent.Errorf(consent.ECONFLICT, "access entry %q already exists", e.ID)
	}
	j.inflight[e.ID] = true
	return j.commitLocked(b, func() {
		delete(j.inflight, e.ID)
		j.hold(o)
	}, func() { delete(j.inflight, e.ID) })
}

// MarkEntriesAnchored implements consent.Outbox. Unknown ids are ignored;
// repeating the call is harmless. The mark is journaled too, so a restart
// does not send the entries again (if it did, the contract would skip
// them).
func (j *Journal) MarkEntriesAnchored(ctx context.Context, ids []string, tx string, block uint64) error {
	if len(ids) == 0 {
		return nil
	}
	b, err := encodeFrame(&frame{T: "a", IDs: ids, Tx: tx, Block: block})
	if err != nil {
		return err
	}
	j.mu.Lock()
	return j.commitLocked(b, func() { j.markAnchored(ids, tx, block) }, nil)
}

// Close waits for a write under way and closes the file. Later calls
// return EUNAVAILABLE; entries still pending are anchored after the next
// Open.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	for j.committing {
		j.idle.Wait() // the committing caller writes without the lock
	}
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("journal: close %s: %w", j.path, err)
	}
	return nil
}
