package journal

// Compaction: rewriting the file with only the entries still held.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medshare/medshare/consent"
)

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
