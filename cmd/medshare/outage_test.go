package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/localledger"
	"github.com/medshare/medshare/integrations/mongo/mongotest"
)

// outageBound is the longest any request may take while the store is
// down or coming back: well under the API's 30 s request timeout, since
// the driver gives up selecting a server after serverSelectionTimeoutMS.
const outageBound = 10 * time.Second

// outcome is one API call as the outage load saw it.
type outcome struct {
	status int
	ctype  string
	body   []byte
	took   time.Duration
	err    error
}

// call sends one request; unlike rawDo it is safe off the test goroutine.
func call(hc *http.Client, method, u, token string, body []byte, headers ...string) outcome {
	start := time.Now()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return outcome{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return outcome{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return outcome{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: b, took: time.Since(start), err: err}
}

// problemOK reports why o is not a well-formed 503 problem, or "".
func (o outcome) problemOK() string {
	var p Problem
	switch {
	case !strings.HasPrefix(o.ctype, "application/problem+json"):
		return fmt.Sprintf("content type %q", o.ctype)
	case json.Unmarshal(o.body, &p) != nil:
		return "body is not JSON"
	case p.Status != o.status || p.Title == "" || p.Type == "" || p.Detail == "":
		return fmt.Sprintf("incomplete problem %s", o.body)
	}
	return ""
}

// outageLoad keeps uploading, fetching and listing p-7's records while
// the store goes away or comes back, and tallies what it saw.
type outageLoad struct {
	t      *testing.T
	base   string
	prov   string // dr-ash's token
	pat    string // p-7's token
	record string // a record stored before the outage
	hc     *http.Client

	mu       sync.Mutex
	statuses map[int]int
	acked    []string // ids of uploads answered 201
	maxTook  time.Duration
	bad      []string
	lastOK   time.Time
}

// run sends requests from workers goroutines until ctx ends.
func (l *outageLoad) run(ctx context.Context, workers int) (wait func()) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				l.one(w, i)
			}
		})
	}
	return wg.Wait
}

// one sends request i of worker w: an upload, a fetch or a listing.
func (l *outageLoad) one(w, i int) {
	var o outcome
	var what string
	switch i % 3 {
	case 0:
		what = "upload"
		o = call(l.hc, "POST", l.base+"/v1/records", l.prov, fmt.Appendf(nil,
			`{"patient":"p-7","category":"lab","contentType":"application/json","content":{"w":%d,"i":%d}}`, w, i))
	case 1:
		what = "fetch"
		o = call(l.hc, "GET", l.base+"/v1/records/"+l.record, l.pat, nil, "X-Purpose-Of-Use", "PATRQT")
	default:
		what = "list"
		o = call(l.hc, "GET", l.base+"/v1/records?patient=p-7", l.prov, nil)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[o.status]++
	l.maxTook = max(l.maxTook, o.took)
	switch {
	case o.err != nil:
		l.bad = append(l.bad, fmt.Sprintf("%s: %v", what, o.err))
	case o.took > outageBound:
		l.bad = append(l.bad, fmt.Sprintf("%s took %v", what, o.took))
	case o.status == http.StatusServiceUnavailable:
		if why := o.problemOK(); why != "" {
			l.bad = append(l.bad, fmt.Sprintf("%s 503: %s", what, why))
		}
	case o.status == http.StatusCreated && what == "upload":
		var r struct{ ID string }
		if err := json.Unmarshal(o.body, &r); err != nil || r.ID == "" {
			l.bad = append(l.bad, fmt.Sprintf("upload 201 without id: %s", o.body))
		}
		l.acked = append(l.acked, r.ID)
		l.lastOK = time.Now()
	case o.status == http.StatusOK:
		l.lastOK = time.Now()
	default:
		l.bad = append(l.bad, fmt.Sprintf("%s: status %d: %.300s", what, o.status, o.body))
	}
}

// report logs the tally and fails the test on any bad outcome.
func (l *outageLoad) report(phase string) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s: statuses %v, slowest %v, %d uploads acknowledged so far", phase, l.statuses, l.maxTook.Round(time.Millisecond), len(l.acked))
	for _, b := range l.bad {
		l.t.Errorf("%s: %s", phase, b)
	}
	l.statuses, l.bad, l.maxTook = map[int]int{}, nil, 0
}

