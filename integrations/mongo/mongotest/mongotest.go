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
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// LogEnv names the environment variable that, when set to any value, sends
// FerretDB's debug log to stderr. By default FerretDB logs nothing.
const LogEnv = "MEDSHARE_TEST_FERRETDB_LOG"

// rebindTimeout bounds how long Restart retries binding the old port,
// which the kernel may hold for a moment after the listener closed.
const rebindTimeout = 5 * time.Second

// Server is a FerretDB whose data lives in a test's temporary directory.
// It can be stopped and started again on the same address over the same
// data, to play a database outage. Its methods are safe for concurrent use.
type Server struct {
	dir    string // SQLite directory, kept across restarts
	logger *slog.Logger

	mu     sync.Mutex
	uri    string // fixed once the first start has picked a port
	addr   string // host:port of uri
	cancel context.CancelFunc
	done   chan struct{} // closed when the running instance has stopped; nil when stopped
}

// StartServer starts FerretDB on a free 127.0.0.1 port and stops it when
// the test ends. It fails the test if FerretDB cannot start.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv(LogEnv) != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := &Server{dir: tb.TempDir(), logger: logger.With("component", "ferretdb")}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.newFerretDB("127.0.0.1:0")
	if err != nil {
		tb.Fatalf("start FerretDB: %v", err)
	}
	// New has bound the listener already, so the address is known.
	s.uri = f.MongoDBURI()
	u, err := url.Parse(s.uri)
	if err != nil {
		tb.Fatalf("FerretDB URI %q: %v", s.uri, err)
	}
	s.addr = u.Host
	s.run(f)
	tb.Cleanup(s.Stop)
	return s
}

// newFerretDB binds addr and opens the SQLite directory.
func (s *Server) newFerretDB(addr string) (*ferretdb.FerretDB, error) {
	return ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Logger:    s.logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + s.dir + "/",
	})
}

// run serves f in the background until Stop. s.mu must be held.
func (s *Server) run(f *ferretdb.FerretDB) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.cancel, s.done = cancel, done
	go func() {
		defer close(done)
		_ = f.Run(ctx) // always nil; it returns once ctx is canceled
	}()
}

// URI returns the server's MongoDB connection string; it stays the same
// across restarts.
func (s *Server) URI() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uri
}

// Stop stops the server and waits until its listener and connections are
// closed, so no client can reach it afterwards. FerretDB gives connected
// clients three seconds to leave, so Stop takes that long unless every
// client has disconnected. Stopping a stopped server is a no-op.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel, s.done = nil, nil
}

// Restart stops the server if it runs, then starts it again on the same
// address over the same SQLite directory, so clients holding the URI find
// their data again once they reconnect. It retries a port the kernel still
// holds for a few seconds, then fails the test.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	deadline := time.Now().Add(rebindTimeout)
	for {
		f, err := s.newFerretDB(s.addr)
		if err == nil {
			s.run(f)
			return
		}
		// FerretDB flattens the bind error to text (it wraps with %s).
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			tb.Fatalf("restart FerretDB on %s: %v", s.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartFerretDB starts FerretDB for the length of the test and returns its
// connection string.
func StartFerretDB(tb testing.TB) (uri string) {
	tb.Helper()
	return StartServer(tb).URI()
}
