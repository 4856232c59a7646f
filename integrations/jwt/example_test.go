package jwt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/jwt"
)

// The dev issuer mints a token; a Verifier built from its public key
// accepts it and turns everything else into EUNAUTHORIZED.
func ExampleVerifier() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // cmd uses jwt.LoadOrCreateKey
	iss, err := jwt.NewIssuer(key, "medshare-dev", "medshare")
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	v, err := jwt.NewVerifier(ctx, jwt.VerifierConfig{
		Issuer: "medshare-dev", Audience: "medshare",
		Keys: []*ecdsa.PublicKey{iss.PublicKey()},
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	tok, _ := iss.Mint("dr-1", jwt.RoleProvider, "hospital-b", time.Hour)
	c, err := v.Verify(ctx, tok)
	fmt.Println(c.Subject, c.Role, c.Org, err)

	_, err = v.Verify(ctx, tok[:len(tok)-4]+"AAAA")
	fmt.Println(consent.ErrorCode(err), consent.ErrorMessage(err))
	// Output:
	// dr-1 provider hospital-b <nil>
	// unauthorized token signature is invalid
}

// A receipt verifies offline against the published JWKS document.
func ExampleVerifyReceipt() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jwt.NewSigner(key)
	if err != nil {
		panic(err)
	}
	jwks, _ := jwt.JWKS(signer.PublicKey()) // served at /.well-known/jwks.json
	receipt, _ := signer.Sign([]byte(`{"claimId":"c-1","verified":true}`))

	payload, err := jwt.VerifyReceipt(receipt, jwks)
	fmt.Println(string(payload), err)
	// Output: {"claimId":"c-1","verified":true} <nil>
}
