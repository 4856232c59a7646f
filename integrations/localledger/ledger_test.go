package localledger

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

func TestLedger_Roundtrip(t *testing.T) {
	ctx := context.Background()
	l := MustOpen(t, Options{})
	svc := consent.NewService(l)
	at := testNow().Truncate(time.Microsecond)

	org, orgRcpt, err := svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: "hospital-b", Name: "Hospital B", Type: consent.OrgHospital})
	if err != nil {
		t.Fatal(err)
	}
	wantOrg := &consent.Org{ID: "hospital-b", Name: "Hospital B", Type: consent.OrgHospital, Status: consent.StatusActive, CreatedAt: at, UpdatedAt: at}
	if diff := cmp.Diff(wantOrg, org); diff != "" {
		t.Errorf("RegisterOrg result (-want +got):\n%s", diff)
	}

	ref := MustRef(t, "p-7")
	granted, rcpt, err := svc.Grant(ctx, consent.GrantConsentArgs{
		ID: "c-1", PatientRef: ref, Grantee: consent.Grantee{Org: "hospital-b"},
		Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &consent.Consent{
		ID: "c-1", PatientRef: ref, Grantee: consent.Grantee{Org: "hospital-b"},
		Categories: []string{"lab"}, Records: []string{}, Purposes: []string{consent.PurposeTreat},
		ValidFrom: at, Status: consent.StatusActive, Version: 1, CreatedAt: at, UpdatedAt: at, Tx: rcpt.TxID,
	}
	if diff := cmp.Diff(want, granted); diff != "" {
		t.Errorf("Grant result (-want +got):\n%s", diff)
	}

	t.Run("OK", func(t *testing.T) {
		got, err := svc.Consent(ctx, "c-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Consent (-want +got):\n%s", diff)
		}
		list, err := svc.Consents(ctx, consent.ConsentFilter{PatientRef: ref})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]consent.Consent{*want}, list); diff != "" {
			t.Errorf("Consents (-want +got):\n%s", diff)
		}
	})
	t.Run("ReceiptsLocateBlocks", func(t *testing.T) {
		got := map[string]uint64{}
		for _, r := range []consent.Receipt{orgRcpt, rcpt} {
			h, err := l.TxBlock(ctx, r.TxID)
			if err != nil {
				t.Fatal(err)
			}
			got[r.TxID] = h
		}
		want := map[string]uint64{orgRcpt.TxID: 1, rcpt.TxID: 2}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("TxBlock (-want +got):\n%s", diff)
		}
		if l.Height() != 2 {
			t.Errorf("Height = %d, want 2", l.Height())
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := l.TxBlock(ctx, "no-such-tx")
		wantCode(t, err, consent.ENOTFOUND)
		_, err = svc.Consent(ctx, "c-404")
		wantCode(t, err, consent.ENOTFOUND)
		_, err = l.Block(ctx, 3)
		wantCode(t, err, consent.ENOTFOUND)
	})
	t.Run("BlocksChain", func(t *testing.T) {
		b1, err := l.Block(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := l.Block(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if b2.Header.Prev != b1.Hash {
			t.Errorf("block 2 prev = %s, want %s", b2.Header.Prev, b1.Hash)
		}
		want := []Tx{{ID: rcpt.TxID, Op: consent.OpGrantConsent, Args: b2.Txs[0].Args, Creator: DefaultNodeID, Time: at}}
		if diff := cmp.Diff(want, b2.Txs); diff != "" {
			t.Errorf("block 2 txs (-want +got):\n%s", diff)
		}
	})
}

func TestSubmit_Rejected(t *testing.T) {
	ctx := context.Background()
	l := MustOpen(t, Options{})
	svc := consent.NewService(l)
	MustRegister(t, svc, "hospital-b")
	ref := MustRef(t, "p-7")
	if _, _, err := svc.Grant(ctx, consent.GrantConsentArgs{
		ID: "c-1", PatientRef: ref, Grantee: consent.Grantee{Org: "hospital-b"},
		Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat},
	}); err != nil {
		t.Fatal(err)
	}
	entry := func(id string) consent.AccessEntry {
		return consent.AccessEntry{
			ID: id, Time: testNow(), Action: "read", PatientRef: ref, ActorRef: ref,
			Role: "provider", Purpose: consent.PurposeTreat, Decision: consent.DecisionAllow,
		}
	}
	bad := entry("e-bad")
	bad.Decision = "maybe"

	tests := []struct {
		note string
		op   string
		args []byte
		code string
	}{
		{note: "duplicate organization", op: consent.OpRegisterOrg,
			args: MustJSON(t, consent.RegisterOrgArgs{ID: "hospital-b", Name: "B", Type: consent.OrgHospital}), code: consent.ECONFLICT},
		{note: "grant to unregistered organization", op: consent.OpGrantConsent,
			args: MustJSON(t, consent.GrantConsentArgs{ID: "c-2", PatientRef: ref, Grantee: consent.Grantee{Org: "nobody"}, Categories: []string{"lab"}, Purposes: []string{"TREAT"}}), code: consent.EINVALID},
		{note: "revoke by someone else", op: consent.OpRevokeConsent,
			args: MustJSON(t, consent.RevokeConsentArgs{ID: "c-1", By: MustRef(t, "p-8")}), code: consent.EFORBIDDEN},
		{note: "revoke unknown consent", op: consent.OpRevokeConsent,
			args: MustJSON(t, consent.RevokeConsentArgs{ID: "c-404", By: ref}), code: consent.ENOTFOUND},
		{note: "batch writes its first entry, then fails: the write is undone", op: consent.OpLogAccessBatch,
			args: MustJSON(t, consent.LogAccessBatchArgs{Entries: []consent.AccessEntry{entry("e-1"), bad}}), code: consent.EINVALID},
		{note: "malformed arguments", op: consent.OpRegisterOrg, args: []byte(`{"id":`), code: consent.EINVALID},
		{note: "unknown operation", op: "Explode", args: []byte(`{}`), code: consent.EINVALID},
		{note: "a query is not a transaction", op: consent.QueryGetOrg, args: []byte(`{"id":"hospital-b"}`), code: consent.EINVALID},
	}
	for _, tt := range tests {
		t.Run("Err_"+tt.code, func(t *testing.T) {
			before, height := dumpState(t, l), l.Height()
			_, _, err := l.Submit(ctx, tt.op, tt.args)
			if consent.ErrorCode(err) != tt.code {
				t.Fatalf("%s: err = %v, want code %s", tt.note, err, tt.code)
			}
			if diff := cmp.Diff(before, dumpState(t, l)); diff != "" {
				t.Errorf("%s: state changed (-before +after):\n%s", tt.note, diff)
			}
			if l.Height() != height {
				t.Errorf("%s: height %d -> %d, want no new block", tt.note, height, l.Height())
			}
		})
	}
	t.Run("ErrEvaluateNonQuery", func(t *testing.T) {
		_, err := l.Evaluate(ctx, consent.OpRegisterOrg, []byte(`{}`))
		wantCode(t, err, consent.EINVALID)
	})
	t.Run("ErrContextEnded", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, _, err := l.Submit(cctx, consent.OpRegisterOrg, MustJSON(t, consent.RegisterOrgArgs{ID: "late", Name: "L", Type: "lab"}))
		wantCode(t, err, consent.EUNAVAILABLE)
	})
}

