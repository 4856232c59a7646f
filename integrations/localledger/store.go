package localledger

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Bucket layout of the ledger file.
const (
	bucketBlocks = "blocks" // 8-byte big-endian height → block JSON
	bucketState  = "state"  // world state key → value, as the contract wrote it
	bucketTxs    = "txs"    // tx id → 8-byte big-endian height
	bucketMeta   = "meta"   // metaHeight → 8-byte big-endian current height
	metaHeight   = "height"
)

// heightKey encodes h so that bbolt's byte order is height order.
func heightKey(h uint64) []byte { return binary.BigEndian.AppendUint64(nil, h) }

// parseHeight decodes an 8-byte big-endian height.
func parseHeight(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("height value has %d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// buckets holds the ledger's four buckets within one bbolt transaction.
type buckets struct {
	blocks, state, txs, meta *bolt.Bucket
}

// openBuckets returns the ledger's buckets, failing if any is missing.
func openBuckets(tx *bolt.Tx) (*buckets, error) {
	bs := &buckets{
		blocks: tx.Bucket([]byte(bucketBlocks)),
		state:  tx.Bucket([]byte(bucketState)),
		txs:    tx.Bucket([]byte(bucketTxs)),
		meta:   tx.Bucket([]byte(bucketMeta)),
	}
	if bs.blocks == nil || bs.state == nil || bs.txs == nil || bs.meta == nil {
		return nil, fmt.Errorf("file is not a ledger: bucket missing")
	}
	return bs, nil
}

// height returns the stored current height.
func (bs *buckets) height() (uint64, error) {
	h, err := parseHeight(bs.meta.Get([]byte(metaHeight)))
	if err != nil {
		return 0, fmt.Errorf("read height: %w", err)
	}
	return h, nil
}

// block loads and decodes the block at height h.
func (bs *buckets) block(h uint64) (*Block, error) {
	data := bs.blocks.Get(heightKey(h))
	if data == nil {
		return nil, fmt.Errorf("block %d missing", h)
	}
	b, err := decodeBlock(data)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", h, err)
	}
	return b, nil
}

// putBlock stores b, indexes its txs and advances the height to it.
func (bs *buckets) putBlock(b *Block) error {
	data, err := encodeBlock(b)
	if err != nil {
		return err
	}
	key := heightKey(b.Header.Height)
	if err := bs.blocks.Put(key, data); err != nil {
		return fmt.Errorf("put block %d: %w", b.Header.Height, err)
	}
	for _, t := range b.Txs {
		if err := bs.txs.Put([]byte(t.ID), key); err != nil {
			return fmt.Errorf("index tx %s: %w", t.ID, err)
		}
	}
	if err := bs.meta.Put([]byte(metaHeight), key); err != nil {
		return fmt.Errorf("put height: %w", err)
	}
	return nil
}
