// Command lowscheck reports CA certificates whose ECDSA signature has a high
// S value (S > N/2).
//
// fabric-sdk-go v1.0.0 carries an old copy of Fabric's MSP code that rejects
// such CA certificates ("certificate signed by unknown authority"), and
// cryptogen produces one about half the time per CA. network.sh regenerates
// the crypto material until this check passes. Run it on production CA
// certificates too.
//
// Usage:
//
//	lowscheck DIR
//
// It walks DIR for PEM files and checks every CA certificate in them. Exit
// status: 0 all low-S, 1 some high-S (listed on stdout), 2 usage or I/O
// error.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lowscheck DIR")
		os.Exit(2)
	}
	high, err := check(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "lowscheck:", err)
		os.Exit(2)
	}
	for _, h := range high {
		fmt.Println("high-S CA certificate:", h)
	}
	if len(high) > 0 {
		os.Exit(1)
	}
}

// cert is one parsed certificate and the file it came from.
type cert struct {
	path string
	c    *x509.Certificate
}

// check returns the files under dir holding a CA certificate with a high-S
// ECDSA signature. The signer's curve comes from the issuing certificate
// found under dir, or the certificate's own key when it is self-signed.
func check(dir string) ([]string, error) {
	certs, err := load(dir)
	if err != nil {
		return nil, err
	}
	var high []string
	for _, ce := range certs {
		if !ce.c.IsCA {
			continue
		}
		pub, ok := issuerKey(ce.c, certs)
		if !ok {
			continue // not ECDSA-signed, or issuer unknown
		}
		isHigh, err := highS(ce.c.Signature, pub)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ce.path, err)
		}
		if isHigh {
			high = append(high, ce.path)
		}
	}
	return high, nil
}

// load parses every certificate in the PEM files under dir.
func load(dir string) ([]cert, error) {
	var out []cert
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".pem" && filepath.Ext(path) != ".crt" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				return nil
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			out = append(out, cert{path, c})
		}
	})
	return out, err
}

// issuerKey finds the ECDSA public key that signed c.
func issuerKey(c *x509.Certificate, all []cert) (*ecdsa.PublicKey, bool) {
	switch c.SignatureAlgorithm {
	case x509.ECDSAWithSHA1, x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
	default:
		return nil, false
	}
	if bytes.Equal(c.RawIssuer, c.RawSubject) {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		return pub, ok
	}
	for _, p := range all {
		if bytes.Equal(p.c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p.c) == nil {
			pub, ok := p.c.PublicKey.(*ecdsa.PublicKey)
			return pub, ok
		}
	}
	return nil, false
}

// highS reports whether the DER ECDSA signature sig has S > N/2 for pub's curve.
func highS(sig []byte, pub *ecdsa.PublicKey) (bool, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &rs)
	if err != nil {
		return false, fmt.Errorf("decode signature: %w", err)
	}
	if len(rest) > 0 || rs.S == nil {
		return false, errors.New("decode signature: malformed")
	}
	half := new(big.Int).Rsh(pub.Curve.Params().N, 1)
	return rs.S.Cmp(half) > 0, nil
}
