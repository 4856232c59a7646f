package main

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medshare/medshare/integrations/localledger"
	"github.com/medshare/medshare/integrations/mongo/mongotest"
	"github.com/medshare/medshare/records"
)

// testWriter sends narration to t.Log line by line.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testConfig(dir string) Config {
	// The claim quota as served by default (the journeys meet it); the
	// break-glass and refusal limits off (the matrix sends thousands of
	// refusals per actor): TestBreakGlassLimitOverHTTP turns one on.
	return Config{Addr: "127.0.0.1:0", Data: dir, Ledger: "embedded", MongoDB: "medshare", BodyLimitMB: 1,
		ClaimAttempts: records.DefaultClaimAttempts}
}

// MustStart opens and serves a node on a loopback port, closed at cleanup.
func MustStart(tb testing.TB, cfg Config) *Main {
	tb.Helper()
	m, err := Open(context.Background(), cfg, newLogger(io.Discard, "error"))
	if err != nil {
		tb.Fatalf("open node: %v", err)
	}
	if err := m.Listen(); err != nil {
		m.Close()
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func newJourneys(tb testing.TB, m *Main) *journeys {
	return &journeys{c: newClient(m.URL()), out: testWriter{tb}, mint: func(sub, role, org string) (string, error) {
		return m.Issuer.Mint(sub, role, org, 10*time.Minute)
	}}
}

// contentMarkers are strings from the demo records that must never appear
// in clear anywhere under the data dir.
var contentMarkers = []string{"Medication Reconciliation", "430193006", "HPV, quadrivalent", "panic", "GRACEMED HEALTH"}

// assertNoPlaintext scans every file under dir for content markers.
func assertNoPlaintext(tb testing.TB, dir string) {
	tb.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range contentMarkers {
			if bytes.Contains(b, []byte(m)) {
				tb.Errorf("plaintext %q found at rest in %s", m, p)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if files < 3 {
		tb.Fatalf("only %d files under %s: scan saw nothing", files, dir)
	}
}

func TestJourneysEmbedded(t *testing.T) {
	dir := t.TempDir()
	m := MustStart(t, testConfig(dir))
	if err := newJourneys(t, m).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoPlaintext(t, dir)
	assertKeyModes(t, dir)
	key, err := readNodeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := localledger.Verify(context.Background(), ledgerPath(dir), &key.PublicKey); err != nil {
		t.Fatalf("ledger verify after journeys: %v", err)
	}
}

func TestJourneysMongo(t *testing.T) {
	uri := mongotest.StartFerretDB(t)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MongoURI = uri
	m := MustStart(t, cfg)
	if err := newJourneys(t, m).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(storePath(dir)); err == nil {
		t.Fatal("embedded store file exists although MEDSHARE_MONGO_URI was set")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoPlaintext(t, dir)
}

// assertKeyModes checks every key file is 0600 in a 0700 dir.
func assertKeyModes(tb testing.TB, dir string) {
	tb.Helper()
	kd := filepath.Join(dir, "keys")
	st, err := os.Stat(kd)
	if err != nil {
		tb.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		tb.Errorf("keys dir mode %v, want 0700", st.Mode().Perm())
	}
	ents, err := os.ReadDir(kd)
	if err != nil {
		tb.Fatal(err)
	}
	want := map[string]bool{"kek-1.key": true, "pepper.key": true, "dev-issuer.pem": true, "receipt-signer.pem": true, "ledger-node.pem": true}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			tb.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			tb.Errorf("key %s mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
		delete(want, e.Name())
	}
	if len(want) > 0 {
		tb.Errorf("key files missing: %v", want)
	}
	// The data dir holds keys/, ledger/ and store/ and nothing else.
	top, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range top {
		if n := e.Name(); n != "keys" && n != "ledger" && n != "store" {
			tb.Errorf("unexpected %s in data dir", n)
		}
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	m := MustStart(t, testConfig(dir))
	j := newJourneys(t, m)
	if err := j.run(ctx); err != nil {
		t.Fatal(err)
	}
	waitNoPending(t, j)
	before := snapshot(t, j)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := MustStart(t, testConfig(dir))
	j2 := newJourneys(t, m2)
	j2.tokens = map[string]string{}
	after := snapshot(t, j2)
	if before != after {
		t.Fatalf("state differs after restart:\nbefore %s\nafter  %s", before, after)
	}
	// Tokens minted before the restart still verify (the dev key persisted).
	tok := j.tokens["admin-1|admin|"]
	r, err := newClient(m2.URL()).do(ctx, "GET", "/v1/orgs", tok, nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("old token after restart: %v %d %s", err, r.Status, r.Body)
	}
	// A record uploaded before the restart still decrypts for its patient.
	j2.procID = j.procID
	if _, err := j2.expect(ctx, 200, "GET", "/v1/records/"+j.procID, patient7, nil, "X-Purpose-Of-Use", "PATRQT"); err != nil {
		t.Fatal(err)
	}
}

// snapshot summarizes what the API shows: orgs, p-7's records and consents,
// and the size of the access log.
// waitNoPending waits until the access log shows no pending entry: the
// worker cuts journaled entries into ledger blocks within about
// embeddedAnchorInterval.
func waitNoPending(tb testing.TB, j *journeys) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := j.expect(context.Background(), 200, "GET", "/v1/access-log?limit=1000", auditor1, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if !strings.Contains(string(r.Body), `"status":"pending"`) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("access entries still pending after 5s: %s", r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func snapshot(tb testing.TB, j *journeys) string {
	tb.Helper()
	ctx := context.Background()
	var out []string
	for _, q := range []struct {
		path  string
		actor [3]string
	}{{"/v1/orgs", admin}, {"/v1/records?patient=p-7", patient7}, {"/v1/consents", patient7}, {"/v1/access-log?limit=1000", auditor1}} {
		r, err := j.expect(ctx, 200, "GET", q.path, q.actor, nil)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, string(r.Body))
	}
	return strings.Join(out, "\n")
}

func TestDemoCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"demo"}, &out, &errOut); code != 0 {
		t.Fatalf("medshare demo exited %d:\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"behaved as expected", "Ledger verified"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
