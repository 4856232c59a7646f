package mongo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"go.mongodb.org/mongo-driver/mongo"

	"github.com/medshare/medshare/consent"
)

func TestWrapError(t *testing.T) {
	tests := []struct {
		note string
		err  error
		want string
	}{
		{"nil stays nil", nil, ""},
		{"duplicate key is a conflict",
			mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 11000, Message: "E11000 driver secret"}}}, consent.ECONFLICT},
		{"network error label", mongo.CommandError{Labels: []string{"NetworkError"}, Message: "driver secret"}, consent.EUNAVAILABLE},
		{"server shutting down", mongo.CommandError{Code: 91, Name: "ShutdownInProgress", Message: "driver secret"}, consent.EUNAVAILABLE},
		{"primary stepped down in a write", mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 189, Message: "driver secret"}}, consent.EUNAVAILABLE},
		{"deadline", fmt.Errorf("driver secret: %w", context.DeadlineExceeded), consent.EUNAVAILABLE},
		{"canceled", fmt.Errorf("driver secret: %w", context.Canceled), consent.EUNAVAILABLE},
		{"closed client", mongo.ErrClientDisconnected, consent.EUNAVAILABLE},
		{"connection pool cleared", poolCleared{}, consent.EUNAVAILABLE},
		{"refused during the handshake", fmt.Errorf("connection() error occurred during connection handshake: driver secret: %w",
			&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), consent.EUNAVAILABLE},
		{"server interrupted by its own shutdown (FerretDB)",
			mongo.CommandError{Code: 1, Name: "InternalError", Message: "[update.go:59] driver secret: context canceled after delay"}, consent.EUNAVAILABLE},
		{"same in a write error",
			mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 1, Message: "driver secret: context canceled"}}}, consent.EUNAVAILABLE},
		{"other internal error", mongo.CommandError{Code: 1, Name: "InternalError", Message: "driver secret"}, consent.EINTERNAL},
		{"rejected command", mongo.CommandError{Code: 2, Name: "BadValue", Message: "driver secret"}, consent.EINTERNAL},
		{"anything else", errors.New("driver secret"), consent.EINTERNAL},
		{"domain error keeps its code", consent.Errorf(consent.ENOTFOUND, "record r1 not found"), consent.ENOTFOUND},
	}
	for _, tt := range tests {
		err := wrapError(tt.err, "get record %s", "r1")
		if got := consent.ErrorCode(err); got != tt.want {
			t.Errorf("%s: code %q, want %q", tt.note, got, tt.want)
		}
		if tt.err == nil {
			continue
		}
		if msg := consent.ErrorMessage(err); strings.Contains(msg, "secret") || !strings.Contains(msg, "r1") {
			t.Errorf("%s: message %q leaks the cause or lacks the operation", tt.note, msg)
		}
		if !strings.Contains(err.Error(), tt.err.Error()) {
			t.Errorf("%s: %v does not keep its cause for the logs", tt.note, err)
		}
	}
}

// poolCleared stands in for the driver's unexported poolClearedError.
type poolCleared struct{}

func (poolCleared) Error() string   { return "connection pool was cleared: driver secret" }
func (poolCleared) Retryable() bool { return true }
