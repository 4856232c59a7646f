package consent

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
)

// maxSealed bounds a sealed entry on the ledger (base64url text).
const maxSealed = 64 << 10

// EntrySealer turns access entries into the form they take on the shared
// ledger and back. Pseudonymizer implements it.
type EntrySealer interface {
	// SealEntry returns e's ledger form: ID and Time in clear, PatientRef
	// replaced by the pairwise reference of e's patient and e's
	// organization, and everything else sealed.
	SealEntry(e AccessEntry) (AccessEntry, error)
	// OpenEntry reverses SealEntry, keeping the ledger's Tx and AnchoredAt.
	// An entry that is not sealed (written before sealing existed) comes
	// back as it is. EINTEGRITY when the seal does not open.
	OpenEntry(e AccessEntry) (AccessEntry, error)
}

var _ EntrySealer = (*Pseudonymizer)(nil)

// entryAEAD returns AES-256-GCM under a key derived from the pepper, so only
// those who hold the pepper — the data custodians — can read what the
// ledger holds of an access entry.
func (p *Pseudonymizer) entryAEAD() (cipher.AEAD, error) {
	m := hmac.New(sha256.New, p.pepper)
	m.Write([]byte("medshare access-entry seal v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, WrapError(EINTERNAL, err, "entry seal key")
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, WrapError(EINTERNAL, err, "entry seal key")
	}
	return a, nil
}

func entryAAD(id string) []byte { return []byte("medshare access entry\x00" + id) }

// SealEntry implements EntrySealer.
func (p *Pseudonymizer) SealEntry(e AccessEntry) (AccessEntry, error) {
	if e.Sealed != "" {
		return e, nil
	}
	a := p.seal
	inner := e
	inner.Tx, inner.AnchoredAt = "", e.AnchoredAt
	plain, err := json.Marshal(inner)
	if err != nil {
		return AccessEntry{}, WrapError(EINTERNAL, err, "encode access entry")
	}
	// The nonce is derived from the entry (a synthetic IV, as in SIV
	// modes): only the very same entry gets the same nonce, and then the
	// same ciphertext, so nothing random is needed — the package stays
	// deterministic, as the contract it holds must be — and a retried
	// entry seals identically.
	m := hmac.New(sha256.New, p.pepper)
	m.Write([]byte("medshare access-entry nonce v1\x00"))
	m.Write(entryAAD(e.ID))
	m.Write(plain)
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	copy(nonce, m.Sum(nil))
	sealed := a.Seal(nonce, nonce, plain, entryAAD(e.ID))
	return AccessEntry{
		ID: e.ID, Time: e.Time, PatientRef: p.Pair(e.PatientRef, e.Org),
		Sealed: base64.RawURLEncoding.EncodeToString(sealed), Reasons: []string{},
	}, nil
}

// OpenEntry implements EntrySealer.
func (p *Pseudonymizer) OpenEntry(e AccessEntry) (AccessEntry, error) {
	if e.Sealed == "" {
		return e, nil
	}
	a := p.seal
	raw, err := base64.RawURLEncoding.DecodeString(e.Sealed)
	if err != nil || len(raw) < a.NonceSize()+a.Overhead() {
		return AccessEntry{}, Errorf(EINTEGRITY, "access entry %s: malformed seal", e.ID)
	}
	plain, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], entryAAD(e.ID))
	if err != nil {
		return AccessEntry{}, Errorf(EINTEGRITY, "access entry %s: seal does not open with this node's pepper", e.ID)
	}
	var out AccessEntry
	if err := json.Unmarshal(plain, &out); err != nil || out.ID != e.ID || !out.Time.Equal(e.Time) {
		return AccessEntry{}, Errorf(EINTEGRITY, "access entry %s: sealed content does not match", e.ID)
	}
	if p.Pair(out.PatientRef, out.Org) != e.PatientRef {
		return AccessEntry{}, Errorf(EINTEGRITY, "access entry %s: sealed patient does not match its reference", e.ID)
	}
	out.Tx, out.AnchoredAt, out.cursor = e.Tx, e.AnchoredAt, e.cursor
	return out, nil
}
