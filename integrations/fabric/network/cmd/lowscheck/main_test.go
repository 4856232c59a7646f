package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestCheck writes CA certificates with low-S and high-S signatures (the
// same signature with S and N-S, both valid) and a high-S leaf, and expects
// only the high-S CA to be reported.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := mustCert(t, key, true)
	low, high := withS(t, ca, key, false), withS(t, ca, key, true)
	leaf := withS(t, mustCert(t, key, false), key, true)
	writePEM(t, filepath.Join(dir, "low", "ca-cert.pem"), low)
	writePEM(t, filepath.Join(dir, "high", "ca-cert.pem"), high)
	writePEM(t, filepath.Join(dir, "leaf", "cert.pem"), leaf)

	for _, der := range [][]byte{low, high} {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckSignatureFrom(c); err != nil {
			t.Fatalf("test certificate does not verify: %v", err)
		}
	}
	got, err := check(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "high", "ca-cert.pem")}; !slices.Equal(got, want) {
		t.Errorf("check = %v; want %v", got, want)
	}
}

// mustCert returns a self-signed P-256 certificate, a CA if isCA.
func mustCert(tb testing.TB, key *ecdsa.PrivateKey, isCA bool) []byte {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ca.test"},
		NotBefore:             time.Now(),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  isCA,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// withS re-encodes der's signature with S normalised high or low.
func withS(tb testing.TB, der []byte, key *ecdsa.PrivateKey, high bool) []byte {
	tb.Helper()
	var c struct {
		TBS, Alg asn1.RawValue
		Sig      asn1.BitString
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &c); err != nil {
		tb.Fatal(err)
	}
	if _, err := asn1.Unmarshal(c.Sig.Bytes, &rs); err != nil {
		tb.Fatal(err)
	}
	n := key.Curve.Params().N
	if isHigh := rs.S.Cmp(new(big.Int).Rsh(n, 1)) > 0; isHigh != high {
		rs.S.Sub(n, rs.S)
	}
	sig, err := asn1.Marshal(rs)
	if err != nil {
		tb.Fatal(err)
	}
	c.Sig = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	out, err := asn1.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func writePEM(tb testing.TB, path string, der []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		tb.Fatal(err)
	}
}
