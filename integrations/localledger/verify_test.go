package localledger

import (
	"context"
	"crypto/ecdsa"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/medshare/medshare/consent"
)

// mustHealthyLedger writes a closed ledger of four one-tx blocks:
// 1 registers hospital-b, 2 grants c-1, 3 registers lab-1, 4 revokes c-1.
// It returns the file's contents and the node key.
func mustHealthyLedger(tb testing.TB) ([]byte, *ecdsa.PrivateKey) {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "ledger.db")
	key := MustKey(tb)
	l := MustOpen(tb, Options{Path: path, Key: key})
	svc := consent.NewService(l)
	ref := MustRef(tb, "p-7")
	MustRegister(tb, svc, "hospital-b")
	if _, _, err := svc.Grant(ctx, consent.GrantConsentArgs{ID: "c-1", PatientRef: ref, Grantee: consent.Grantee{Org: "hospital-b"},
		Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat}}); err != nil {
		tb.Fatal(err)
	}
	MustRegister(tb, svc, "lab-1")
	if _, _, err := svc.Revoke(ctx, "c-1", ref); err != nil {
		tb.Fatal(err)
	}
	if l.Height() != 4 {
		tb.Fatalf("height = %d, want 4", l.Height())
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data, key
}

// mustTampered writes data to a new file, applies fn to it in one bbolt
// transaction and returns the file's path.
func mustTampered(tb testing.TB, data []byte, fn func(tx *bolt.Tx) error) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ledger.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, noSync())
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		tb.Fatal(err)
	}
	return path
}

// noSync opens tamper handles without fsync: Verify reads the same page
// cache, and durability is not what these tests are about.
func noSync() *bolt.Options { return &bolt.Options{NoSync: true, NoGrowSync: true} }

// flipByte returns a mutation that flips the low bit of byte i (negative:
// from the end) of the value at key in bucket.
func flipByte(bucket string, key []byte, i int) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		v := append([]byte(nil), b.Get(key)...)
		if i < 0 {
			i += len(v)
		}
		v[i] ^= 0x01
		return b.Put(key, v)
	}
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	healthy, key := mustHealthyLedger(t)
	pub := &key.PublicKey

	t.Run("OK", func(t *testing.T) {
		path := mustTampered(t, healthy, func(*bolt.Tx) error { return nil })
		rep, err := Verify(ctx, path, pub)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&Report{Blocks: 5, Txs: 4, Height: 4}, rep); diff != "" {
			t.Errorf("Report (-want +got):\n%s", diff)
		}
	})

	midFlip := func(bucket string, key []byte) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			return flipByte(bucket, key, len(tx.Bucket([]byte(bucket)).Get(key))/2)(tx)
		}
	}
	put := func(bucket, key string, value []byte) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(key), value) }
	}
	del := func(bucket string, key []byte) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Delete(key) }
	}
	firstTx := func(tx *bolt.Tx) string { // id of block 3's tx
		b, err := decodeBlock(tx.Bucket([]byte(bucketBlocks)).Get(heightKey(3)))
		if err != nil {
			panic(err)
		}
		return b.Txs[0].ID
	}
	tests := []struct {
		note   string
		tamper func(*bolt.Tx) error
		height uint64
	}{
		{note: "first byte of block 2 flipped", tamper: flipByte(bucketBlocks, heightKey(2), 0), height: 2},
		{note: "middle byte of block 2 flipped", tamper: midFlip(bucketBlocks, heightKey(2)), height: 2},
		{note: "last byte of block 3 flipped", tamper: flipByte(bucketBlocks, heightKey(3), -1), height: 3},
		{note: "byte of genesis flipped", tamper: midFlip(bucketBlocks, heightKey(0)), height: 0},
		{note: "middle block deleted", tamper: del(bucketBlocks, heightKey(2)), height: 2},
		{note: "tip block deleted", tamper: del(bucketBlocks, heightKey(4)), height: 4},
		{note: "genesis deleted", tamper: del(bucketBlocks, heightKey(0)), height: 0},
		{note: "recorded height lowered: block 4 is extra", tamper: put(bucketMeta, metaHeight, heightKey(3)), height: 4},
		{note: "state value written once (block 1) changed", tamper: midFlip(bucketState, []byte("org/hospital-b")), height: 1},
		{note: "state value last written by block 4 changed", tamper: midFlip(bucketState, []byte("consent/c-1")), height: 4},
		{note: "state key written by block 3 deleted", tamper: del(bucketState, []byte("org/lab-1")), height: 3},
		{note: "state key no tx wrote added", tamper: put(bucketState, "org/evil", []byte(`{}`)), height: 4},
		{note: "tx index entry of block 3 deleted", tamper: func(tx *bolt.Tx) error { return del(bucketTxs, []byte(firstTx(tx)))(tx) }, height: 3},
		{note: "tx index entry of block 3 pointed at block 1", tamper: func(tx *bolt.Tx) error { return put(bucketTxs, firstTx(tx), heightKey(1))(tx) }, height: 3},
	}
	for _, tt := range tests {
		t.Run("ErrTampered", func(t *testing.T) {
			_, err := Verify(ctx, mustTampered(t, healthy, tt.tamper), pub)
			ve := asVerifyError(t, err)
			if ve.Height != tt.height {
				t.Errorf("%s: Verify named block %d (%s), want %d", tt.note, ve.Height, ve.Reason, tt.height)
			}
			wantCode(t, err, consent.EINTEGRITY)
		})
	}

	t.Run("ErrOtherKey", func(t *testing.T) {
		path := mustTampered(t, healthy, func(*bolt.Tx) error { return nil })
		_, err := Verify(ctx, path, &MustKey(t).PublicKey)
		if ve := asVerifyError(t, err); ve.Height != 0 {
			t.Errorf("Verify named block %d, want genesis", ve.Height)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := Verify(ctx, filepath.Join(t.TempDir(), "none.db"), pub)
		wantCode(t, err, consent.ENOTFOUND)
	})
}

// Every single-byte change anywhere in a stored block is caught and blamed
// on that block.
func TestVerify_EveryByteOfABlock(t *testing.T) {
	ctx := context.Background()
	healthy, key := mustHealthyLedger(t)
	path := mustTampered(t, healthy, func(*bolt.Tx) error { return nil })
	var orig []byte
	db, err := bolt.Open(path, 0o600, noSync())
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		orig = append(orig, tx.Bucket([]byte(bucketBlocks)).Get(heightKey(2))...)
		return nil
	})
	for i := range orig {
		if err := db.Update(flipByte(bucketBlocks, heightKey(2), i)); err != nil {
			t.Fatal(err)
		}
		_ = db.Close() // Verify needs the file to itself
		_, err := Verify(ctx, path, &key.PublicKey)
		if ve := asVerifyError(t, err); ve.Height != 2 {
			t.Fatalf("byte %d flipped: Verify named block %d (%s), want 2", i, ve.Height, ve.Reason)
		}
		if db, err = bolt.Open(path, 0o600, noSync()); err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketBlocks)).Put(heightKey(2), append([]byte(nil), orig...))
		}); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
	if _, err := Verify(ctx, path, &key.PublicKey); err != nil {
		t.Errorf("Verify after restoring block 2: %v", err)
	}
}
