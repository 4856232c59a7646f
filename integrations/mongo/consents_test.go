package mongo

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
	"github.com/medshare/medshare/integrations/mongo/mongotest"
)

// TestConsentStoreAndOutbox runs the read-model and outbox conformance
// suite on FerretDB. consenttest.RunConcurrentSaves is not run here:
// FerretDB applies conditional updates non-atomically (read, then write),
// so racing versions of one consent can end on an older one there, while
// MongoDB, which production uses, evaluates and writes atomically.
func TestConsentStoreAndOutbox(t *testing.T) {
	uri := mongotest.StartFerretDB(t)
	var n atomic.Int64
	consenttest.RunStores(t, func(t *testing.T) interface {
		consent.ConsentStore
		consent.Outbox
	} {
		// A database per subtest gives each an empty store on one server.
		return MustOpen(t, uri, fmt.Sprintf("medshare_readmodel_%d", n.Add(1)))
	})
}
