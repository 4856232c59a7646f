// Package mongotest starts an in-process FerretDB, a server speaking the
// MongoDB wire protocol over SQLite files, for tests of code that talks to
// MongoDB. Only tests import it.
//
// FerretDB is a stand-in, not MongoDB: it accepts but ignores write and
// read concerns, and it scans a collection for every query. It is good for
// checking behaviour, not durability or speed.
package mongotest

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// LogEnv names the environment variable that, when set to any value, sends
// FerretDB's debug log to stderr. By default FerretDB logs nothing.
const LogEnv = "MEDSHARE_TEST_FERRETDB_LOG"

// Server is a running FerretDB whose data lives in a test's temporary
// directory.
type Server struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
	stop   sync.Once
}

// StartServer starts FerretDB on a free 127.0.0.1 port and stops it when
// the test ends. It fails the test if FerretDB cannot start.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv(LogEnv) != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    logger.With("component", "ferretdb"),
		Handler:   "sqlite",
		SQLiteURL: "file:" + tb.TempDir() + "/",
	})
	if err != nil {
		tb.Fatalf("start FerretDB: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		f.Run(ctx) // always nil; it returns once ctx is canceled
	}()
	// New has bound the listener already, so the address is known.
	s.uri = f.MongoDBURI()
	tb.Cleanup(s.Stop)
	return s
}

// URI returns the server's MongoDB connection string.
func (s *Server) URI() string { return s.uri }

// Stop stops the server and waits until its listener and connections are
// closed, so no client can reach it afterwards. FerretDB gives connected
// clients three seconds to leave, so Stop takes that long unless every
// client has disconnected. Stopping twice is a no-op.
func (s *Server) Stop() {
	s.stop.Do(func() {
		s.cancel()
		<-s.done
	})
}

// StartFerretDB starts FerretDB for the length of the test and returns its
// connection string.
func StartFerretDB(tb testing.TB) (uri string) {
	tb.Helper()
	return StartServer(tb).URI()
}
