//go:build fabric

package fabric_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
	"github.com/medshare/medshare/integrations/fabric"
	"github.com/medshare/medshare/integrations/fabric/network"
	"github.com/medshare/medshare/records/recordstest"
)

// These tests run against the real local network (integrations/fabric/network):
// `make test-fabric`, or `go test -tags fabric ./integrations/fabric/`. The
// subtests share one network and run in order, because PeerRestart stops a
// peer the others need.
func TestFabric(t *testing.T) {
	env := network.Ensure(t)
	t.Run("Conformance", func(t *testing.T) {
		consenttest.Run(t, func(t *testing.T) consent.Ledger { return open(t, env) })
	})
	t.Run("Errors", func(t *testing.T) { testErrors(t, env) })
	t.Run("TxBlock", func(t *testing.T) { testTxBlock(t, env) })
	t.Run("Subscribe", func(t *testing.T) { testSubscribe(t, env) })
	t.Run("ReadModel", func(t *testing.T) { testReadModel(t, env) })
	t.Run("ReadConflicts", func(t *testing.T) { testReadConflicts(t, env) })
	t.Run("Latency", func(t *testing.T) { testLatency(t, env) })
	t.Run("PeerRestart", func(t *testing.T) { testPeerRestart(t, env) })
	t.Run("OpenUnreachable", func(t *testing.T) { testOpenUnreachable(t, env) })
}

// config returns the Ledger configuration for env's client identity.
func config(t *testing.T, env *network.Env) fabric.Config {
	return fabric.Config{
		Profile: env.Profile, Channel: env.Channel, Chaincode: env.Chaincode,
		MSPID: env.MSPID, CertPath: env.CertPath, KeyPath: env.KeyPath, Org: "hospital",
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

// open opens a Ledger closed at the end of t.
func open(t *testing.T, env *network.Env) *fabric.Ledger {
	t.Helper()
	l, err := fabric.Open(t.Context(), config(t, env))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// fixture is a test's ids, pseudonyms and service.
type fixture struct {
	t       *testing.T
	l       *fabric.Ledger
	svc     *consent.Service
	prefix  string
	patient string
	other   string
}

func newFixture(t *testing.T, l *fabric.Ledger) *fixture {
	b := make([]byte, 5)
	rand.Read(b)
	pz, err := consent.NewPseudonymizer(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	prefix := "fx" + hex.EncodeToString(b)
	return &fixture{t: t, l: l, svc: consent.NewService(l), prefix: prefix,
		patient: pz.PatientRef(prefix + "-p"), other: pz.PatientRef(prefix + "-o")}
}

func (f *fixture) id(s string) string { return f.prefix + "-" + s }

// org registers an organization and returns its id.
func (f *fixture) org(name string) string {
	f.t.Helper()
	id := f.id(name)
	if _, _, err := f.svc.RegisterOrg(f.t.Context(), consent.RegisterOrgArgs{ID: id, Name: name, Type: consent.OrgHospital}); err != nil {
		f.t.Fatalf("register %s: %v", id, err)
	}
	return id
}

// grant grants consent name to org and returns it with its receipt.
func (f *fixture) grant(ctx context.Context, name, org string) (*consent.Consent, consent.Receipt, error) {
	return f.svc.Grant(ctx, consent.GrantConsentArgs{
		ID: f.id(name), PatientRef: f.patient, Grantee: consent.Grantee{Org: org},
		Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat},
	})
}

// wantCode fails unless err carries code and a message free of SDK text.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := consent.ErrorCode(err); got != code {
		t.Fatalf("%s: code %q, want %q (err: %v)", what, got, code, err)
	}
	msg := consent.ErrorMessage(err)
	for _, leak := range []string{"Description:", "Status Code", "endorser", "rpc error", "Multiple errors"} {
		if strings.Contains(msg, leak) {
			t.Errorf("%s: message %q leaks SDK text %q", what, msg, leak)
		}
	}
}

func testErrors(t *testing.T, env *network.Env) {
	l := open(t, env)
	f := newFixture(t, l)
	ctx := t.Context()
	hosp := f.org("hosp")
	c, _, err := f.grant(ctx, "c1", hosp)
	if err != nil {
		t.Fatal(err)
	}
	idArgs, _ := json.Marshal(consent.IDArgs{ID: hosp})
	tests := []struct {
		note string
		call func() error
		code string
	}{
		{"a duplicate org id is a conflict", func() error {
			_, _, err := f.svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: hosp, Name: "again", Type: consent.OrgClinic})
			return err
		}, consent.ECONFLICT},
		{"only the patient may revoke", func() error { _, _, err := f.svc.Revoke(ctx, c.ID, f.other); return err }, consent.EFORBIDDEN},
		{"an unknown consent is not found", func() error { _, err := f.svc.Consent(ctx, f.id("none")); return err }, consent.ENOTFOUND},
		{"malformed arguments are invalid", func() error { _, _, err := l.Submit(ctx, consent.OpRegisterOrg, []byte(`{"id":`)); return err }, consent.EINVALID},
		{"a query is not submitted", func() error { _, _, err := l.Submit(ctx, consent.QueryGetOrg, idArgs); return err }, consent.EINVALID},
		{"a state change is not evaluated", func() error { _, err := l.Evaluate(ctx, consent.OpRegisterOrg, idArgs); return err }, consent.EINVALID},
		{"an unknown op reaches the chaincode and is invalid", func() error { _, _, err := l.Submit(ctx, "DropTables", []byte(`{}`)); return err }, consent.EINVALID},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.note, " ", "_"), func(t *testing.T) {
			wantCode(t, tt.note, tt.call(), tt.code)
		})
	}
}

