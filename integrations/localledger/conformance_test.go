package localledger

import (
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
)

// TestConformance runs the contract host conformance suite, the same one
// the in-memory fake and the Fabric chaincode must pass, on a real bbolt file.
func TestConformance(t *testing.T) {
	consenttest.Run(t, func(t *testing.T) consent.Ledger {
		return MustOpen(t, Options{Now: time.Now})
	})
}
