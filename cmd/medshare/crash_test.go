package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medshare/medshare/integrations/jwt"
)

// serveEnv, when set, makes the test binary act as `medshare serve` with
// the given data dir: TestCrashSafety runs it as a child and kills it.
const serveEnv = "MEDSHARE_TEST_SERVE_DATA"

// TestHelperServe is not a test: it is the child server of TestCrashSafety.
func TestHelperServe(t *testing.T) {
	dir := os.Getenv(serveEnv)
	if dir == "" {
		return
	}
	os.Exit(run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data", dir}, os.Stdout, os.Stderr))
}

// child is a running server process.
type child struct {
	cmd *exec.Cmd
	url string
}

func startChild(tb testing.TB, dir string) *child {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperServe$")
	cmd.Env = append(os.Environ(), serveEnv+"="+dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	deadline := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		var line struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "medshare serving" {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return &child{cmd: cmd, url: line.URL}
		}
	}
	tb.Fatalf("child server did not start")
	return nil
}

// ledgerBook records what the server acknowledged.
type ledgerBook struct {
	mu       sync.Mutex
	records  []string
	consents []string
	revoked  map[string]bool
	access   []string
}

func (b *ledgerBook) add(f func()) { b.mu.Lock(); f(); b.mu.Unlock() }

// load runs mixed requests against url until ctx ends or the server dies,
// noting every acknowledgement in book.
func load(ctx context.Context, url string, tok map[string]string, book *ledgerBook, worker int) {
	c := newClient(url)
	rng := rand.New(rand.NewPCG(uint64(worker), uint64(time.Now().UnixNano())))
	for n := 0; ctx.Err() == nil; n++ {
		var nrec, ncons int
		book.add(func() { nrec, ncons = len(book.records), len(book.consents) })
		switch op := rng.IntN(4); {
		case op == 0 || nrec == 0:
			r, err := c.do(ctx, "POST", "/v1/records", tok["ash"], map[string]any{"patient": "p-7", "category": "lab",
				"contentType": "application/json", "content": fmt.Sprintf(`{"w":%d,"n":%d}`, worker, n)})
			if err != nil {
				return
			}
			var out struct{ ID string }
			if r.Status == 201 && r.JSON(&out) == nil {
				book.add(func() { book.records = append(book.records, out.ID) })
			}
		case op == 1:
			r, err := c.do(ctx, "POST", "/v1/consents", tok["p7"], map[string]any{"grantee": map[string]string{"org": "hospital-b"},
				"categories": []string{"lab"}, "purposes": []string{"TREAT"}})
			if err != nil {
				return
			}
			var out struct{ ID string }
			if r.Status == 201 && r.JSON(&out) == nil {
				book.add(func() { book.consents = append(book.consents, out.ID) })
			}
		case op == 2 && ncons > 0:
			var id string
			book.add(func() { id = book.consents[rng.IntN(len(book.consents))] })
			r, err := c.do(ctx, "DELETE", "/v1/consents/"+id, tok["p7"], nil)
			if err != nil {
				return
			}
			if r.Status == 200 {
				book.add(func() { book.revoked[id] = true })
			}
		default:
			var id string
			book.add(func() { id = book.records[rng.IntN(len(book.records))] })
			r, err := c.do(ctx, "GET", "/v1/records/"+id, tok["bo"], nil, "X-Purpose-Of-Use", "TREAT")
			if err != nil {
				return
			}
			if a := r.Header.Get("X-Access-Id"); a != "" && (r.Status == 200 || r.Status == 403) {
				book.add(func() { book.access = append(book.access, a) })
			}
		}
	}
}

// TestCrashSafety kills the server with SIGKILL at random points under a
// concurrent load of uploads, grants, revokes and fetches, ten times. After
// each kill the ledger verifies and every acknowledged record, consent,
// revoke and access entry is there.
func TestCrashSafety(t *testing.T) {
	if os.Getenv(serveEnv) != "" {
		return
	}
	dir := t.TempDir()
	ch := startChild(t, dir)
	tok := childTokens(t, dir)
	c := newClient(ch.url)
	for _, o := range demoOrgs {
		if r, err := c.do(context.Background(), "POST", "/v1/orgs", tok["admin"], map[string]string{"id": o[0], "name": o[1], "type": o[2]}); err != nil || r.Status != 201 {
			t.Fatalf("register org: %v %v", err, r)
		}
	}
	// p-7 registers with hospital-a (a consent with an empty scope), so
	// Dr Ash may store her records.
	if r, err := c.do(context.Background(), "POST", "/v1/consents", tok["p7"], map[string]any{"grantee": map[string]string{"org": "hospital-a"}, "categories": []string{}, "purposes": []string{"TREAT"}}); err != nil || r.Status != 201 {
		t.Fatalf("register p-7 with hospital-a: %v %v", err, r)
	}
	book := &ledgerBook{revoked: map[string]bool{}}
	const kills = 10
	for round := 1; round <= kills; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); load(ctx, ch.url, tok, book, w) }()
		}
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = ch.cmd.Wait()
		cancel()
		wg.Wait()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"ledger", "verify", "--data", dir}, &out, &errOut); code != 0 {
			t.Fatalf("round %d: ledger does not verify after kill -9: %s", round, errOut.String())
		}
		ch = startChild(t, dir)
		found := checkBook(t, ch.url, tok, book)
		t.Logf("kill %d: acknowledged %d records, %d consents, %d revokes, %d access entries; found %s",
			round, len(book.records), len(book.consents), len(book.revoked), len(book.access), found)
	}
	// Entries journaled before the kills reach the ledger after restart.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pending := pendingAccess(t, ch.url, tok, book)
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged access entries still pending 10s after the last restart", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all %d acknowledged access entries anchored after the last restart", len(book.access))
}

