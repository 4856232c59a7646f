package recordstest_test

import (
	"testing"

	"github.com/medshare/medshare/records"
	"github.com/medshare/medshare/records/recordstest"
)

// TestMemStore holds the fake to the same contract as the real stores.
func TestMemStore(t *testing.T) {
	recordstest.Run(t, func(t *testing.T) records.Store {
		s := recordstest.NewMemStore()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
