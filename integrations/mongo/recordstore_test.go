package mongo

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/mongo/mongotest"
	"github.com/medshare/medshare/records"
	"github.com/medshare/medshare/records/recordstest"
)

func TestRecordStore(t *testing.T) {
	uri := mongotest.StartFerretDB(t)
	var n atomic.Int64
	recordstest.Run(t, func(t *testing.T) records.Store {
		// A database per subtest gives each an empty store on one server.
		return MustOpen(t, uri, fmt.Sprintf("medshare_test_%d", n.Add(1)))
	})
}

func TestPing(t *testing.T) {
	t.Run("ErrUnavailable_ServerStopped", func(t *testing.T) {
		srv := mongotest.StartServer(t)
		s := MustOpen(t, srv.URI(), "medshare")
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping before stop = %v, want nil", err)
		}
		srv.Stop() // the client still holds pooled connections to it

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if got := consent.ErrorCode(s.Ping(ctx)); got != consent.EUNAVAILABLE {
			t.Errorf("Ping after stop: code %q, want %q", got, consent.EUNAVAILABLE)
		}
		_, err := s.Record(ctx, "r1")
		if got := consent.ErrorCode(err); got != consent.EUNAVAILABLE {
			t.Errorf("Record after stop = %v (code %q), want %q", err, got, consent.EUNAVAILABLE)
		}
	})
}

func TestOpen(t *testing.T) {
	t.Run("OK_Twice", func(t *testing.T) {
		uri := mongotest.StartFerretDB(t)
		MustOpen(t, uri, "medshare")
		MustOpen(t, uri, "medshare") // existing indexes are fine
	})
	t.Run("ErrUnavailable_NoServer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := Open(ctx, "mongodb://127.0.0.1:1/", "medshare")
		if got := consent.ErrorCode(err); got != consent.EUNAVAILABLE {
			t.Errorf("Open = %v (code %q), want %q", err, got, consent.EUNAVAILABLE)
		}
	})
	t.Run("ErrInvalid_BadURI", func(t *testing.T) {
		_, err := Open(t.Context(), "postgres://nope", "medshare")
		if got := consent.ErrorCode(err); got != consent.EINVALID {
			t.Errorf("Open = %v (code %q), want %q", err, got, consent.EINVALID)
		}
	})
	t.Run("ErrInvalid_NoDatabase", func(t *testing.T) {
		_, err := Open(t.Context(), "mongodb://127.0.0.1:1/", "")
		if got := consent.ErrorCode(err); got != consent.EINVALID {
			t.Errorf("Open = %v (code %q), want %q", err, got, consent.EINVALID)
		}
	})
}

// MustOpen opens a store on database at uri and closes it when the test
// ends.
func MustOpen(tb testing.TB, uri, database string) *RecordStore {
	tb.Helper()
	s, err := Open(tb.Context(), uri, database)
	if err != nil {
		tb.Fatalf("Open(%s): %v", database, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}
