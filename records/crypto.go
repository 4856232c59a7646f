package records

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/medshare/medshare/consent"
)

// KeyRing wraps and unwraps data-encryption keys with versioned
// key-encryption keys. LocalKeyRing keeps KEKs in memory; an HSM-backed ring
// implements the same interface.
type KeyRing interface {
	// Current is the KEK version new DEKs are wrapped with.
	Current() int
	// Wrap encrypts dek under KEK version, bound to aad.
	Wrap(version int, dek, aad []byte) ([]byte, error)
	// Unwrap decrypts a wrapped DEK. EINTEGRITY if it was tampered with, the
	// aad differs or the KEK is wrong; ENOTFOUND if the version is unknown.
	Unwrap(version int, wrapped, aad []byte) ([]byte, error)
}

// LocalKeyRing is a KeyRing over 32-byte AES-256 KEKs held in memory.
type LocalKeyRing struct {
	keks    map[int]cipher.AEAD
	current int
}

var _ KeyRing = (*LocalKeyRing)(nil)

// NewLocalKeyRing returns a ring over keks (version → 32-byte key), wrapping
// with version current. EINVALID if a key is not 32 bytes or current is
// missing.
func NewLocalKeyRing(keks map[int][]byte, current int) (*LocalKeyRing, error) {
	r := &LocalKeyRing{keks: map[int]cipher.AEAD{}, current: current}
	for v, k := range keks {
		if len(k) != 32 {
			return nil, consent.Errorf(consent.EINVALID, "KEK version %d is not 32 bytes", v)
		}
		a, err := newGCM(k)
		if err != nil {
			return nil, err
		}
		r.keks[v] = a
	}
	if _, ok := r.keks[current]; !ok {
		return nil, consent.Errorf(consent.EINVALID, "current KEK version %d is missing", current)
	}
	return r, nil
}

// Current implements KeyRing.
func (r *LocalKeyRing) Current() int { return r.current }

// Wrap implements KeyRing.
func (r *LocalKeyRing) Wrap(version int, dek, aad []byte) ([]byte, error) {
	a, ok := r.keks[version]
	if !ok {
		return nil, consent.Errorf(consent.ENOTFOUND, "KEK version %d is unknown", version)
	}
	return seal(a, dek, aad)
}

// Unwrap implements KeyRing.
func (r *LocalKeyRing) Unwrap(version int, wrapped, aad []byte) ([]byte, error) {
	a, ok := r.keks[version]
	if !ok {
		return nil, consent.Errorf(consent.ENOTFOUND, "KEK version %d is unknown", version)
	}
	dek, err := open(a, wrapped, aad)
	if err != nil {
		return nil, consent.WrapError(consent.EINTEGRITY, err, "record key failed its integrity check")
	}
	return dek, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "aes cipher")
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "gcm")
	}
	return a, nil
}

// seal returns nonce ‖ ciphertext with a fresh random nonce.
func seal(a cipher.AEAD, plain, aad []byte) ([]byte, error) {
	out := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "nonce")
	}
	return a.Seal(out, out, plain, aad), nil
}

func open(a cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return nil, fmt.Errorf("sealed data too short")
	}
	n := a.NonceSize()
	return a.Open(nil, sealed[:n], sealed[n:], aad)
}

// contentAAD binds a record's ciphertext to its identity and metadata, so a
// ciphertext moved to another record, patient or category fails to open.
func contentAAD(r *Record) []byte {
	return lengthPrefixed("medshare/content/v1", r.ID, fmt.Sprint(r.Version), r.PatientRef, r.Category, r.ContentType, r.Org)
}

// dekAAD binds a wrapped DEK to its record version and KEK version.
func dekAAD(r *Record) []byte {
	return lengthPrefixed("medshare/dek/v1", r.ID, fmt.Sprint(r.Version), r.PatientRef, fmt.Sprint(r.KEKVersion))
}

// lengthPrefixed encodes fields unambiguously: each as uvarint length then bytes.
func lengthPrefixed(fields ...string) []byte {
	var out []byte
	for _, f := range fields {
		out = binary.AppendUvarint(out, uint64(len(f)))
		out = append(out, f...)
	}
	return out
}

// Seal encrypts content into r under a fresh DEK wrapped by the ring's
// current KEK, and sets r's salt and content hash. r's identity and
// metadata must be final: they are bound into the ciphertext.
func Seal(ring KeyRing, r *Record, content []byte) error {
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return consent.WrapError(consent.EINTERNAL, err, "generate DEK")
	}
	defer clear(dek)
	a, err := newGCM(dek)
	if err != nil {
		return err
	}
	r.KEKVersion = ring.Current()
	if r.Ciphertext, err = seal(a, content, contentAAD(r)); err != nil {
		return err
	}
	if r.WrappedDEK, err = ring.Wrap(r.KEKVersion, dek, dekAAD(r)); err != nil {
		return fmt.Errorf("wrap DEK: %w", err)
	}
	r.Salt = make([]byte, 16)
	if _, err := rand.Read(r.Salt); err != nil {
		return consent.WrapError(consent.EINTERNAL, err, "generate salt")
	}
	r.Hash = ContentHash(r.Salt, content)
	r.Size = len(content)
	return nil
}

// Open decrypts r and checks the plaintext against anchorHash, the hash on
// the ledger. Any mismatch is EINTEGRITY and returns no data.
func Open(ring KeyRing, r *Record, anchorHash string) ([]byte, error) {
	dek, err := ring.Unwrap(r.KEKVersion, r.WrappedDEK, dekAAD(r))
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	a, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	plain, err := open(a, r.Ciphertext, contentAAD(r))
	if err != nil {
		return nil, consent.WrapError(consent.EINTEGRITY, err, "record %s failed its integrity check", r.ID)
	}
	got := ContentHash(r.Salt, plain)
	if subtle.ConstantTimeCompare([]byte(got), []byte(anchorHash)) != 1 || got != r.Hash {
		clear(plain)
		return nil, consent.Errorf(consent.EINTEGRITY, "record %s does not match its ledger anchor", r.ID)
	}
	return plain, nil
}

// ContentHash is the anchored form of content: base64url(sha256(salt‖content)).
func ContentHash(salt, content []byte) string {
	h := sha256.New()
	h.Write(salt)
	h.Write(content)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// cloneRecord returns a deep copy (tests tamper with copies).
func cloneRecord(r *Record) *Record {
	c := *r
	c.Ciphertext = slices.Clone(r.Ciphertext)
	c.WrappedDEK = slices.Clone(r.WrappedDEK)
	c.Salt = slices.Clone(r.Salt)
	return &c
}