func testTxBlock(t *testing.T, env *network.Env) {
	l := open(t, env)
	f := newFixture(t, l)
	org, rcpt, err := f.svc.RegisterOrg(t.Context(), consent.RegisterOrgArgs{ID: f.id("o"), Name: "O", Type: consent.OrgLab})
	if err != nil {
		t.Fatal(err)
	}
	// A second Ledger has no memory of the submit: it must ask the peers.
	fresh := open(t, env)
	block, err := fresh.TxBlock(t.Context(), rcpt.TxID)
	if err != nil || block != rcpt.Block {
		t.Fatalf("TxBlock(%s) = %d, %v; receipt says block %d", rcpt.TxID, block, err, rcpt.Block)
	}
	unknown := make([]byte, 32)
	rand.Read(unknown)
	_, err = fresh.TxBlock(t.Context(), hex.EncodeToString(unknown))
	wantCode(t, "TxBlock of an unknown tx", err, consent.ENOTFOUND)

	// The insurer's peer, asked with the peer CLI, holds the same org.
	var got consent.Org
	if err := json.Unmarshal(env.PeerQuery(t, "insurer", consent.QueryGetOrg, fmt.Sprintf(`{"id":%q}`, org.ID)), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != org.ID || !got.CreatedAt.Equal(org.CreatedAt) {
		t.Errorf("insurer peer has %+v, want %+v", got, org)
	}
}

func testSubscribe(t *testing.T, env *network.Env) {
	l := open(t, env)
	f := newFixture(t, l)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	events := l.Subscribe(ctx)
	hosp := f.org("hosp")
	c, rcpt, err := f.grant(t.Context(), "c1", hosp)
	if err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, events, rcpt.TxID)
	var payload consent.Consent
	if err := json.Unmarshal(ev.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if ev.Op != consent.OpGrantConsent || ev.Block != rcpt.Block || payload.ID != c.ID || payload.Tx != rcpt.TxID || !ev.Time.Equal(c.CreatedAt) {
		t.Errorf("event %+v (payload %+v), want GrantConsent of %s in block %d at %v", ev, payload, c.ID, rcpt.Block, c.CreatedAt)
	}
	if l.LastEventBlock() < rcpt.Block {
		t.Errorf("LastEventBlock = %d, want >= %d", l.LastEventBlock(), rcpt.Block)
	}
	cancel()
	for range events {
	}
}

// waitEvent reads events until the one of txID arrives.
func waitEvent(t *testing.T, events <-chan consent.Event, txID string) consent.Event {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event channel closed before tx %s", txID)
			}
			if ev.TxID == txID {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event for tx %s within a minute", txID)
		}
	}
}