// A rejected tx shares its block with an accepted one: only the accepted
// tx's writes and entry survive.
func TestSubmit_RejectedTxInBatch(t *testing.T) {
	ctx := context.Background()
	// MaxBatch 2 with a long delay: the block closes when both txs are in,
	// so they always share it.
	l := MustOpen(t, Options{MaxBatch: 2, MaxDelay: time.Hour})
	ref := MustRef(t, "p-7")
	good := consent.AccessEntry{ID: "e-1", Time: testNow(), Action: "read", PatientRef: ref, ActorRef: ref,
		Role: "provider", Purpose: consent.PurposeTreat, Decision: consent.DecisionAllow}
	bad := good
	bad.ID, bad.Decision = "e-2", "maybe"
	batch := MustJSON(t, consent.LogAccessBatchArgs{Entries: []consent.AccessEntry{good, bad}})

	var wg sync.WaitGroup
	var badErr error
	wg.Go(func() { _, _, badErr = l.Submit(ctx, consent.OpLogAccessBatch, batch) })
	_, rcpt, err := l.Submit(ctx, consent.OpRegisterOrg, MustJSON(t, consent.RegisterOrgArgs{ID: "lab-1", Name: "Lab", Type: consent.OrgLab}))
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, badErr, consent.EINVALID)

	b, err := l.Block(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Txs) != 1 || b.Txs[0].ID != rcpt.TxID {
		t.Errorf("block 1 holds %d txs, want only %s", len(b.Txs), rcpt.TxID)
	}
	var keys []string
	for k := range dumpState(t, l) {
		keys = append(keys, k)
	}
	if diff := cmp.Diff([]string{"org/lab-1"}, keys); diff != "" {
		t.Errorf("state keys (-want +got):\n%s", diff)
	}
}

