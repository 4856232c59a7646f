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
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/medshare/medshare/consent"
)

// DefaultCompactAfter is Options.CompactAfter's default.
const DefaultCompactAfter = 10_000

// defaultLimit is the page size of listings without a limit.
const defaultLimit = 100

// maxFrame bounds a frame's payload; an access entry is well under 4 KiB,
// an anchored frame lists at most one batch of ids.
const maxFrame = 16 << 20

// frameHeader is the length and checksum in front of each payload.
const frameHeader = 8

// preallocateChunk is how far the file is extended with zeros when a
// commit would run past its end.
const preallocateChunk = 1 << 20

// tornWindow bounds the bytes one commit writes (a single larger frame is
// written alone): only within it, after a bad frame, can an unacknowledged
// write have left data.
const tornWindow = 64 << 10

var crcTable = crc32.MakeTable(crc32.Castagnoli)

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

// item is one held entry.
type item struct {
	o   consent.OutboxEntry
	key sortKey
}

// sortKey orders entries by time, then id.
type sortKey struct {
	t  time.Time
	id string
}

func (a sortKey) compare(b sortKey) int {
	return cmp.Or(a.t.Compare(b.t), strings.Compare(a.id, b.id))
}

// op is one queued frame's waiter and the change it makes once durable.
type op struct {
	n     int // the frame's length in the queue
	apply func()
	done  chan error
}

// frame is a payload.
type frame struct {
	T        string               `json:"t"` // "e" entry, "a" anchored
	Entry    *consent.AccessEntry `json:"e,omitempty"`
	Enqueued time.Time            `json:"q,omitzero"`
	IDs      []string             `json:"ids,omitempty"`
	Tx       string               `json:"tx,omitempty"`
	Block    uint64               `json:"b,omitempty"`
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

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 })
}

// scan calls fn with each frame of data, in order, and returns the length
// of the good prefix: less than len(data) when a torn tail follows it.
// EINTEGRITY for a bad frame followed by more data, or an undecodable one.
func scan(path string, data []byte, fn func(*frame)) (int, error) {
	off := 0
	for off < len(data) {
		payload, n, err := decodeFrame(data[off:])
		if err != nil {
			if !torn(data[off:]) {
				return off, consent.WrapError(consent.EINTEGRITY, err, "journal %s is corrupt at offset %d", path, off)
			}
			return off, nil
		}
		var fr frame
		if err := json.Unmarshal(payload, &fr); err != nil {
			return off, consent.WrapError(consent.EINTEGRITY, err, "journal %s: undecodable frame at offset %d", path, off)
		}
		if (fr.T != "e" || fr.Entry == nil) && fr.T != "a" {
			return off, consent.Errorf(consent.EINTEGRITY, "journal %s: unknown frame %q at offset %d", path, fr.T, off)
		}
		fn(&fr)
		off += n
	}
	return off, nil
}

// Report is what Inspect found in a journal file.
type Report struct {
	Entries  int  // entries held (pending, or anchored since the last compaction)
	Pending  int  // entries not yet marked anchored
	TornTail bool // the file ends in an unacknowledged, partial write (not just preallocated zeros)
}

// Inspect checks the journal file at path without changing it (a torn
// tail is reported, not cut off). EINTEGRITY for a corrupt file; an error
// wrapping os.ErrNotExist when there is none.
func Inspect(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("journal: read %s: %w", path, err)
	}
	status := map[string]bool{} // id → anchored
	good, err := scan(path, data, func(fr *frame) {
		if fr.T == "e" {
			if _, dup := status[fr.Entry.ID]; !dup {
				status[fr.Entry.ID] = false
			}
			return
		}
		for _, id := range fr.IDs {
			if _, ok := status[id]; ok {
				status[id] = true
			}
		}
	})
	if err != nil {
		return nil, err
	}
	r := &Report{Entries: len(status), TornTail: !allZero(data[good:])}
	for _, anchored := range status {
		if !anchored {
			r.Pending++
		}
	}
	return r, nil
}