// readModel runs RunReadModel in the background until the returned stop
// is called or the test ends.
func readModel(t *testing.T, l *fabric.Ledger, store consent.ConsentStore, name string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.RunReadModel(ctx, store, name) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("RunReadModel %s: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitStored waits until store holds want (same id and version) and the
// checkpoint of name has reached block.
func waitStored(t *testing.T, store consent.ConsentStore, name string, block uint64, want ...*consent.Consent) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		cp, err := store.Checkpoint(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		ok := cp >= block
		for _, w := range want {
			got, err := store.StoredConsents(t.Context(), consent.ConsentFilter{PatientRef: w.PatientRef})
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(got, func(c consent.Consent) bool { return c.ID == w.ID })
			ok = ok && i >= 0 && got[i].Version == w.Version && got[i].Status == w.Status && got[i].Tx == w.Tx
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read model %s: checkpoint %d (want >= %d), consents not as wanted within a minute", name, cp, block)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testReadModel(t *testing.T, env *network.Env) {
	l := open(t, env)
	f := newFixture(t, l)
	store := recordstest.NewMemStore()
	stop := readModel(t, l, store, "rm-"+f.prefix)
	defer stop()
	hosp := f.org("hosp")
	c, _, err := f.grant(t.Context(), "c1", hosp)
	if err != nil {
		t.Fatal(err)
	}
	rev, rcpt, err := f.svc.Revoke(t.Context(), c.ID, f.patient)
	if err != nil {
		t.Fatal(err)
	}
	waitStored(t, store, "rm-"+f.prefix, rcpt.Block, rev)
	got, err := store.StoredConsents(t.Context(), consent.ConsentFilter{GranteeOrg: hosp})
	if err != nil || len(got) != 1 || got[0].Status != consent.StatusRevoked {
		t.Errorf("stored consents of %s = %+v, %v; want the revoked consent", hosp, got, err)
	}
}

func testReadConflicts(t *testing.T, env *network.Env) {
	// Concurrent batches that all log one shared entry read the same key:
	// in one block, all but one fail validation with MVCC_READ_CONFLICT.
	// Submit retries them, and on retry they skip the entry now logged.
	cfg := config(t, env)
	retries := &countingHandler{Handler: cfg.Logger.Handler(), msg: "fabric submit retry", count: new(atomic.Int64)}
	cfg.Logger = slog.New(retries)
	l, err := fabric.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := newFixture(t, l)
	entry := func(name string) consent.AccessEntry {
		return consent.AccessEntry{
			ID: f.id(name), Time: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC), Action: "read",
			RecordID: f.id("rec"), PatientRef: f.patient, ActorRef: f.other, Role: "clinician",
			Purpose: consent.PurposeTreat, Decision: consent.DecisionAllow, Reasons: []string{"test"},
			PolicyDigest: "sha256:test",
		}
	}
	const n = 6
	results := make([]*consent.BatchResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], _, errs[i] = f.svc.LogAccessBatch(t.Context(), []consent.AccessEntry{entry("shared"), entry(fmt.Sprint("own", i))})
		})
	}
	wg.Wait()
	loggedShared := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("batch %d: %v", i, errs[i])
		}
		if slices.Contains(results[i].Logged, f.id("shared")) {
			loggedShared++
		}
		if !slices.Contains(results[i].Logged, f.id(fmt.Sprint("own", i))) {
			t.Errorf("batch %d did not log its own entry: %+v", i, results[i])
		}
	}
	if loggedShared != 1 {
		t.Errorf("the shared entry was logged by %d batches, want 1", loggedShared)
	}
	t.Logf("%d concurrent batches committed after %d retries", n, retries.count.Load())
}

// countingHandler counts log records with message msg, also through
// loggers derived with With.
type countingHandler struct {
	slog.Handler
	msg   string
	count *atomic.Int64
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.count.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{h.Handler.WithAttrs(as), h.msg, h.count}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{h.Handler.WithGroup(name), h.msg, h.count}
}

func testLatency(t *testing.T, env *network.Env) {
	l := open(t, env)
	f := newFixture(t, l)
	const n = 30
	var subs, evals []time.Duration
	for i := range n {
		start := time.Now()
		o, _, err := f.svc.RegisterOrg(t.Context(), consent.RegisterOrgArgs{ID: f.id(fmt.Sprint("o", i)), Name: "O", Type: consent.OrgLab})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, time.Since(start))
		start = time.Now()
		if _, err := f.svc.Org(t.Context(), o.ID); err != nil {
			t.Fatal(err)
		}
		evals = append(evals, time.Since(start))
	}
	slices.Sort(subs)
	slices.Sort(evals)
	t.Logf("submit, one at a time (n=%d): p50 %v, p90 %v, max %v", n, subs[n/2], subs[n*9/10], subs[n-1])
	t.Logf("evaluate (n=%d): p50 %v, p90 %v, max %v", n, evals[n/2], evals[n*9/10], evals[n-1])
}

