package localledger

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
)

// testNow is the fixed clock of most tests, so results are comparable.
func testNow() time.Time { return time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC) }

// MustKey returns a fresh P-256 node key.
func MustKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// MustOpen opens a ledger at o.Path (default: a file in a temp dir) with a
// fixed clock unless o sets one, and closes it at the end of the test.
func MustOpen(tb testing.TB, o Options) *Ledger {
	tb.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(tb.TempDir(), "ledger", "ledger.db")
	}
	if o.Key == nil {
		o.Key = MustKey(tb)
	}
	if o.Now == nil {
		o.Now = testNow
	}
	l, err := Open(context.Background(), o)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

// MustJSON encodes v.
func MustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// MustRef returns the pseudonym of patient or subject id.
func MustRef(tb testing.TB, id string) string {
	tb.Helper()
	p, err := consent.NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		tb.Fatal(err)
	}
	return p.PatientRef(id)
}

// MustRegister registers a hospital with id through svc.
func MustRegister(tb testing.TB, svc *consent.Service, id string) consent.Receipt {
	tb.Helper()
	_, rcpt, err := svc.RegisterOrg(context.Background(), consent.RegisterOrgArgs{ID: id, Name: "Org " + id, Type: consent.OrgHospital})
	if err != nil {
		tb.Fatalf("register %s: %v", id, err)
	}
	return rcpt
}

// dumpState returns every world-state entry of an open ledger.
func dumpState(tb testing.TB, l *Ledger) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketState)).ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// wantCode fails unless err carries code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := consent.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
}

// asVerifyError returns err as a *VerifyError or fails.
func asVerifyError(tb testing.TB, err error) *VerifyError {
	tb.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		tb.Fatalf("err = %v, want *VerifyError", err)
	}
	return ve
}
