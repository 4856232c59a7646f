package jwt

import (
	"context"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
)

// FuzzVerify feeds arbitrary strings to Verify: none may panic and none may
// verify, since nothing the fuzzer builds carries a signature by the
// verifier's key. Committed seeds live in testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	trusted := MustIssuer(f, MustKey(f))
	v := MustVerifier(f, trusted.PublicKey())
	// A token of another issuer is well-formed and close to valid; its
	// header, kid and claims give the fuzzer good material to mutate.
	foreign, err := MustIssuer(f, MustKey(f)).Mint("dr-1", RoleProvider, "hospital-b", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(foreign)
	f.Add("")
	f.Add("..")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(ctx, token)
		if err == nil {
			t.Fatalf("verified %q as %+v", token, c)
		}
		if code := consent.ErrorCode(err); code != consent.EUNAUTHORIZED {
			t.Fatalf("code %s, want %s: %v", code, consent.EUNAUTHORIZED, err)
		}
	})
}
