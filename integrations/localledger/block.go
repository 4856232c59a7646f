package localledger

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Block is one signed block of the embedded ledger, stored as its JSON
// encoding under its 8-byte big-endian height.
type Block struct {
	Header Header `json:"header"`
	// Hash is hex(sha256(canonical JSON encoding of Header)).
	Hash string `json:"hash"`
	// Signature is the node key's ASN.1 ECDSA P-256 signature over the
	// 32 bytes Hash encodes.
	Signature []byte `json:"signature"`
	Txs       []Tx   `json:"txs"`
}

// Header is the part of a block its hash and signature cover. Txs are bound
// to it through MerkleRoot.
type Header struct {
	Height uint64 `json:"height"`
	// Prev is the hash of the previous block; 64 zeros for genesis.
	Prev string `json:"prev"`
	// MerkleRoot is the hex root of the block's tx hashes (see merkleRoot);
	// 64 zeros for a block without txs.
	MerkleRoot string    `json:"merkleRoot"`
	Time       time.Time `json:"time"`
	TxCount    int       `json:"txCount"`
}

// Tx is one committed transaction exactly as the contract saw it: replaying
// Op(Args) with ID, Time and Creator as metadata reproduces its writes.
type Tx struct {
	ID      string    `json:"id"`
	Op      string    `json:"op"`
	Args    []byte    `json:"args"` // verbatim, base64 in JSON so replay sees the same bytes
	Creator string    `json:"creator"`
	Time    time.Time `json:"time"`
}

// zeroHash is the hex form of 32 zero bytes: genesis's Prev and the Merkle
// root of an empty block.
const zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// hash returns sha256 of the tx's canonical JSON encoding.
func (t *Tx) hash() ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode tx %s: %w", t.ID, err)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// hash returns sha256 of the header's canonical JSON encoding.
func (h *Header) hash() ([]byte, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode header %d: %w", h.Height, err)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// merkleRoot returns the hex Merkle root of txs. Leaves are the tx hashes;
// a parent is sha256(0x01 ‖ left ‖ right), the prefix keeping inner nodes
// apart from leaves (which hash JSON starting with '{'). An odd node at the
// end of a level is promoted unchanged to the next level, never duplicated,
// so no two different tx lists share a root (CVE-2012-2459).
func merkleRoot(txs []Tx) (string, error) {
	if len(txs) == 0 {
		return zeroHash, nil
	}
	level := make([][]byte, len(txs))
	for i := range txs {
		h, err := txs[i].hash()
		if err != nil {
			return "", err
		}
		level[i] = h
	}
	for len(level) > 1 {
		next := make([][]byte, 0, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
				continue
			}
			h := sha256.New()
			h.Write([]byte{0x01})
			h.Write(level[i])
			h.Write(level[i+1])
			next = append(next, h.Sum(nil))
		}
		level = next
	}
	return hex.EncodeToString(level[0]), nil
}

// newBlock builds and signs the block at height after prev holding txs.
func newBlock(key *ecdsa.PrivateKey, height uint64, prev string, t time.Time, txs []Tx) (*Block, error) {
	root, err := merkleRoot(txs)
	if err != nil {
		return nil, err
	}
	if txs == nil {
		txs = []Tx{}
	}
	b := &Block{
		Header: Header{Height: height, Prev: prev, MerkleRoot: root, Time: t, TxCount: len(txs)},
		Txs:    txs,
	}
	sum, err := b.Header.hash()
	if err != nil {
		return nil, err
	}
	b.Hash = hex.EncodeToString(sum)
	if b.Signature, err = ecdsa.SignASN1(rand.Reader, key, sum); err != nil {
		return nil, fmt.Errorf("sign block %d: %w", height, err)
	}
	return b, nil
}

// check verifies the block on its own: header hash, Merkle root, tx count
// and signature. It returns a reason for people, or "" when the block is
// sound.
func (b *Block) check(pub *ecdsa.PublicKey) string {
	sum, err := b.Header.hash()
	if err != nil {
		return err.Error()
	}
	if hex.EncodeToString(sum) != b.Hash {
		return "header hash mismatch"
	}
	if b.Header.TxCount != len(b.Txs) {
		return fmt.Sprintf("header counts %d txs, block holds %d", b.Header.TxCount, len(b.Txs))
	}
	root, err := merkleRoot(b.Txs)
	if err != nil {
		return err.Error()
	}
	if root != b.Header.MerkleRoot {
		return "merkle root mismatch"
	}
	if !ecdsa.VerifyASN1(pub, sum, b.Signature) {
		return "bad signature"
	}
	return ""
}

// encodeBlock returns the block's canonical stored form.
func encodeBlock(b *Block) ([]byte, error) {
	out, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode block %d: %w", b.Header.Height, err)
	}
	return out, nil
}

// decodeBlock parses a stored block and insists the bytes are exactly its
// canonical encoding, so no stored byte can change without detection (JSON
// field names match case-insensitively, base64 tolerates stray pad bits).
func decodeBlock(data []byte) (*Block, error) {
	var b Block
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("decode block: %w", err)
	}
	again, err := json.Marshal(&b)
	if err != nil {
		return nil, fmt.Errorf("re-encode block: %w", err)
	}
	if string(again) != string(data) {
		return nil, fmt.Errorf("block is not in canonical encoding")
	}
	return &b, nil
}
