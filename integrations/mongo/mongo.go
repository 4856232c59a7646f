// Package mongo implements medshare's stores on MongoDB, for production
// deployments that set MEDSHARE_MONGO_URI. It is the only package that
// imports the MongoDB driver.
//
// Every method changes at most one document, atomically, and is safe to
// repeat: the stores need no multi-document transactions. The one
// exception, MarkEntriesAnchored, updates several outbox entries, each
// atomically on its own; a partial update is finished by repeating it. Writes use write
// concern majority with journaling and reads use read concern majority,
// unless the connection URI says otherwise (w=, journal=, readConcernLevel=).
//
// Driver errors become *consent.Error: a duplicate key is ECONFLICT; network
// errors, timeouts, failed server selection, a connection pool cleared by a
// network error and a closed client are EUNAVAILABLE; anything else is
// EINTERNAL. The driver's message stays in the cause and never reaches
// Message.
//
// Tests run against FerretDB (see mongotest), which speaks the wire protocol
// but accepts and ignores write and read concerns; the durability settings
// above are therefore only exercised against a real MongoDB.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readconcern"
	"go.mongodb.org/mongo-driver/mongo/readpref"
	"go.mongodb.org/mongo-driver/mongo/writeconcern"

	"github.com/medshare/medshare/consent"
)

// Timeouts of the client. Server selection fails after serverSelection
// when no server answers, so a down database is reported within seconds
// rather than hanging requests.
const (
	serverSelectionTimeout = 5 * time.Second
	connectTimeout         = 5 * time.Second
	closeTimeout           = 5 * time.Second
)

// connect returns a client for uri, checked with a ping. EINVALID for a
// malformed uri; EUNAVAILABLE if no server answers.
func connect(ctx context.Context, uri string) (*mongo.Client, error) {
	journal := true
	wc := writeconcern.Majority()
	wc.Journal = &journal
	// Defaults first: ApplyURI overrides only what the URI sets.
	opts := options.Client().
		SetServerSelectionTimeout(serverSelectionTimeout).
		SetConnectTimeout(connectTimeout).
		SetWriteConcern(wc).
		SetReadConcern(readconcern.Majority()).
		SetReadPreference(readpref.Primary()).
		ApplyURI(uri)
	if err := opts.Validate(); err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "invalid MongoDB connection URI")
	}
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return nil, wrapError(err, "connect to MongoDB")
	}
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		_ = disconnect(client) // the first error matters
		return nil, consent.WrapError(consent.EUNAVAILABLE, err, "MongoDB is unavailable")
	}
	return client, nil
}

// disconnect closes client; a client already closed is not an error.
func disconnect(client *mongo.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := client.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
		return wrapError(err, "disconnect from MongoDB")
	}
	return nil
}

// ping returns EUNAVAILABLE unless the primary answers.
func ping(ctx context.Context, client *mongo.Client) error {
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "MongoDB is unavailable")
	}
	return nil
}

// index is one index a store needs; name is fixed so start-up is
// idempotent and a changed definition fails loudly instead of piling up.
type index struct {
	name   string
	keys   bson.D
	unique bool
}

// ensureIndexes creates missing indexes of coll. An index of the same name
// with other keys or options is an error (EINTERNAL): drop it by hand.
//
// Indexes are created one per command: FerretDB v1.24 panics on a
// createIndexes that lists several indexes which all exist (it deletes from
// the list it iterates), and one command per index costs MongoDB nothing
// that matters at start-up.
func ensureIndexes(ctx context.Context, coll *mongo.Collection, indexes []index) error {
	for _, ix := range indexes {
		o := options.Index().SetName(ix.name)
		if ix.unique {
			o.SetUnique(true)
		}
		if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: o}); err != nil {
			return wrapError(err, "create index %s on %s", ix.name, coll.Name())
		}
	}
	return nil
}

// Server error codes that mean "try again later": the server is stepping
// down, shutting down or cannot reach its peers.
var unavailableCodes = []int{
	6,     // HostUnreachable
	7,     // HostNotFound
	64,    // WriteConcernFailed (wtimeout)
	89,    // NetworkTimeout
	91,    // ShutdownInProgress
	189,   // PrimarySteppedDown
	10107, // NotWritablePrimary
	11600, // InterruptedAtShutdown
	11602, // InterruptedDueToReplStateChange
	13435, // NotPrimaryNoSecondaryOk
	13436, // NotPrimaryOrSecondary
}

// wrapError turns a driver error into a *consent.Error whose Message is the
// formatted operation, never the driver's text. ECONFLICT for a duplicate
// key, EUNAVAILABLE when the server cannot be reached or timed out,
// EINTERNAL otherwise; a *consent.Error passes through with context added.
func wrapError(err error, format string, args ...any) error {
	var e *consent.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
	case mongo.IsDuplicateKeyError(err):
		return consent.WrapError(consent.ECONFLICT, err, format, args...)
	case unavailable(err):
		return consent.WrapError(consent.EUNAVAILABLE, err, "MongoDB is unavailable: "+format, args...)
	default:
		return consent.WrapError(consent.EINTERNAL, err, format, args...)
	}
}

// retryablePool is the driver's RetryablePoolError: a connection checkout
// that failed because the pool was cleared after another operation's
// network error. The driver retries it once; when the retry fails too (or
// retries are off), it returns this error, which carries no label.
type retryablePool interface {
	error
	Retryable() bool
}

// unavailable reports whether err means the server could not be reached or
// did not answer in time, as opposed to rejecting the request.
func unavailable(err error) bool {
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, mongo.ErrClientDisconnected) || errors.Is(err, context.Canceled) {
		return true
	}
	// A connection that failed during its handshake (refused, reset) comes
	// back unlabeled, wrapping the dial's *net.OpError.
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true
	}
	if rp, ok := errors.AsType[retryablePool](err); ok && rp.Retryable() {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, code := range unavailableCodes {
			if se.HasErrorCode(code) {
				return true
			}
		}
		if se.HasErrorLabel("RetryableWriteError") {
			return true
		}
		return interruptedInternal(err)
	}
	return false
}

// interruptedInternal reports a server-side InternalError (code 1) whose
// cause is the server's own cancelled context. FerretDB answers this way,
// rather than with InterruptedAtShutdown, for operations in flight while it
// shuts down; the request was not rejected, the server went away under it.
func interruptedInternal(err error) bool {
	ce, ok := errors.AsType[mongo.CommandError](err)
	if !ok {
		var we mongo.WriteException
		if errors.As(err, &we) {
			for _, e := range we.WriteErrors {
				if e.Code == 1 && strings.Contains(e.Message, "context canceled") {
					return true
				}
			}
		}
		return false
	}
	return ce.Code == 1 && strings.Contains(ce.Message, "context canceled")
}
