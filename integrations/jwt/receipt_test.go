package jwt

import (
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

// MustSigner returns a receipt signer on key.
func MustSigner(tb testing.TB, key *ecdsa.PrivateKey) *Signer {
	tb.Helper()
	s, err := NewSigner(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// MustJWKS returns the JWKS document for keys.
func MustJWKS(tb testing.TB, keys ...*ecdsa.PublicKey) []byte {
	tb.Helper()
	b, err := JWKS(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestReceipt(t *testing.T) {
	signer, other := MustSigner(t, MustKey(t)), MustSigner(t, MustKey(t))
	dev := MustIssuer(t, MustKey(t))
	published := MustJWKS(t, dev.PublicKey(), signer.PublicKey())
	payload := []byte(`{"type":"medshare-claim-receipt","claimId":"c-1","verified":true}`)
	receipt, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	segments := strings.Split(receipt, ".")
	tok, err := dev.Mint("p-7", RolePatient, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		got, err := VerifyReceipt(receipt, published)
		if err != nil {
			t.Fatalf("a receipt checked against the published JWKS: %v", err)
		}
		if diff := cmp.Diff(payload, got); diff != "" {
			t.Errorf("payload (-want +got):\n%s", diff)
		}
		var hdr map[string]any
		raw, _ := base64.RawURLEncoding.DecodeString(segments[0])
		if err := json.Unmarshal(raw, &hdr); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"alg": "ES256", "kid": signer.KID(), "typ": ReceiptType}
		if diff := cmp.Diff(want, hdr); diff != "" {
			t.Errorf("header (-want +got):\n%s", diff)
		}
	})

	otherReceipt, err := other.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(payload), "true", "false", 1)
	tests := []struct {
		name    string
		note    string
		receipt string
		jwks    []byte
		wantMsg string
	}{
		{name: "ErrTampered", note: "the payload re-encoded with a changed verdict",
			receipt: segments[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + segments[2],
			jwks:    published, wantMsg: "receipt signature is invalid"},
		{name: "ErrUnknownKey", note: "signed by a key the JWKS does not publish",
			receipt: otherReceipt, jwks: published, wantMsg: "receipt signing key is not in the JWKS"},
		{name: "ErrBadSignature", note: "another key's signature under the published kid",
			receipt: segments[0] + "." + segments[1] + "." + strings.Split(otherReceipt, ".")[2],
			jwks:    published, wantMsg: "receipt signature is invalid"},
		{name: "ErrWrongType", note: "an access token signed by a published key is not a receipt",
			receipt: tok, jwks: published, wantMsg: "receipt type must be " + ReceiptType},
		{name: "ErrMalformed", note: "garbage", receipt: "not a receipt", jwks: published, wantMsg: "receipt is malformed"},
		{name: "ErrMalformed", note: "empty", receipt: "", jwks: published, wantMsg: "receipt is malformed"},
		{name: "ErrBadJWKS", note: "a JWKS that is not JSON", receipt: receipt, jwks: []byte("nope"), wantMsg: "JWKS is not a valid key set"},
		{name: "ErrBadJWKS", note: "a JWKS without keys", receipt: receipt, jwks: []byte(`{"keys":[]}`), wantMsg: "JWKS holds no ES256 signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyReceipt(tt.receipt, tt.jwks)
			if code, msg := errorCode(err); code != consent.EINVALID || msg != tt.wantMsg {
				t.Errorf("%s: got %s %q (%v), want %s %q", tt.note, code, msg, err, consent.EINVALID, tt.wantMsg)
			}
		})
	}
}

func TestReceiptSignEmpty(t *testing.T) {
	_, err := MustSigner(t, MustKey(t)).Sign(nil)
	if code := consent.ErrorCode(err); code != consent.EINVALID {
		t.Errorf("an empty payload: code %s, want %s", code, consent.EINVALID)
	}
}
