package localledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
)

// updateCorpus rewrites the committed FuzzBlock seeds from a fresh ledger:
// go test ./integrations/localledger/ -run TestBlockCorpus -update
var updateCorpus = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzBlock/block-* from a fresh ledger")

// corpusDir holds FuzzBlock's committed seeds. Files named block-* are
// real blocks signed by fuzzKey and must verify; the others are made from
// them: near misses that must fail, and signature-twin, block-5 with its
// other valid ECDSA signature (r, n-s). That one verifies: ECDSA signatures
// are malleable, and harmlessly so here, since a block's identity is its
// header hash, which the signature does not enter.
var corpusDir = filepath.Join("testdata", "fuzz", "FuzzBlock")

// fuzzKey is a fixed node key, so committed seed blocks keep verifying.
// It signs nothing outside these tests.
func fuzzKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	d, _ := hex.DecodeString("6d656473686172652066757a7a206b6579202d2074657374206f6e6c79202121")
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// mustSeedBlocks writes a small ledger signed by fuzzKey and returns its
// blocks in stored form: genesis, one-tx blocks of every kind (register,
// grant, anchor, access, revoke) and blocks of two and three txs, whose
// Merkle trees have an inner node and a promoted odd leaf.
func mustSeedBlocks(tb testing.TB) [][]byte {
	tb.Helper()
	ctx := context.Background()
	l := MustOpen(tb, Options{Key: fuzzKey(tb), MaxDelay: 100 * time.Millisecond})
	svc := consent.NewService(l)
	ref := MustRef(tb, "p-7")
	MustRegister(tb, svc, "hospital-a")
	MustRegister(tb, svc, "hospital-b")
	if _, _, err := svc.Grant(ctx, consent.GrantConsentArgs{ID: "c-1", PatientRef: ref, Grantee: consent.Grantee{Org: "hospital-b"},
		Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat}}); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := svc.Anchor(ctx, consent.Anchor{RecordID: "r-1", Version: 1, PatientRef: ref, Org: "hospital-a",
		Category: "lab", Hash: "b3RoZXItcGF0aWVudC1yZWZlcmVuY2UtMzItYnl0ZXM"}); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := svc.LogAccess(ctx, consent.AccessEntry{ID: "a-1", Time: testNow(), Action: "read", RecordID: "r-1",
		PatientRef: ref, ActorRef: MustRef(tb, "dr-bo"), Role: "provider", Org: "hospital-b", Purpose: consent.PurposeTreat,
		Decision: consent.DecisionAllow, Reasons: []string{"consent c-1"}, ConsentID: "c-1", ConsentVersion: 1,
		PolicyDigest: "sha256:fuzz"}); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := svc.Revoke(ctx, "c-1", ref); err != nil {
		tb.Fatal(err)
	}
	// Submitted together within MaxDelay, these land in one block each.
	for _, n := range []int{2, 3} {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, _, errs[i] = svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: fmt.Sprintf("clinic-%d-%d", n, i), Name: "Clinic", Type: consent.OrgClinic})
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			tb.Fatal(err)
		}
	}
	var out [][]byte
	for h := uint64(0); h <= l.Height(); h++ {
		b, err := l.Block(ctx, h)
		if err != nil {
			tb.Fatal(err)
		}
		data, err := encodeBlock(b)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// FuzzBlock decodes arbitrary bytes as a stored block and runs every check
// Verify applies to one block: canonical encoding, header hash, tx count,
// Merkle root, signature by fuzzKey and the replay of its txs through the
// contract. None may panic. A block that decodes and verifies must
// re-encode to exactly its bytes, and must stop verifying once the byte at
// flip (modulo its length) changes: no stored byte escapes detection.
func FuzzBlock(f *testing.F) {
	for i, b := range mustSeedBlocks(f) {
		f.Add(b, uint16(i*37))
		f.Add(bytes.Replace(b, []byte(`"height":`), []byte(`"Height":`), 1), uint16(0))
	}
	f.Add([]byte(`{"header":{"height":0,"prev":"","merkleRoot":"","time":"0001-01-01T00:00:00Z","txCount":0},"hash":"","signature":null,"txs":null}`), uint16(0))
	f.Add([]byte(`{}`), uint16(0))
	pub := &fuzzKey(f).PublicKey
	f.Fuzz(func(t *testing.T, data []byte, flip uint16) {
		b, err := decodeBlock(data)
		if err != nil {
			return
		}
		_ = replayOne(pub, b.Header, data) // must not panic, whatever the txs say
		if b.check(pub) != "" {
			return
		}
		again, err := encodeBlock(b)
		if err != nil {
			t.Fatalf("verified block does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("verified block re-encodes differently:\n got %s\nwant %s", again, data)
		}
		tampered := bytes.Clone(data)
		i := int(flip) % len(tampered)
		tampered[i] ^= 0x01
		if tb, err := decodeBlock(tampered); err == nil && tb.check(pub) == "" {
			t.Fatalf("block still verifies with byte %d changed from %q to %q", i, data[i], tampered[i])
		}
	})
}

// replayOne runs the verifier's per-block checks and replay on data as if
// it followed a block with hash hd.Prev, and returns its reason.
func replayOne(pub *ecdsa.PublicKey, hd Header, data []byte) string {
	v := &verifier{pub: pub, ms: consent.NewMemState(), writer: map[string]uint64{}, index: map[string]uint64{}, prevHash: hd.Prev}
	return v.block(hd.Height, data)
}

// TestBlockCorpus checks that the committed real blocks still decode and
// verify, so FuzzBlock keeps starting from sound blocks; with -update it
// rewrites them first.
func TestBlockCorpus(t *testing.T) {
	if *updateCorpus {
		for i, b := range mustSeedBlocks(t) {
			name := filepath.Join(corpusDir, fmt.Sprintf("block-%d", i))
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", b, i*37)
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	names, err := filepath.Glob(filepath.Join(corpusDir, "block-*"))
	if err != nil || len(names) < 5 {
		t.Fatalf("want at least 5 committed blocks in %s, found %d (%v)", corpusDir, len(names), err)
	}
	pub := &fuzzKey(t).PublicKey
	multi := false
	for _, name := range names {
		data := readCorpusBytes(t, name)
		b, err := decodeBlock(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if reason := b.check(pub); reason != "" {
			t.Fatalf("%s: %s (regenerate with -update)", name, reason)
		}
		multi = multi || len(b.Txs) == 3
	}
	if !multi {
		t.Error("no committed block holds three txs")
	}
	// Near misses made from those blocks fail for the reason they were made.
	for _, tt := range []struct{ file, want string }{
		{"tampered-signature", "bad signature"},
		{"txcount-mismatch", "header hash mismatch"},
		{"txs-reordered", "merkle root mismatch"},
		{"noncanonical-field-case", "block is not in canonical encoding"},
	} {
		got := ""
		b, err := decodeBlock(readCorpusBytes(t, filepath.Join(corpusDir, tt.file)))
		if err != nil {
			got = err.Error()
		} else {
			got = b.check(pub)
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.file, got, tt.want)
		}
	}
}

// readCorpusBytes returns the first argument of a corpus file holding a
// []byte("…") line.
func readCorpusBytes(tb testing.TB, name string) []byte {
	tb.Helper()
	f, err := os.Open(name)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if lit, ok := strings.CutPrefix(line, "[]byte("); ok {
			s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
			if err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			return []byte(s)
		}
	}
	tb.Fatalf("%s: no []byte line", name)
	return nil
}
