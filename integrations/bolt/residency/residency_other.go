//go:build !linux

package residency

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// supported reports whether trimming works on this system.
const supported = false

// FileRSS returns the process's resident memory that maps files. It is
// only implemented on Linux; elsewhere it returns errors.ErrUnsupported.
func FileRSS() (int64, error) {
	return 0, fmt.Errorf("read RSS: %w", errors.ErrUnsupported)
}

// trimDB does nothing outside Linux.
func trimDB(context.Context, *bbolt.DB, uintptr) (int64, error) { return 0, nil }
