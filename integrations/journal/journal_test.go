package journal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
)

var t0 = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

func entry(id, patient string, at time.Time) consent.AccessEntry {
	return consent.AccessEntry{ID: id, Time: at, Action: "read", RecordID: "r-1", PatientRef: patient,
		ActorRef: "actor-1", Role: "provider", Org: "hospital-a", Decision: consent.DecisionAllow, Reasons: []string{"ok"}}
}

func mustOpen(t testing.TB, path string, o Options) *Journal {
	t.Helper()
	o.Path = path
	j, err := Open(o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func mustEnqueue(t testing.TB, j *Journal, es ...consent.AccessEntry) {
	t.Helper()
	for _, e := range es {
		if err := j.Enqueue(t.Context(), e); err != nil {
			t.Fatalf("Enqueue(%s): %v", e.ID, err)
		}
	}
}

func listIDs(t testing.TB, j *Journal) (all, pending []string) {
	t.Helper()
	os, err := j.OutboxEntries(t.Context(), "", "", 1_000_000)
	if err != nil {
		t.Fatalf("OutboxEntries: %v", err)
	}
	for _, o := range os {
		all = append(all, o.Entry.ID)
	}
	ps, err := j.PendingEntries(t.Context(), 1_000_000)
	if err != nil {
		t.Fatalf("PendingEntries: %v", err)
	}
	for _, o := range ps {
		pending = append(pending, o.Entry.ID)
	}
	return all, pending
}

func TestConformance(t *testing.T) {
	consenttest.RunOutbox(t, func(t *testing.T) consent.Outbox {
		return mustOpen(t, filepath.Join(t.TempDir(), "access.journal"), Options{})
	})
}

// TestConformanceAfterReopen runs the suite on a journal that is closed
// and reopened after every write, so each check reads what replay rebuilt
// from the file.
func TestConformanceAfterReopen(t *testing.T) {
	consenttest.RunOutbox(t, func(t *testing.T) consent.Outbox {
		return &reopening{t: t, path: filepath.Join(t.TempDir(), "access.journal")}
	})
}

// reopening is a consent.Outbox that reopens its journal after each write.
type reopening struct {
	t    *testing.T
	path string
	mu   sync.Mutex
	j    *Journal
}

func (r *reopening) journal() *Journal {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.j == nil {
		r.j = mustOpen(r.t, r.path, Options{})
	}
	return r.j
}

func (r *reopening) reopen() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.j != nil {
		r.j.Close()
		r.j = nil
	}
}

func (r *reopening) Enqueue(ctx context.Context, e consent.AccessEntry) error {
	err := r.journal().Enqueue(ctx, e)
	r.reopenUnlessConcurrent()
	return err
}

// reopenUnlessConcurrent reopens only when the suite is not enqueueing from
// several goroutines at once (a reopen would close the file under them).
func (r *reopening) reopenUnlessConcurrent() {
	if !strings.Contains(r.t.Name(), "Concurrent") && !strings.Contains(r.t.Name(), "DefaultLimit") {
		r.reopen()
	}
}

func (r *reopening) PendingEntries(ctx context.Context, limit int) ([]consent.OutboxEntry, error) {
	return r.journal().PendingEntries(ctx, limit)
}

func (r *reopening) ListPending(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	return r.journal().ListPending(ctx, patientRef, after, limit)
}

func (r *reopening) MarkEntriesAnchored(ctx context.Context, ids []string, tx string, block uint64) error {
	err := r.journal().MarkEntriesAnchored(ctx, ids, tx, block)
	r.reopen()
	return err
}

func (r *reopening) OutboxEntries(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	return r.journal().OutboxEntries(ctx, patientRef, after, limit)
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ledger")
	path := filepath.Join(dir, "access.journal")
	j := mustOpen(t, path, Options{})
	mustEnqueue(t, j, entry("e-1", "p-1", t0))
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestTornTailIsCutOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.journal")
	j := mustOpen(t, path, Options{})
	mustEnqueue(t, j, entry("e-1", "p-1", t0), entry("e-2", "p-1", t0.Add(time.Second)))
	j.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	good = bytes.TrimRight(good, "\x00") // the frames, without the preallocated zeros
	third, err := encodeFrame(&frame{T: "e", Entry: new(entry("e-3", "p-1", t0.Add(2*time.Second))), Enqueued: t0})
	if err != nil {
		t.Fatal(err)
	}
	tails := map[string][]byte{
		"half a header":       third[:5],
		"header only":         third[:frameHeader],
		"frame cut short":     third[:len(third)-3],
		"bad checksum at end": append(append([]byte{}, third[:len(third)-1]...), third[len(third)-1]^0xff),
		"zeros":               make([]byte, 4096),
		// A commit into preallocated space whose first sectors were lost
		// and whose last were kept.
		"hole then data then zeros": append(append(make([]byte, 512), third[512%len(third):]...), make([]byte, 8192)...),
		"half a header then zeros":  append(append([]byte{}, third[:5]...), make([]byte, 8192)...),
		"bad checksum then zeros":   append(append(append([]byte{}, third[:len(third)-1]...), third[len(third)-1]^0xff), make([]byte, 8192)...),
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, append(append([]byte{}, good...), tail...), 0o600); err != nil {
				t.Fatal(err)
			}
			j := mustOpen(t, path, Options{})
			if all, _ := listIDs(t, j); strings.Join(all, ",") != "e-1,e-2" {
				t.Fatalf("after a torn tail (%s): %v, want e-1,e-2", name, all)
			}
			// The journal goes on from the good prefix.
			mustEnqueue(t, j, entry("e-4", "p-1", t0.Add(3*time.Second)))
			j.Close()
			j = mustOpen(t, path, Options{})
			if all, _ := listIDs(t, j); strings.Join(all, ",") != "e-1,e-2,e-4" {
				t.Fatalf("after reopening: %v, want e-1,e-2,e-4", all)
			}
			j.Close()
		})
	}
}

func TestCorruptionIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.journal")
	j := mustOpen(t, path, Options{})
	// More than tornWindow of frames after the damaged one (a damaged
	// frame within the last window is cut off as torn: see
	// TestDamageInTheLastWindowIsTorn).
	for i := range 2 * tornWindow / 400 {
		mustEnqueue(t, j, entry(fmt.Sprintf("e-%04d", i), "p-1", t0.Add(time.Duration(i)*time.Second)))
	}
	j.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[frameHeader+10] ^= 0x01 // inside the first frame's payload
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{Path: path})
	if consent.ErrorCode(err) != consent.EINTEGRITY || !strings.Contains(err.Error(), "offset 0") {
		t.Fatalf("Open of a journal corrupt at its first frame: %v, want EINTEGRITY naming offset 0", err)
	}
}

func TestReplayKeepsStatuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.journal")
	j := mustOpen(t, path, Options{})
	mustEnqueue(t, j, entry("e-1", "p-1", t0), entry("e-2", "p-2", t0.Add(time.Second)), entry("e-3", "p-1", t0.Add(2*time.Second)))
	if err := j.MarkEntriesAnchored(t.Context(), []string{"e-1", "e-3"}, "tx-9", 9); err != nil {
		t.Fatal(err)
	}
	before, err := j.OutboxEntries(t.Context(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = mustOpen(t, path, Options{})
	after, err := j.OutboxEntries(t.Context(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("replay changed the journal:\nbefore %v\nafter  %v", before, after)
	}
	if _, p := listIDs(t, j); strings.Join(p, ",") != "e-2" || j.Pending() != 1 {
		t.Fatalf("pending after replay: %v (%d), want e-2", p, j.Pending())
	}
}

func TestCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.journal")
	j := mustOpen(t, path, Options{CompactAfter: 50})
	var ids []string
	for i := range 120 {
		e := entry(fmt.Sprintf("e-%03d", i), "p-1", t0.Add(time.Duration(i)*time.Second))
		mustEnqueue(t, j, e)
		ids = append(ids, e.ID)
	}
	sizeFull := fileSize(t, path)
	// Anchor all but the last 20, in two marks: the second crosses the
	// threshold and compacts.
	if err := j.MarkEntriesAnchored(t.Context(), ids[:40], "tx-1", 1); err != nil {
		t.Fatal(err)
	}
	if err := j.MarkEntriesAnchored(t.Context(), ids[40:100], "tx-2", 2); err != nil {
		t.Fatal(err)
	}
	all, pending := listIDs(t, j)
	if strings.Join(all, ",") != strings.Join(ids[100:], ",") || strings.Join(pending, ",") != strings.Join(ids[100:], ",") {
		t.Fatalf("after compaction: held %v, pending %v; want the 20 unanchored", all, pending)
	}
	if s := fileSize(t, path); s*4 > sizeFull {
		t.Errorf("compacted file is %d bytes, the full one was %d", s, sizeFull)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	// Writes after compaction go to the new file and survive a reopen.
	mustEnqueue(t, j, entry("e-200", "p-1", t0.Add(200*time.Second)))
	if err := j.MarkEntriesAnchored(t.Context(), ids[100:101], "tx-3", 3); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = mustOpen(t, path, Options{CompactAfter: 50})
	_, pending = listIDs(t, j)
	want := append(append([]string{}, ids[101:]...), "e-200")
	if strings.Join(pending, ",") != strings.Join(want, ",") {
		t.Fatalf("after reopen: pending %v, want %v", pending, want)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestFailsClosed breaks the file under the journal: the failed write is
// refused with EUNAVAILABLE, the entry is not held, and every later call is
// refused too, even once the file would work again.
func TestFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.journal")
	j := mustOpen(t, path, Options{})
	mustEnqueue(t, j, entry("e-1", "p-1", t0))
	j.f.Close() // the next write fails
	if err := j.Enqueue(t.Context(), entry("e-2", "p-1", t0)); consent.ErrorCode(err) != consent.EUNAVAILABLE {
		t.Fatalf("Enqueue on a broken file: %v, want EUNAVAILABLE", err)
	}
	if _, ok := j.byID["e-2"]; ok {
		t.Fatal("an entry that was not made durable is held")
	}
	for name, err := range map[string]error{
		"Enqueue":             j.Enqueue(t.Context(), entry("e-3", "p-1", t0)),
		"MarkEntriesAnchored": j.MarkEntriesAnchored(t.Context(), []string{"e-1"}, "tx", 1),
		"PendingEntries":      second(j.PendingEntries(t.Context(), 0)),
		"OutboxEntries":       second(j.OutboxEntries(t.Context(), "", "", 0)),
	} {
		if consent.ErrorCode(err) != consent.EUNAVAILABLE {
			t.Errorf("%s after a failed write: %v, want EUNAVAILABLE", name, err)
		}
	}
	// Reopening recovers what was durable.
	j2 := mustOpen(t, path, Options{})
	if all, _ := listIDs(t, j2); strings.Join(all, ",") != "e-1" {
		t.Fatalf("after reopening: %v, want e-1", all)
	}
}

func second[T any](_ T, err error) error { return err }

// TestGroupCommit enqueues from many goroutines and checks that they share
// fsyncs: fewer writes than entries.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.journal")
	j := mustOpen(t, path, Options{})
	var writes, entries int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 20 {
				if err := j.Enqueue(t.Context(), entry(fmt.Sprintf("e-%02d-%02d", w, i), "p-1", t0)); err != nil {
					t.Error(err)
				}
				mu.Lock()
				entries++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	writes = j.writes
	if entries != 640 || j.Pending() != 640 {
		t.Fatalf("%d enqueued, %d pending, want 640", entries, j.Pending())
	}
	t.Logf("%d entries in %d fsyncs", entries, writes)
	if writes >= entries {
		t.Errorf("%d fsyncs for %d concurrent entries: no group commit", writes, entries)
	}
}

// TestKill9 runs a child process that enqueues as fast as it can and
// prints each id once Enqueue has returned; the parent kills it with
// SIGKILL and checks that every printed id is in the reopened journal.
func TestKill9(t *testing.T) {
	if path := os.Getenv("JOURNAL_KILL9_CHILD"); path != "" {
		j, err := Open(Options{Path: path})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(2)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := 0; ; i++ {
					id := fmt.Sprintf("e-%d-%d-%d", os.Getpid(), w, i)
					if err := j.Enqueue(context.Background(), entry(id, "p-1", time.Now())); err != nil {
						fmt.Println("enqueue:", err)
						os.Exit(2)
					}
					mu.Lock()
					fmt.Println(id)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return
	}
	path := filepath.Join(t.TempDir(), "access.journal")
	acked := map[string]bool{}
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
		cmd.Env = append(os.Environ(), "JOURNAL_KILL9_CHILD="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() && n < 300+round*100 {
			if line := sc.Text(); strings.HasPrefix(line, "e-") {
				acked[line] = true
				n++
			} else {
				t.Fatalf("child: %s", line)
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() { // ids printed before the kill landed were acknowledged too
			if line := sc.Text(); strings.HasPrefix(line, "e-") {
				acked[line] = true
			}
		}
		_ = cmd.Wait()
		j := mustOpen(t, path, Options{})
		all, _ := listIDs(t, j)
		found := map[string]bool{}
		for _, id := range all {
			found[id] = true
		}
		lost := 0
		for id := range acked {
			if !found[id] {
				lost++
			}
		}
		t.Logf("kill %d: %d acknowledged in all, %d held, %d lost", round, len(acked), len(all), lost)
		if lost > 0 {
			t.Fatalf("kill %d: %d acknowledged entries lost", round, lost)
		}
		j.Close()
	}
}

func TestInspect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.journal")
	if _, err := Inspect(path); !os.IsNotExist(errors.Unwrap(err)) && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Inspect of no file: %v", err)
	}
	j := mustOpen(t, path, Options{})
	mustEnqueue(t, j, entry("e-1", "p-1", t0), entry("e-2", "p-1", t0), entry("e-3", "p-2", t0))
	if err := j.MarkEntriesAnchored(t.Context(), []string{"e-2", "e-404"}, "tx", 1); err != nil {
		t.Fatal(err)
	}
	j.Close()
	r, err := Inspect(path)
	if err != nil || *r != (Report{Entries: 3, Pending: 2}) {
		t.Fatalf("Inspect = %+v, %v; want 3 entries, 2 pending, no torn tail", r, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{9, 9, 0, 0, 1}, int64(len(bytes.TrimRight(b, "\x00")))) // a torn header after the last frame
	f.Close()
	size := fileSize(t, path)
	if r, err := Inspect(path); err != nil || !r.TornTail || r.Pending != 2 {
		t.Fatalf("Inspect with a torn tail = %+v, %v", r, err)
	}
	if fileSize(t, path) != size {
		t.Fatal("Inspect changed the file")
	}
}

// Damage within tornWindow of the end cannot be told from a commit the
// disk kept only part of: it is cut off, with what follows it.
func TestDamageInTheLastWindowIsTorn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.journal")
	j := mustOpen(t, path, Options{})
	mustEnqueue(t, j, entry("e-1", "p-1", t0), entry("e-2", "p-1", t0.Add(time.Second)), entry("e-3", "p-1", t0.Add(2*time.Second)))
	j.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := decodeFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	b[frameHeader+len(first)+frameHeader+10] ^= 0x01 // inside the second frame
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err := Inspect(path); err != nil || !r.TornTail || r.Entries != 1 {
		t.Fatalf("Inspect = %+v, %v; want 1 entry and a torn tail", r, err)
	}
	j = mustOpen(t, path, Options{})
	if all, _ := listIDs(t, j); strings.Join(all, ",") != "e-1" {
		t.Fatalf("after damage in the last window: %v, want e-1", all)
	}
}

// The file grows by preallocated chunks of zeros; commits overwrite them
// in place, and a reopen goes on after the last frame.
func TestPreallocation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.journal")
	j := mustOpen(t, path, Options{})
	mustEnqueue(t, j, entry("e-1", "p-1", t0))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != preallocateChunk {
		t.Fatalf("after one entry the file is %d bytes, want one chunk of %d", fi.Size(), preallocateChunk)
	}
	j.Close()
	for round := range 3 {
		j = mustOpen(t, path, Options{})
		if r, err := Inspect(path); err != nil || r.TornTail {
			t.Fatalf("Inspect of a preallocated journal = %+v, %v; want no torn tail", r, err)
		}
		mustEnqueue(t, j, entry(fmt.Sprintf("e-%d", round+2), "p-1", t0.Add(time.Duration(round+1)*time.Second)))
		j.Close()
	}
	j = mustOpen(t, path, Options{})
	if all, _ := listIDs(t, j); strings.Join(all, ",") != "e-1,e-2,e-3,e-4" {
		t.Fatalf("after reopening a preallocated journal: %v, want e-1..e-4", all)
	}
	// Past the first chunk, the file grows by another.
	one, err := encodeFrame(&frame{T: "e", Entry: new(entry("f-0000", "p-2", t0)), Enqueued: t0})
	if err != nil {
		t.Fatal(err)
	}
	n := preallocateChunk/len(one) + 10
	for i := range n {
		mustEnqueue(t, j, entry(fmt.Sprintf("f-%04d", i), "p-2", t0.Add(time.Duration(i)*time.Second)))
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 2*preallocateChunk {
		t.Fatalf("after a chunk's worth of entries: %v, %v; want %d bytes", fi.Size(), err, 2*preallocateChunk)
	}
	j.Close()
	j = mustOpen(t, path, Options{})
	if got := j.Pending(); got != 4+n {
		t.Fatalf("%d entries pending after reopening, want %d", got, 4+n)
	}
}

// A commit writes at most tornWindow bytes, however many frames queue.
func TestTakeBoundsAWrite(t *testing.T) {
	j := &Journal{}
	for range 100 {
		b := make([]byte, 1000)
		j.queue = append(j.queue, b...)
		j.ops = append(j.ops, &op{n: len(b)})
	}
	total := 0
	for len(j.ops) > 0 {
		buf, ops := j.takeLocked()
		if len(buf) > tornWindow || len(ops) == 0 || len(buf) != 1000*len(ops) {
			t.Fatalf("took %d bytes for %d frames", len(buf), len(ops))
		}
		total += len(ops)
	}
	if total != 100 {
		t.Fatalf("took %d frames, want 100", total)
	}
	j.queue = append(j.queue, make([]byte, 2*tornWindow)...)
	j.ops = append(j.ops, &op{n: 2 * tornWindow})
	if buf, ops := j.takeLocked(); len(buf) != 2*tornWindow || len(ops) != 1 {
		t.Fatalf("a frame larger than the window: took %d bytes, %d frames", len(buf), len(ops))
	}
}
