//go:build !linux

package journal

import "os"

// datasync flushes f; without fdatasync, a full fsync.
func datasync(f *os.File) error { return f.Sync() }