// withQuery adds query parameters to a MongoDB URI.
func withQuery(tb testing.TB, uri, query string) string {
	tb.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	extra, err := url.ParseQuery(query)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// TestStoreOutage stops the document store (FerretDB) under a running node
// with traffic in flight, and starts it again on the same address over the
// same files. While it is down, requests that need the store get 503
// problem+json within a few seconds (never 500, never a hang), /readyz is
// 503, what needs only the ledger (organizations) keeps working, and failed
// uploads leave no record, no anchor and no DEK. Once it is back the node recovers by
// itself: readyz 200, data from before the outage intact, uploads work.
func TestStoreOutage(t *testing.T) {
	srv := mongotest.StartServer(t)
	cfg := testConfig(t.TempDir())
	// Fail a request within about a second once no server answers. The
	// small pool makes requests queue for connections, so the outage also
	// meets them there (the driver's "connection pool was cleared").
	cfg.MongoURI = withQuery(t, srv.URI(), "serverSelectionTimeoutMS=1000&connectTimeoutMS=1000&maxPoolSize=2")
	m := MustStart(t, cfg)
	j := setupOrgs(t, m)
	ctx := context.Background()
	a, b := uploadTwo(t, j)
	for _, g := range []map[string]any{
		{"grantee": map[string]string{"org": "hospital-b"}, "categories": []string{"lab"}, "purposes": []string{"TREAT"}},
		{"grantee": map[string]string{"org": "insurer-x"}, "categories": []string{"lab"}, "purposes": []string{"HPAYMT"}},
	} {
		if _, err := j.expect(ctx, 201, "POST", "/v1/consents", patient7, g); err != nil {
			t.Fatal(err)
		}
	}
	tok := map[[3]string]string{}
	for _, actor := range [][3]string{drAsh, drBo, patient7, insurerX, auditor1} {
		var err error
		if tok[actor], err = j.token(actor[0], actor[1], actor[2]); err != nil {
			t.Fatal(err)
		}
	}
	load := &outageLoad{t: t, base: m.URL(), prov: tok[drAsh], pat: tok[patient7], record: a,
		hc: &http.Client{Timeout: 35 * time.Second}, statuses: map[int]int{}}

	// The store goes away under load.
	loadCtx, stopLoad := context.WithCancel(ctx)
	wait := load.run(loadCtx, 8)
	time.Sleep(300 * time.Millisecond)
	stopped := time.Now()
	srv.Stop()
	t.Logf("FerretDB stopped in %v", time.Since(stopped).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond) // let the load run into the outage
	stopLoad()
	wait()
	load.report("store going down")

	// Down: the store's endpoints answer 503 problem+json.
	hc := load.hc
	claim := fmt.Appendf(nil, `{"claimId":"c-1","patient":"p-7","items":[{"recordId":%q,"path":"/status","value":"final"}]}`, a)
	upload := []byte(`{"patient":"p-7","category":"lab","contentType":"text/plain","content":"during the outage"}`)
	ledger, ok := m.Ledger.(*localledger.Ledger)
	if !ok {
		t.Fatalf("ledger is %T, want the embedded one", m.Ledger)
	}
	height := ledger.Height()
	for _, c := range []struct {
		note          string
		method, path  string
		token         string
		body          []byte
		headers       []string
		want          int
		problemWanted bool
	}{
		{note: "readyz", method: "GET", path: "/readyz", want: 503, problemWanted: true},
		{note: "healthz (alive, just not ready)", method: "GET", path: "/healthz", want: 200},
		{note: "upload", method: "POST", path: "/v1/records", token: tok[drAsh], body: upload, want: 503, problemWanted: true},
		{note: "upload again", method: "POST", path: "/v1/records", token: tok[drAsh], body: upload, want: 503, problemWanted: true},
		{note: "patient fetches own record", method: "GET", path: "/v1/records/" + a, token: tok[patient7], headers: []string{"X-Purpose-Of-Use", "PATRQT"}, want: 503, problemWanted: true},
		{note: "consented provider fetches", method: "GET", path: "/v1/records/" + b, token: tok[drBo], headers: treat, want: 503, problemWanted: true},
		{note: "list records", method: "GET", path: "/v1/records?patient=p-7", token: tok[drAsh], want: 503, problemWanted: true},
		{note: "verify claim", method: "POST", path: "/v1/claims/verify", token: tok[insurerX], body: claim, want: 503, problemWanted: true},
		{note: "list orgs (ledger only)", method: "GET", path: "/v1/orgs", token: tok[drAsh], want: 200},
		// Consents and access entries live on the ledger, but their views
		// name patients through the store's aliases.
		{note: "list consents", method: "GET", path: "/v1/consents", token: tok[patient7], want: 503, problemWanted: true},
		{note: "access log", method: "GET", path: "/v1/access-log", token: tok[auditor1], want: 503, problemWanted: true},
	} {
		o := call(hc, c.method, m.URL()+c.path, c.token, c.body, c.headers...)
		switch {
		case o.err != nil:
			t.Errorf("down, %s: %v", c.note, o.err)
		case o.status != c.want:
			t.Errorf("down, %s: status %d, want %d: %.300s", c.note, o.status, c.want, o.body)
		case o.took > outageBound:
			t.Errorf("down, %s: took %v", c.note, o.took)
		case c.problemWanted && o.problemOK() != "":
			t.Errorf("down, %s: %s", c.note, o.problemOK())
		default:
			t.Logf("down, %s: %d in %v", c.note, o.status, o.took.Round(time.Millisecond))
		}
	}
	if h := ledger.Height(); h != height {
		t.Errorf("ledger grew from %d to %d blocks during failed uploads", height, h)
	}

	// The store comes back on the same address with the same files; the
	// node finds it again without being told.
	loadCtx, stopLoad = context.WithCancel(ctx)
	wait = load.run(loadCtx, 8)
	time.Sleep(time.Second) // the load meets the outage first
	restarted := time.Now()
	srv.Restart(t)
	ready := waitReady(t, hc, m.URL(), 30*time.Second)
	t.Logf("readyz 200 %v after FerretDB restarted", ready.Sub(restarted).Round(time.Millisecond))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		load.mu.Lock()
		ok := load.lastOK.After(ready)
		load.mu.Unlock()
		if ok || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	wait()
	load.report("store coming back")

	// Everything from before is there and the node works as before.
	assertRecovered(t, j, m, append([]string{a, b}, load.acked...))
}

// waitReady polls /readyz until it answers 200 and returns when it did.
func waitReady(tb testing.TB, hc *http.Client, base string, within time.Duration) time.Time {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		o := call(hc, "GET", base+"/readyz", "", nil)
		if o.err == nil && o.status == http.StatusOK {
			return time.Now()
		}
		if o.err == nil && o.status != http.StatusServiceUnavailable {
			tb.Fatalf("readyz: status %d: %s", o.status, o.body)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("node not ready %v after the store returned: %v %d %s", within, o.err, o.status, o.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertRecovered checks, after the outage, that every acknowledged record
// reads back, that p-7's listing holds exactly those, that no failed upload
// left a record behind, and that uploads and the ledger work.
func assertRecovered(t *testing.T, j *journeys, m *Main, acked []string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range acked {
		if _, err := j.expect(ctx, 200, "GET", "/v1/records/"+id, patient7, nil, "X-Purpose-Of-Use", "PATRQT"); err != nil {
			t.Fatal(err)
		}
	}
	// Failed uploads may have stored a pending record whose insert went
	// through while its reply was lost; such a record was never anchored,
	// is never shown, and start-up recovery deletes it.
	pending, err := m.Store.PendingRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pending {
		if _, err := m.Consent.GetAnchor(ctx, r.ID, r.Version); consent.ErrorCode(err) != consent.ENOTFOUND {
			t.Errorf("pending record %s after the outage: anchor lookup %v, want not found", r.ID, err)
		}
		if _, err := j.expect(ctx, 404, "GET", "/v1/records/"+r.ID, patient7, nil, "X-Purpose-Of-Use", "PATRQT"); err != nil {
			t.Error(err)
		}
	}
	if anchored, deleted, err := m.Service.RecoverPending(ctx); err != nil || anchored != 0 || deleted != len(pending) {
		t.Errorf("recover pending: anchored %d, deleted %d of %d: %v", anchored, deleted, len(pending), err)
	}
	t.Logf("after the outage: %d acknowledged records read back, %d orphaned pending records cleaned", len(acked), len(pending))

	r, err := j.expect(ctx, 201, "POST", "/v1/records", drAsh, map[string]any{
		"patient": "p-7", "category": "lab", "contentType": "text/plain", "content": "after the outage"})
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ ID string }
	if err := r.JSON(&up); err != nil {
		t.Fatal(err)
	}
	got, err := j.expect(ctx, 200, "GET", "/v1/records/"+up.ID, drBo, nil, treat...)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != "after the outage" {
		t.Fatalf("record after the outage reads %q", got.Body)
	}
	r, err = j.expect(ctx, 200, "GET", "/v1/records?patient=p-7&limit=1000", drAsh, nil)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Records []struct{ ID string } }
	if err := r.JSON(&list); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, rec := range list.Records {
		listed = append(listed, rec.ID)
	}
	want := append(slices.Clone(acked), up.ID)
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("p-7's records after the outage:\n got %v\nwant %v", listed, want)
	}
}
