package journal

// Read-only inspection of a journal file (medshare ledger verify).

import (
	"fmt"
	"os"
)

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
