package recordstest_test

import (
	"testing"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
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

// TestMemStoreReadModel holds the fake's consent read model and outbox to
// the same contract as the real stores'.
func TestMemStoreReadModel(t *testing.T) {
	consenttest.RunStores(t, func(t *testing.T) interface {
		consent.ConsentStore
		consent.Outbox
	} {
		s := recordstest.NewMemStore()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestMemStoreConcurrentConsentSaves checks the fake keeps the newest of
// racing consent versions.
func TestMemStoreConcurrentConsentSaves(t *testing.T) {
	consenttest.RunConcurrentSaves(t, func(t *testing.T) consent.ConsentStore {
		return recordstest.NewMemStore()
	})
}