func TestSubmit_Concurrent(t *testing.T) {
	const n = 200
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	key := MustKey(t)
	l := MustOpen(t, Options{Path: path, Key: key})
	svc := consent.NewService(l)

	rcpts := make([]consent.Receipt, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, rcpts[i], errs[i] = svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: fmt.Sprintf("org-%03d", i), Name: "Org", Type: consent.OrgClinic})
		})
	}
	close(start)
	wg.Wait()

	blocks := map[uint64]int{}
	for i, r := range rcpts {
		if errs[i] != nil {
			t.Fatalf("submit %d: %v", i, errs[i])
		}
		h, err := l.TxBlock(ctx, r.TxID)
		if err != nil || h != r.Block {
			t.Errorf("TxBlock(%s) = %d, %v; want %d", r.TxID, h, err, r.Block)
		}
		blocks[r.Block]++
	}
	t.Run("Grouped", func(t *testing.T) {
		if len(blocks) >= n {
			t.Errorf("%d txs took %d blocks, want fewer blocks than txs", n, len(blocks))
		}
		if got := l.Height(); got != uint64(len(blocks)) {
			t.Errorf("Height = %d, want %d (one block per distinct receipt block)", got, len(blocks))
		}
	})
	t.Run("AllStatePresent", func(t *testing.T) {
		orgs, err := svc.Orgs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(orgs) != n {
			t.Errorf("Orgs returned %d, want %d", len(orgs), n)
		}
	})
	t.Run("Verifies", func(t *testing.T) {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(ctx, path, &key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		want := &Report{Blocks: len(blocks) + 1, Txs: n, Height: uint64(len(blocks))}
		if diff := cmp.Diff(want, rep); diff != "" {
			t.Errorf("Report (-want +got):\n%s", diff)
		}
	})
}

func TestRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "ledger", "ledger.db")
	key := MustKey(t)
	l := MustOpen(t, Options{Path: path, Key: key})
	MustRegister(t, consent.NewService(l), "hospital-a")
	MustRegister(t, consent.NewService(l), "hospital-b")
	before := dumpState(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		l := MustOpen(t, Options{Path: path, Key: key})
		if l.Height() != 2 {
			t.Fatalf("Height after reopen = %d, want 2", l.Height())
		}
		if diff := cmp.Diff(before, dumpState(t, l)); diff != "" {
			t.Errorf("state after reopen (-before +after):\n%s", diff)
		}
		rcpt := MustRegister(t, consent.NewService(l), "hospital-c")
		if rcpt.Block != 3 {
			t.Errorf("new block = %d, want 3", rcpt.Block)
		}
		prev, err := l.Block(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		next, err := l.Block(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if next.Header.Prev != prev.Hash {
			t.Errorf("block 3 prev = %s, want %s", next.Header.Prev, prev.Hash)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(ctx, path, &key.PublicKey); err != nil {
			t.Errorf("Verify after restart: %v", err)
		}
	})
	t.Run("ErrOtherKey", func(t *testing.T) {
		_, err := Open(ctx, Options{Path: path, Key: MustKey(t)})
		wantCode(t, err, consent.EINVALID)
	})
	t.Run("ErrLocked", func(t *testing.T) {
		l := MustOpen(t, Options{Path: path, Key: key})
		_, err := Open(ctx, Options{Path: path, Key: key})
		wantCode(t, err, consent.EUNAVAILABLE)
		_, err = Verify(ctx, path, &key.PublicKey)
		wantCode(t, err, consent.EUNAVAILABLE)
		_ = l.Close()
	})
}

func TestOpen_Invalid(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		note string
		o    Options
	}{
		{note: "no path", o: Options{Key: MustKey(t)}},
		{note: "no key", o: Options{Path: filepath.Join(dir, "a.db")}},
		{note: "node id unsafe in keys", o: Options{Path: filepath.Join(dir, "b.db"), Key: MustKey(t), NodeID: "node 1/x"}},
	}
	for _, tt := range tests {
		t.Run("ErrInvalid", func(t *testing.T) {
			if _, err := Open(context.Background(), tt.o); consent.ErrorCode(err) != consent.EINVALID {
				t.Errorf("%s: err = %v, want EINVALID", tt.note, err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	l := MustOpen(t, Options{})
	if err := l.Ping(ctx); err != nil {
		t.Fatalf("Ping while open: %v", err)
	}
	events := l.Subscribe(ctx)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("ErrUnavailable", func(t *testing.T) {
		_, _, err := l.Submit(ctx, consent.OpRegisterOrg, MustJSON(t, consent.RegisterOrgArgs{ID: "x", Name: "X", Type: "lab"}))
		wantCode(t, err, consent.EUNAVAILABLE)
		_, err = l.Evaluate(ctx, consent.QueryListOrgs, []byte(`{}`))
		wantCode(t, err, consent.EUNAVAILABLE)
		_, err = l.TxBlock(ctx, "x")
		wantCode(t, err, consent.EUNAVAILABLE)
		wantCode(t, l.Ping(ctx), consent.EUNAVAILABLE)
	})
	t.Run("ChannelsClosed", func(t *testing.T) {
		if _, ok := <-events; ok {
			t.Error("subscription still open after Close")
		}
		if _, ok := <-l.Subscribe(ctx); ok {
			t.Error("Subscribe after Close returned an open channel")
		}
	})
	t.Run("SecondCloseOK", func(t *testing.T) {
		if err := l.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}