// pendingAccess returns how many acknowledged access entries the access
// log shows as not yet anchored (or not at all).
func pendingAccess(tb testing.TB, url string, tok map[string]string, book *ledgerBook) int {
	tb.Helper()
	anchored := map[string]bool{}
	for after := ""; ; {
		r, err := newClient(url).do(context.Background(), "GET", "/v1/access-log?limit=1000&after="+after, tok["aud"], nil)
		if err != nil || r.Status != 200 {
			tb.Fatalf("access log: %v %v", err, r)
		}
		var page struct {
			Entries []struct {
				ID     string
				Ledger struct{ Status string }
			}
			Next string
		}
		if err := r.JSON(&page); err != nil {
			tb.Fatal(err)
		}
		for _, e := range page.Entries {
			anchored[e.ID] = e.Ledger.Status == "anchored"
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	n := 0
	for _, id := range book.access {
		if !anchored[id] {
			n++
		}
	}
	return n
}

// checkBook checks every acknowledged item is present after a restart and
// returns the counts found.
func checkBook(tb testing.TB, url string, tok map[string]string, book *ledgerBook) string {
	tb.Helper()
	ctx := context.Background()
	c := newClient(url)
	recs, cons, revs := 0, 0, 0
	for _, id := range book.records {
		if r, err := c.do(ctx, "GET", "/v1/records/"+id, tok["ash"], nil, "X-Purpose-Of-Use", "TREAT"); err != nil || r.Status != 200 {
			tb.Fatalf("acknowledged record %s lost: %v %v", id, err, r)
		}
		recs++
	}
	for _, id := range book.consents {
		r, err := c.do(ctx, "GET", "/v1/consents/"+id, tok["p7"], nil)
		if err != nil || r.Status != 200 {
			tb.Fatalf("acknowledged consent %s lost: %v %v", id, err, r)
		}
		cons++
		if book.revoked[id] {
			if !strings.Contains(string(r.Body), `"status":"revoked"`) {
				tb.Fatalf("acknowledged revoke of %s lost: %s", id, r.Body)
			}
			revs++
		}
	}
	seen := map[string]bool{}
	for after := ""; ; {
		r, err := c.do(ctx, "GET", "/v1/access-log?limit=1000&after="+after, tok["aud"], nil)
		if err != nil || r.Status != 200 {
			tb.Fatalf("access log: %v %v", err, r)
		}
		var page struct {
			Entries []struct{ ID string }
			Next    string
		}
		if err := r.JSON(&page); err != nil {
			tb.Fatal(err)
		}
		for _, e := range page.Entries {
			seen[e.ID] = true
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	acc := 0
	for _, id := range book.access {
		if !seen[id] {
			tb.Fatalf("acknowledged access entry %s lost", id)
		}
		acc++
	}
	return fmt.Sprintf("%d records, %d consents, %d revokes, %d access entries", recs, cons, revs, acc)
}

// childTokens mints the actors' tokens with the dev issuer key of the node
// whose data dir is dir.
func childTokens(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	key, err := jwt.LoadOrCreateKey(keysOf(dir).devIssuer())
	if err != nil {
		tb.Fatal(err)
	}
	iss, err := jwt.NewIssuer(key, devIssuer, audience)
	if err != nil {
		tb.Fatal(err)
	}
	mint := func(sub, role, org string) string {
		s, err := iss.Mint(sub, role, org, 2*time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	return map[string]string{"admin": mint("admin-1", "admin", ""), "ash": mint("dr-ash", "provider", "hospital-a"),
		"bo": mint("dr-bo", "provider", "hospital-b"), "p7": mint("p-7", "patient", ""), "aud": mint("aud-1", "auditor", "audit-office")}
}
