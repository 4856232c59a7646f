package journal

// Group commit: batching writes into one write and one fdatasync, and failing closed.

import (
	"fmt"
	"os"

	"github.com/medshare/medshare/consent"
)

// op is one queued frame's waiter and the change it makes once durable.
type op struct {
	n     int // the frame's length in the queue
	apply func()
	done  chan error
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