// decodeFrame returns the payload of the frame at the start of b and the
// frame's length.
func decodeFrame(b []byte) ([]byte, int, error) {
	if len(b) < frameHeader {
		return nil, 0, errors.New("short frame header")
	}
	n := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if n == 0 || n > maxFrame {
		return nil, 0, fmt.Errorf("frame length %d out of range", n)
	}
	if uint64(len(b)-frameHeader) < uint64(n) {
		return nil, 0, errors.New("frame cut short")
	}
	payload := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(payload, crcTable) != sum {
		return nil, 0, errors.New("frame checksum mismatch")
	}
	return payload, frameHeader + int(n), nil
}

// torn reports whether rest, which starts with a bad frame, can be the
// remains of one unacknowledged write: nothing but zeros (preallocated
// space) lies beyond tornWindow bytes from its start, or beyond the frame
// its header claims when that is longer (a large frame is written alone).
func torn(rest []byte) bool {
	extent := uint64(tornWindow)
	if len(rest) >= frameHeader {
		if n := binary.LittleEndian.Uint32(rest); n > 0 && n <= maxFrame {
			extent = max(extent, uint64(n)+frameHeader)
		}
	}
	return extent >= uint64(len(rest)) || allZero(rest[extent:])
}

// encodeFrame returns fr as a frame.
func encodeFrame(fr *frame) ([]byte, error) {
	payload, err := json.Marshal(fr)
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "encode journal frame")
	}
	if len(payload) > maxFrame {
		return nil, consent.Errorf(consent.ETOOLARGE, "journal frame of %d bytes is too large", len(payload))
	}
	b := make([]byte, frameHeader, frameHeader+len(payload))
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, crcTable))
	return append(b, payload...), nil
}

// syncDir fsyncs a directory, so a file created or renamed in it survives
// a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal: sync dir %s: %w", dir, err)
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

// commitLocked queues frame b and returns once it is durable, apply having
// run, or failed, abort having run. Called with j.mu held; returns with it
// released. The first caller to find no write under way writes the queue,
// and goes on writing what queued meanwhile, so one fsync covers every
// entry that arrived during the previous one (group commit, no fixed
// delay).
func (j *Journal) commitLocked(b []byte, apply, abort func()) error {
	if err := j.usableLocked(); err != nil {
		if abort != nil {
			abort()
		}
		j.mu.Unlock()
		return err
	}
	me := &op{n: len(b), apply: apply, done: make(chan error, 1)}
	j.queue = append(j.queue, b...)
	j.ops = append(j.ops, me)
	if j.committing {
		j.mu.Unlock()
		err := <-me.done
		if err != nil && abort != nil {
			j.mu.Lock()
			abort()
			j.mu.Unlock()
		}
		return err
	}
	j.committing = true
	for len(j.ops) > 0 {
		buf, ops := j.takeLocked()
		if j.failed != nil {
			for _, o := range ops {
				o.done <- consent.WrapError(consent.EUNAVAILABLE, j.failed, "journal write failed")
			}
			continue
		}
		j.mu.Unlock()
		err := j.write(buf)
		j.mu.Lock()
		if err != nil {
			j.failLocked(err)
			for _, o := range ops {
				o.done <- consent.WrapError(consent.EUNAVAILABLE, err, "journal write failed")
			}
			continue // fail what queued meanwhile too
		}
		j.writes++
		for _, o := range ops {
			if o.apply != nil {
				o.apply()
			}
		}
		if j.anchored >= j.compactAt {
			j.compactLocked()
		}
		for _, o := range ops {
			o.done <- nil
		}
	}
	j.committing = false
	j.idle.Broadcast()
	err := <-me.done
	if err != nil && abort != nil {
		abort()
	}
	j.mu.Unlock()
	return err
}

