//go:build linux

package residency

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"
)

// supported reports whether trimming works on this system.
const supported = true

// FileRSS returns the process's resident memory that maps files: RssFile
// plus RssShmem (files on tmpfs count there) from /proc/self/status, in
// bytes. It needs Linux 4.5 or later.
func FileRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	rss, err := parseFileRSS(b)
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	return rss, nil
}

// parseFileRSS sums the RssFile and RssShmem lines of a /proc/<pid>/status
// file.
func parseFileRSS(status []byte) (int64, error) {
	var total int64
	found := 0
	for line := range bytes.Lines(status) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || (string(name) != "RssFile" && string(name) != "RssShmem") {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed %s line %q", name, bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed %s line: %w", name, err)
		}
		total += kb << 10
		found++
	}
	if found != 2 {
		return 0, errors.New("no RssFile and RssShmem lines in /proc/self/status")
	}
	return total, nil
}

// trimDB drops db's mapping from the page tables, chunkSize bytes per read
// transaction, and returns the number of bytes advised. A closed db, or one
// opened with Mlock, is skipped.
func trimDB(ctx context.Context, db *bbolt.DB, pageSize uintptr) (int64, error) {
	if db.Mlock {
		return 0, nil
	}
	var total int64
	for off := uintptr(0); ; {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := trimChunk(db, off, pageSize)
		if err != nil || n == 0 {
			return total, err
		}
		total += int64(n)
		off += n
	}
}

// trimChunk advises MADV_DONTNEED for up to chunkSize bytes of db's mapping
// from offset off, inside one read transaction, and returns how many bytes
// it advised: 0 once off is past the end, or when db is closed.
//
// The transaction is what makes the address safe to use. DB.beginTx takes
// db.mmaplock.RLock and Tx.Rollback (via DB.removeTx) releases it, while
// DB.mmap, the only place that unmaps or remaps (bbolt v1.4.3 db.go,
// mmap: "db.mmaplock.Lock()" before "db.munmap()"), needs it exclusively; so
// does DB.Close. Between Begin and Rollback the mapping is exactly the one
// DB.Info reports, and its length is at least both bounds taken below.
func trimChunk(db *bbolt.DB, off, pageSize uintptr) (uintptr, error) {
	tx, err := db.Begin(false)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) || errors.Is(err, berrors.ErrInvalidMapping) {
		return 0, nil // nothing mapped
	}
	if err != nil {
		return 0, fmt.Errorf("begin read transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a read transaction's Rollback only releases locks

	// Begin succeeded, so db.data is non-nil and Info cannot panic.
	addr := db.Info().Data

	// Bound 1: the high-water mark this transaction reads up to. Every page
	// below it is read straight from the mapping (DB.page), and
	// DB.allocate remaps to at least (pgid+count+1)*pageSize before it
	// moves the high-water mark, with a mapping that only ever grows
	// (DB.mmapSize(max(fileSize, minsz)) with minsz >= the old size).
	limit := uintptr(tx.Size())

	// Bound 2: what the kernel says is mapped at addr. It holds regardless
	// of bbolt's internals and refuses anything but a shared, read-only
	// file mapping from offset 0 (so MADV_DONTNEED cannot discard data).
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("read mappings: %w", err)
	}
	extent, err := mappedExtent(maps, addr)
	_ = maps.Close() // read-only procfs file
	if err != nil {
		return 0, fmt.Errorf("mapping at %#x: %w", addr, err)
	}
	limit = min(limit, extent)
	// madvise rounds the length up to a page: round down so it cannot
	// reach past the bound.
	limit -= limit % pageSize

	if off >= limit {
		return 0, nil
	}
	n := min(uintptr(chunkSize), limit-off)
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr+off, n, unix.MADV_DONTNEED); errno != 0 {
		return 0, fmt.Errorf("madvise %#x+%d: %w", addr+off, n, errno)
	}
	return n, nil
}

// mappedExtent returns the length of the file mapping that starts at addr,
// read from a /proc/<pid>/maps listing: the first area must start at addr,
// map a file from offset 0 and be shared and not writable; areas that
// continue it (adjacent, same file, contiguous offsets, same permissions)
// extend it, since the kernel splits one mmap into several areas when, say,
// part of it is mlocked.
func mappedExtent(r io.Reader, addr uintptr) (uintptr, error) {
	sc := bufio.NewScanner(r)
	var (
		end    uintptr // end of the extent so far; 0 until the first area
		first  mapArea
		offEnd uint64 // file offset of end
	)
	for sc.Scan() {
		a, err := parseMapArea(sc.Text())
		if err != nil {
			return 0, err
		}
		switch {
		case end == 0 && a.start == addr:
			if a.inode == 0 || a.offset != 0 || a.perms[1] != '-' || a.perms[3] != 's' {
				return 0, fmt.Errorf("not a shared read-only file mapping: %q", sc.Text())
			}
			first, end, offEnd = a, a.end, uint64(a.end-a.start)
		case end == 0:
			if a.start > addr {
				return 0, errors.New("no mapping starts there")
			}
		case a.start == end && a.dev == first.dev && a.inode == first.inode &&
			a.offset == offEnd && a.perms == first.perms:
			end, offEnd = a.end, offEnd+uint64(a.end-a.start)
		default:
			return end - addr, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read mappings: %w", err)
	}
	if end == 0 {
		return 0, errors.New("no mapping starts there")
	}
	return end - addr, nil
}

// mapArea is one line of /proc/<pid>/maps.
type mapArea struct {
	start, end uintptr
	perms      string // e.g. "r--s"
	offset     uint64
	dev        string
	inode      uint64
}

// parseMapArea parses "start-end perms offset dev inode [path]".
func parseMapArea(line string) (mapArea, error) {
	f := strings.Fields(line)
	if len(f) < 5 || len(f[1]) != 4 {
		return mapArea{}, fmt.Errorf("malformed mapping %q", line)
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapArea{}, fmt.Errorf("malformed mapping %q", line)
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	offset, err3 := strconv.ParseUint(f[2], 16, 64)
	inode, err4 := strconv.ParseUint(f[4], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil || end <= start {
		return mapArea{}, fmt.Errorf("malformed mapping %q", line)
	}
	return mapArea{
		start: uintptr(start), end: uintptr(end), perms: f[1],
		offset: offset, dev: f[3], inode: inode,
	}, nil
}
