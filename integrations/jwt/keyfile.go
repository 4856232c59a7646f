package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/medshare/medshare/consent"
)

// maxKeyFileBytes bounds a key file; a P-256 PKCS#8 PEM is about 250 bytes.
const maxKeyFileBytes = 64 << 10

// LoadOrCreateKey returns the P-256 private key stored as PEM at path,
// creating it first if the file does not exist: a fresh key in PKCS#8
// ("PRIVATE KEY"), mode 0600, in a directory created with mode 0700. The
// file appears atomically (temp file, then hard link), so concurrent callers
// all end up with the same key. SEC 1 "EC PRIVATE KEY" files are read too.
//
// A key file that group or others may access is refused with EINVALID and a
// message telling the user to chmod 600 it, as is a file that holds no
// P-256 private key. Other failures are wrapped I/O errors.
func LoadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := loadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	return key, err
}

// loadKey reads and parses the key at path, checking its mode on the open
// file so the check and the read concern the same file.
func loadKey(path string) (*ecdsa.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, consent.Errorf(consent.EINVALID, "key file %s is not a regular file", path)
	}
	// Windows has no Unix permission bits to check.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, consent.Errorf(consent.EINVALID,
			"key file %s is accessible by group or others (mode %04o); run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes))
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	return parseKey(data, path)
}

// parseKey decodes the first PEM block of data as a P-256 private key.
func parseKey(data []byte, path string) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, consent.Errorf(consent.EINVALID, "key file %s holds no PEM block", path)
	}
	var parsed any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, consent.Errorf(consent.EINVALID, "key file %s holds a %q block, want PRIVATE KEY", path, block.Type)
	}
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "key file %s holds no valid private key", path)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, consent.Errorf(consent.EINVALID, "key file %s does not hold an ECDSA P-256 key", path)
	}
	return key, nil
}

// createKey generates a key and links it into place at path. If another
// process wins the race, its key is loaded instead.
func createKey(path string) (*ecdsa.PrivateKey, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	tmp, err := writeTemp(dir, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	// Link, unlike rename, fails when path exists: an existing key is never
	// replaced, and readers never see a partly written file.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path)
		}
		return nil, fmt.Errorf("install key file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return key, nil
}

// writeTemp writes data to a new 0600 file in dir, flushed to disk, and
// returns its name.
func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".key-*.tmp") // CreateTemp uses mode 0600
	if err != nil {
		return "", fmt.Errorf("create key file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("write key file: %w", err)
	}
	return f.Name(), nil
}

// syncDir flushes dir's entries so the new key file survives a crash.
// Windows cannot sync directories; it is skipped there.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync key directory: %w", err)
	}
	return nil
}