// usableLocked returns EUNAVAILABLE once the journal failed or closed.
func (j *Journal) usableLocked() error {
	switch {
	case j.failed != nil:
		return consent.WrapError(consent.EUNAVAILABLE, j.failed, "access-log journal failed; restart to recover")
	case j.closed:
		return consent.Errorf(consent.EUNAVAILABLE, "access-log journal is closed")
	}
	return nil
}

// failLocked makes the journal fail closed.
func (j *Journal) failLocked(err error) {
	if j.failed == nil {
		j.failed = err
		j.logger.Error("access-log journal failed; refusing writes until restart", "path", j.path, "err", err)
	}
}

// takeLocked removes from the queue the frames of the next write: the
// oldest ones, up to tornWindow bytes (at least one frame).
func (j *Journal) takeLocked() ([]byte, []*op) {
	n, size := 0, 0
	for n < len(j.ops) && (n == 0 || size+j.ops[n].n <= tornWindow) {
		size += j.ops[n].n
		n++
	}
	buf, ops := j.queue[:size:size], j.ops[:n:n]
	j.queue, j.ops = j.queue[size:], j.ops[n:]
	if len(j.ops) == 0 {
		j.queue, j.ops = nil, nil
	}
	return buf, ops
}

// write writes buf after the last frame and makes it durable. When buf
// would run past the preallocated space, the same write extends the file
// with zeros first. Only the committing caller calls it (j.mu released),
// so writes never interleave; j.size and j.alloc move only on success.
func (j *Journal) write(buf []byte) error {
	end := j.size + int64(len(buf))
	alloc := j.alloc
	if end > alloc {
		alloc = (end/preallocateChunk + 1) * preallocateChunk
		buf = append(buf[:len(buf):len(buf)], make([]byte, alloc-end)...)
	}
	if _, err := j.f.WriteAt(buf, j.size); err != nil {
		return fmt.Errorf("write to %s: %w", j.path, err)
	}
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("fsync %s: %w", j.path, err)
	}
	j.size, j.alloc = end, alloc
	return nil
}

// compactLocked replaces the file with one holding only the pending
// entries, and forgets the anchored ones. A failure before the rename
// leaves the old file in use and is retried after as many anchored entries
// again; a failure after it fails the journal closed, since it can no
// longer tell which file its handle names.
func (j *Journal) compactLocked() {
	keep := make([]*item, 0, j.pending)
	var buf bytes.Buffer
	for _, it := range j.all {
		if it.o.Status != consent.OutboxPending {
			continue
		}
		b, err := encodeFrame(&frame{T: "e", Entry: &it.o.Entry, Enqueued: it.o.Enqueued})
		if err != nil {
			j.compactFailed(err)
			return
		}
		buf.Write(b)
		keep = append(keep, it)
	}
	tmp := j.path + ".compact"
	f, err := writeNew(tmp, buf.Bytes())
	if err != nil {
		_ = os.Remove(tmp)
		j.compactFailed(err)
		return
	}
	if err := os.Rename(tmp, j.path); err != nil {
		f.Close()
		_ = os.Remove(tmp)
		j.compactFailed(fmt.Errorf("rename %s: %w", tmp, err))
		return
	}
	old := j.f
	j.f, j.size, j.alloc = f, int64(buf.Len()), int64(buf.Len())
	_ = old.Close()
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		j.failLocked(fmt.Errorf("compact: %w", err))
		return
	}
	dropped := j.anchored
	j.all, j.byID, j.byPatient = nil, make(map[string]*item, len(keep)), map[string][]*item{}
	j.pending, j.anchored, j.compactAt = 0, 0, j.compactAfter
	for _, it := range keep {
		j.hold(it.o)
	}
	j.logger.Debug("access-log journal compacted", "path", j.path, "anchored_dropped", dropped, "pending_kept", len(keep))
}

