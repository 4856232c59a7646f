package fabric

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Channel != "medshare" || c.Chaincode != "medshare" || c.Timeout != 30*time.Second || c.Retries != 3 || c.Logger == nil {
		t.Errorf("defaults = %+v", c)
	}
	if c := (Config{Retries: -1}).withDefaults(); c.Retries != 0 {
		t.Errorf("Retries -1 gives %d, want none", c.Retries)
	}
}

// writeIdentity writes a throwaway client certificate and PKCS#8 key, as
// cryptogen lays them out, and returns their paths.
func writeIdentity(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "User1@hospital.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "priv_sk")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func TestOpen(t *testing.T) {
	cert, key := writeIdentity(t)
	ok := Config{Profile: "testdata/profile.yaml", CertPath: cert, KeyPath: key, Timeout: 5 * time.Second}
	tests := []struct {
		note string
		edit func(*Config)
		code string
		text string
	}{
		{"no profile given", func(c *Config) { c.Profile = "" }, consent.EINVALID, "required"},
		{"a missing profile", func(c *Config) { c.Profile = "testdata/none.yaml" }, consent.EINVALID, "read connection profile"},
		{"an org the profile lacks", func(c *Config) { c.Org = "lab" }, consent.EINVALID, `no organization "lab"`},
		{"an MSP id that is not the org's", func(c *Config) { c.MSPID = "InsurerMSP" }, consent.EINVALID, "does not match"},
		{"a missing key", func(c *Config) { c.KeyPath = cert + ".none" }, consent.EINVALID, "read client key"},
		{"a key that is not a key", func(c *Config) { c.KeyPath = cert }, consent.EINVALID, "client identity"},
		// testdata/profile.yaml points at ports where nothing listens.
		{"a network that cannot be reached", func(*Config) {}, consent.EUNAVAILABLE, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.note, " ", "_"), func(t *testing.T) {
			c := ok
			tt.edit(&c)
			start := time.Now()
			l, err := Open(t.Context(), c)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("Open: %v", err)
			if consent.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Open: %v; want %s mentioning %q", err, tt.code, tt.text)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Open took %v to fail", d)
			}
		})
	}
}

func TestReceiptCache(t *testing.T) {
	var c receiptCache
	for i := range receiptCacheSize + 10 {
		c.put(fmt.Sprint("tx", i), uint64(i))
	}
	if _, ok := c.get("tx0"); ok {
		t.Error("the oldest receipt was not evicted")
	}
	if b, ok := c.get(fmt.Sprint("tx", receiptCacheSize+9)); !ok || b != receiptCacheSize+9 {
		t.Errorf("newest receipt = %d, %t", b, ok)
	}
	if len(c.m) != receiptCacheSize {
		t.Errorf("cache holds %d receipts, want %d", len(c.m), receiptCacheSize)
	}
}

func TestBackoff(t *testing.T) {
	for n := range 20 {
		d := backoff(n)
		if d < backoffMin*8/10 || d > backoffMax*12/10 {
			t.Errorf("backoff(%d) = %v, outside [%v, %v]", n, d, backoffMin*8/10, backoffMax*12/10)
		}
	}
	if listenBackoff(0) != listenBackoffMin || listenBackoff(100) != listenBackoffMax {
		t.Errorf("listenBackoff = %v … %v", listenBackoff(0), listenBackoff(100))
	}
}

func TestValidTxID(t *testing.T) {
	for id, want := range map[string]bool{
		strings.Repeat("ab", 32): true,
		strings.Repeat("AB", 32): false,
		"ct1234-receipts-no-tx":  false,
		"":                       false,
	} {
		if got := validTxID(id); got != want {
			t.Errorf("validTxID(%q) = %t", id, got)
		}
	}
}