func testPeerRestart(t *testing.T, env *network.Env) {
	l := open(t, env)
	f := newFixture(t, l)
	ctx := t.Context()
	hosp := f.org("hosp")
	live, paused := recordstest.NewMemStore(), recordstest.NewMemStore()
	liveName, pausedName := "live-"+f.prefix, "paused-"+f.prefix
	stopLive := readModel(t, l, live, liveName)
	defer stopLive()
	stopPaused := readModel(t, l, paused, pausedName)
	subCtx, cancelSub := context.WithCancel(ctx)
	defer cancelSub()
	events := l.Subscribe(subCtx)

	c1, r1, err := f.grant(ctx, "c1", hosp)
	if err != nil {
		t.Fatal(err)
	}
	waitStored(t, paused, pausedName, r1.Block, c1)
	stopPaused() // it has applied c1; it will have to catch up on the rest

	env.StopPeer(t, "hospital")
	stopped := time.Now()
	// Queries move on to the insurer's peer.
	if got, err := f.svc.Consent(ctx, c1.ID); err != nil || got.Version != 1 {
		t.Errorf("Consent with the hospital peer down = %+v, %v", got, err)
	}
	// The MAJORITY policy needs both peers: a submit fails, within bounds.
	start := time.Now()
	_, _, err = f.grant(ctx, "c-down", hosp)
	t.Logf("submit with the hospital peer down: %q after %v", consent.ErrorCode(err), time.Since(start).Round(time.Millisecond))
	switch {
	case err == nil && listening(env.Peers["hospital"].Address):
		// network.sh up, run by a concurrent test process's Ensure,
		// restarts stopped peers: the submit was right to succeed.
		t.Logf("the hospital peer was restarted by another user of the network; down-phase check skipped")
	default:
		wantCode(t, "submit with a peer down", err, consent.EUNAVAILABLE)
	}

	env.StartPeer(t, "hospital")
	t.Logf("hospital peer down for %v", time.Since(stopped).Round(time.Millisecond))
	start = time.Now()
	c2, r2, err := f.grant(ctx, "c2", hosp)
	if err != nil {
		t.Fatalf("first submit after restart: %v", err)
	}
	t.Logf("first submit after restart took %v", time.Since(start).Round(time.Millisecond))
	rev, r3, err := f.svc.Revoke(ctx, c1.ID, f.patient)
	if err != nil {
		t.Fatalf("revoke after restart: %v", err)
	}
	if got, err := f.svc.Consent(ctx, c1.ID); err != nil || got.Status != consent.StatusRevoked {
		t.Errorf("Consent after restart = %+v, %v; want revoked", got, err)
	}

	// The subscription survived the restart and saw both commits.
	for _, tx := range []string{r2.TxID, r3.TxID} {
		waitEvent(t, events, tx)
	}
	// The read model that kept running caught up through the restart...
	waitStored(t, live, liveName, r3.Block, c2, rev)
	// ...and the one stopped before it resumes from its checkpoint.
	if cp, _ := paused.Checkpoint(ctx, pausedName); cp >= r2.Block {
		t.Fatalf("paused read model checkpoint %d already past block %d", cp, r2.Block)
	}
	stopPaused = readModel(t, l, paused, pausedName)
	defer stopPaused()
	waitStored(t, paused, pausedName, r3.Block, c2, rev)
	t.Logf("read models caught up: last event block %d, revoke in block %d", l.LastEventBlock(), r3.Block)
}

// listening reports whether something accepts connections at addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func testOpenUnreachable(t *testing.T, env *network.Env) {
	// A profile whose peers and orderer listen nowhere: Open says
	// unavailable rather than hanging or failing later.
	cfg := config(t, env)
	raw, err := os.ReadFile(env.Profile)
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"7050", "7051", "9051"} {
		raw = bytes.ReplaceAll(raw, []byte("127.0.0.1:"+port), []byte("127.0.0.1:1"+port[1:]))
	}
	cfg.Profile = filepath.Join(t.TempDir(), "unreachable.yaml")
	if err := os.WriteFile(cfg.Profile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l, err := fabric.Open(t.Context(), cfg)
	if err == nil {
		l.Close()
	}
	wantCode(t, "Open with no network", err, consent.EUNAVAILABLE)
	t.Logf("Open failed in %v", time.Since(start).Round(time.Millisecond))
}