// compactFailed logs a compaction that left the old file in place and
// puts the next attempt off.
func (j *Journal) compactFailed(err error) {
	j.compactAt = j.anchored + j.compactAfter
	j.logger.Warn("access-log journal compaction failed; keeping the current file", "path", j.path, "err", err)
}

// writeNew creates path (0600) holding b, fsync'd, and returns it open
// for appending.
func writeNew(path string, b []byte) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	return f, nil
}

// hold adds a pending entry to the in-memory indexes.
func (j *Journal) hold(o consent.OutboxEntry) {
	it := &item{o: o, key: sortKey{o.Entry.Time, o.Entry.ID}}
	j.byID[o.Entry.ID] = it
	j.all = insertSorted(j.all, it)
	j.byPatient[o.Entry.PatientRef] = insertSorted(j.byPatient[o.Entry.PatientRef], it)
	j.pending++
}

// insertSorted inserts it into s, kept sorted by key; entries mostly
// arrive in time order, so this is usually an append.
func insertSorted(s []*item, it *item) []*item {
	if n := len(s); n == 0 || s[n-1].key.compare(it.key) < 0 {
		return append(s, it)
	}
	i, _ := slices.BinarySearchFunc(s, it.key, func(x *item, k sortKey) int { return x.key.compare(k) })
	return slices.Insert(s, i, it)
}

// markAnchored records where entries went.
func (j *Journal) markAnchored(ids []string, tx string, block uint64) {
	for _, id := range ids {
		it, ok := j.byID[id]
		if !ok {
			continue
		}
		if it.o.Status == consent.OutboxPending {
			j.pending--
			j.anchored++
		}
		it.o.Status, it.o.Tx, it.o.Block = consent.OutboxAnchored, tx, block
	}
}

// limitOf validates limit and returns its effective value.
func limitOf(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, consent.Errorf(consent.EINVALID, "limit %d is negative", limit)
	case limit == 0:
		return defaultLimit, nil
	}
	return limit, nil
}

// PendingEntries implements consent.Outbox: up to limit (0 → 100) pending
// entries, oldest first by entry time then id. EINVALID for a negative
// limit.
func (j *Journal) PendingEntries(ctx context.Context, limit int) ([]consent.OutboxEntry, error) {
	return j.list("", "", limit, true)
}

// OutboxEntries implements consent.Outbox over the entries the journal
// holds: every pending entry, and those anchored since the last
// compaction. EINVALID for a negative limit or an after cursor naming no
// held entry.
func (j *Journal) OutboxEntries(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	return j.list(patientRef, after, limit, false)
}

// ListPending implements consent.Outbox: the held entries are filtered
// in memory, and compaction bounds how many anchored ones they include.
// EINVALID for a negative limit or an after cursor naming no held entry.
func (j *Journal) ListPending(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	return j.list(patientRef, after, limit, true)
}

// list returns up to limit held entries of patientRef (all patients when
// empty) after the cursor, only the pending ones if pendingOnly.
func (j *Journal) list(patientRef, after string, limit int, pendingOnly bool) ([]consent.OutboxEntry, error) {
	limit, err := limitOf(limit)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usableLocked(); err != nil {
		return nil, err
	}
	s := j.all
	if patientRef != "" {
		s = j.byPatient[patientRef]
	}
	if after != "" {
		cur, ok := j.byID[after]
		if !ok {
			return nil, consent.Errorf(consent.EINVALID, "cursor %q names no access entry", after)
		}
		i, found := slices.BinarySearchFunc(s, cur.key, func(x *item, k sortKey) int { return x.key.compare(k) })
		if found {
			i++
		}
		s = s[i:]
	}
	out := make([]consent.OutboxEntry, 0, min(limit, len(s)))
	for _, it := range s {
		if len(out) == limit {
			break
		}
		if !pendingOnly || it.o.Status == consent.OutboxPending {
			out = append(out, it.o)
		}
	}
	return out, nil
}

// Pending returns how many entries wait for anchoring.
func (j *Journal) Pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.pending
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
