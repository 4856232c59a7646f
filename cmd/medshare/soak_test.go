//go:build soak

package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rssKiB reads a process's resident set size from /proc.
func rssKiB(tb testing.TB, pid int) int {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// TestSoak drives a bounded mixed load (uploads, grants, revokes, fetches,
// claim checks, access-log reads) at a server process on loopback for
// MEDSHARE_SOAK_DURATION (default 60s), then reports throughput, errors
// (must be 0) and the server's RSS, which must level off.
func TestSoak(t *testing.T) {
	dur := 60 * time.Second
	if v := os.Getenv("MEDSHARE_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > time.Hour {
			t.Fatalf("MEDSHARE_SOAK_DURATION=%q: want a duration up to 1h", v)
		}
		dur = d
	}
	dir := t.TempDir()
	ch := startChild(t, dir)
	tok := childTokens(t, dir)
	c := newClient(ch.url)
	ctx := context.Background()
	for _, o := range demoOrgs {
		if r, err := c.do(ctx, "POST", "/v1/orgs", tok["admin"], map[string]string{"id": o[0], "name": o[1], "type": o[2]}); err != nil || r.Status != 201 {
			t.Fatalf("register org: %v %v", err, r)
		}
	}
	// p-7 registers with hospital-a (a consent with an empty scope), so
	// Dr Ash may store her records.
	if r, err := c.do(ctx, "POST", "/v1/consents", tok["p7"], map[string]any{"grantee": map[string]string{"org": "hospital-a"}, "categories": []string{}, "purposes": []string{"TREAT"}}); err != nil || r.Status != 201 {
		t.Fatalf("register p-7 with hospital-a: %v %v", err, r)
	}
	pid := ch.cmd.Process.Pid
	rssStart := rssKiB(t, pid)
	book := &ledgerBook{revoked: map[string]bool{}}
	var ops, errs atomic.Int64
	var rssWarm int
	lctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			soakWorker(lctx, c, tok, book, w, &ops, &errs)
		}()
	}
	time.Sleep(dur / 10)
	rssWarm = rssKiB(t, pid)
	wg.Wait()
	rssEnd := rssKiB(t, pid)
	rate := float64(ops.Load()) / dur.Seconds()
	t.Logf("soak %s: %d requests (%.0f/s), %d errors; server RSS %d MiB at start, %d MiB after warm-up, %d MiB at end",
		dur, ops.Load(), rate, errs.Load(), rssStart/1024, rssWarm/1024, rssEnd/1024)
	if errs.Load() != 0 {
		t.Fatalf("%d errors under soak", errs.Load())
	}
	if rssEnd > rssWarm*3/2+32*1024 {
		t.Fatalf("server RSS grew from %d MiB to %d MiB", rssWarm/1024, rssEnd/1024)
	}
	found := checkBook(t, ch.url, tok, book)
	t.Logf("after soak, acknowledged items found: %s", found)
}

// soakWorker runs mixed requests until ctx ends; any unexpected status is
// an error.
func soakWorker(ctx context.Context, c *client, tok map[string]string, book *ledgerBook, w int, ops, errs *atomic.Int64) {
	for n := 0; ctx.Err() == nil; n++ {
		var nrec int
		var rec, cons string
		book.add(func() {
			nrec = len(book.records)
			if nrec > 0 {
				rec = book.records[(n*7+w)%nrec]
			}
			if len(book.consents) > 0 {
				cons = book.consents[len(book.consents)-1]
			}
		})
		var r *response
		var err error
		want := 200
		switch k := n % 10; {
		case k == 0 || nrec == 0:
			want = 201
			r, err = c.do(ctx, "POST", "/v1/records", tok["ash"], map[string]any{"patient": "p-7", "category": "lab", "contentType": "application/json", "content": `{"v":` + strconv.Itoa(n) + `}`})
			if err == nil && r.Status == 201 {
				var out struct{ ID string }
				if r.JSON(&out) == nil {
					book.add(func() { book.records = append(book.records, out.ID) })
				}
			}
		case k == 1:
			want = 201
			r, err = c.do(ctx, "POST", "/v1/consents", tok["p7"], map[string]any{"grantee": map[string]string{"org": "hospital-b"}, "categories": []string{"lab"}, "purposes": []string{"TREAT"}})
			if err == nil && r.Status == 201 {
				var out struct{ ID string }
				if r.JSON(&out) == nil {
					book.add(func() { book.consents = append(book.consents, out.ID) })
				}
			}
		case k == 2 && cons != "":
			r, err = c.do(ctx, "GET", "/v1/consents/"+cons, tok["p7"], nil)
		case k == 6 && cons != "":
			// Revoke the newest consent; another worker may have done it.
			r, err = c.do(ctx, "DELETE", "/v1/consents/"+cons, tok["p7"], nil)
			if err == nil && r.Status == 409 {
				want = 409
			} else if err == nil && r.Status == 200 {
				book.add(func() { book.revoked[cons] = true })
			}
		case k == 3:
			r, err = c.do(ctx, "GET", "/v1/access-log?limit=50", tok["p7"], nil)
		case k == 4:
			r, err = c.do(ctx, "GET", "/v1/records?patient=p-7&limit=20", tok["bo"], nil)
		default:
			r, err = c.do(ctx, "GET", "/v1/records/"+rec, tok["ash"], nil, "X-Purpose-Of-Use", "TREAT")
		}
		if ctx.Err() != nil {
			return
		}
		ops.Add(1)
		if err != nil || r.Status != want {
			errs.Add(1)
		}
	}
}
