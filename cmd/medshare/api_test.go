package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawDo sends a raw request body with a content type.
func rawDo(tb testing.TB, base, method, path, token, ctype string, body []byte, headers ...string) *response {
	tb.Helper()
	r, err := rawTry(base, method, path, token, ctype, body, headers...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// rawTry is rawDo returning its error.
func rawTry(base, method, path, token, ctype string, body []byte, headers ...string) (*response, error) {
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}, nil
}

// setupOrgs registers the demo organizations on m.
func setupOrgs(tb testing.TB, m *Main) *journeys { return setupOrgsNS(tb, m, "") }

// setupOrgsNS registers the demo organizations with ids suffixed by ns, and
// patient p-7 with hospital-a.
func setupOrgsNS(tb testing.TB, m *Main, ns string) *journeys {
	tb.Helper()
	j := newJourneys(tb, m)
	j.tokens, j.ns = map[string]string{}, ns
	for _, o := range demoOrgs {
		if _, err := j.expect(context.Background(), 201, "POST", "/v1/orgs", admin, map[string]string{"id": j.n(o[0]), "name": o[1], "type": o[2]}); err != nil {
			tb.Fatal(err)
		}
	}
	// p-7 registers with hospital-a, so Dr Ash may store her records.
	if _, err := j.register(context.Background(), patient7, "hospital-a"); err != nil {
		tb.Fatal(err)
	}
	return j
}

func TestAPIErrors(t *testing.T) {
	m := MustStart(t, testConfig(t.TempDir()))
	j := setupOrgs(t, m)
	prov, _ := j.token(drAsh[0], drAsh[1], drAsh[2])
	pat, _ := j.token(patient7[0], patient7[1], patient7[2])
	upload := `{"patient":"p-7","category":"lab","contentType":"text/plain","content":"hello"}`
	tests := []struct {
		note         string
		method, path string
		token, ctype string
		body         string
		headers      []string
		want         int
	}{
		{note: "no token", method: "GET", path: "/v1/orgs", want: 401},
		{note: "garbage token", method: "GET", path: "/v1/orgs", token: "abc.def.ghi", want: 401},
		{note: "basic auth scheme", method: "GET", path: "/v1/orgs", token: "", headers: []string{"Authorization", "Basic Zm9vOmJhcg=="}, want: 401},
		{note: "malformed JSON", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: `{"patient":`, want: 400},
		{note: "unknown field", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: `{"patient":"p-7","x":1}`, want: 400},
		{note: "trailing data", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: upload + `{}`, want: 400},
		{note: "duplicate field", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: `{"patient":"p-7","patient":"p-8","category":"lab","contentType":"text/plain","content":"x"}`, want: 400},
		{note: "wrong content type", method: "POST", path: "/v1/records", token: prov, ctype: "text/plain", body: upload, want: 415},
		{note: "both content forms", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: `{"patient":"p-7","category":"lab","contentType":"text/plain","content":"x","contentBase64":"eA=="}`, want: 400},
		{note: "bad base64", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: `{"patient":"p-7","category":"lab","contentType":"text/plain","contentBase64":"***"}`, want: 400},
		{note: "patient id like a path", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: `{"patient":"../etc","category":"lab","contentType":"text/plain","content":"x"}`, want: 400},
		{note: "patient id as mongo operator", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: `{"patient":{"$gt":""},"category":"lab","contentType":"text/plain","content":"x"}`, want: 400},
		{note: "category not a token", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: `{"patient":"p-7","category":"Lab Results","contentType":"text/plain","content":"x"}`, want: 400},
		{note: "patient cannot upload", method: "POST", path: "/v1/records", token: pat, ctype: "application/json", body: upload, want: 403},
		{note: "missing purpose", method: "GET", path: "/v1/records/r-nope", token: prov, want: 400},
		{note: "unknown purpose", method: "GET", path: "/v1/records/r-nope", token: prov, headers: []string{"X-Purpose-Of-Use", "MARKETING"}, want: 400},
		{note: "unknown record", method: "GET", path: "/v1/records/r-nope", token: prov, headers: []string{"X-Purpose-Of-Use", "TREAT"}, want: 404},
		{note: "record id with NUL", method: "GET", path: "/v1/records/a%00b", token: prov, headers: []string{"X-Purpose-Of-Use", "TREAT"}, want: 400},
		{note: "unknown consent", method: "GET", path: "/v1/consents/c-nope", token: pat, want: 404},
		{note: "consent with unknown purpose", method: "POST", path: "/v1/consents", token: pat, ctype: "application/json", body: `{"grantee":{"org":"hospital-b"},"categories":["lab"],"purposes":["SELL"]}`, want: 400},
		{note: "consent with an invalid category", method: "POST", path: "/v1/consents", token: pat, ctype: "application/json", body: `{"grantee":{"org":"hospital-b"},"categories":["Lab!"],"purposes":["TREAT"]}`, want: 400},
		{note: "consent for unknown org", method: "POST", path: "/v1/consents", token: pat, ctype: "application/json", body: `{"grantee":{"org":"nowhere"},"categories":["lab"],"purposes":["TREAT"]}`, want: 400},
		{note: "consent in the past", method: "POST", path: "/v1/consents", token: pat, ctype: "application/json", body: `{"grantee":{"org":"hospital-b"},"categories":["lab"],"purposes":["TREAT"],"validUntil":"2001-01-01T00:00:00Z"}`, want: 400},
		{note: "provider cannot grant", method: "POST", path: "/v1/consents", token: prov, ctype: "application/json", body: `{"grantee":{"org":"hospital-b"},"categories":["lab"],"purposes":["TREAT"]}`, want: 403},
		{note: "patient cannot register orgs", method: "POST", path: "/v1/orgs", token: pat, ctype: "application/json", body: `{"id":"x","name":"X","type":"hospital"}`, want: 403},
		{note: "claim with invalid pointer", method: "POST", path: "/v1/claims/verify", token: prov, ctype: "application/json", body: `{"claimId":"c1","patient":"p-7","items":[{"recordId":"r-1","path":"a/b","value":1}]}`, want: 400},
		{note: "claim citing free text", method: "POST", path: "/v1/claims/verify", token: prov, ctype: "application/json", body: `{"claimId":"c1","patient":"p-7","items":[{"recordId":"r-1","path":"/note/0/text","value":"divorce"}]}`, want: 400},
		{note: "claim citing a name", method: "POST", path: "/v1/claims/verify", token: prov, ctype: "application/json", body: `{"claimId":"c1","patient":"p-7","items":[{"recordId":"r-1","path":"/status","value":"final"},{"recordId":"r-1","path":"/subject/display","value":"Jane Roe"}]}`, want: 400},
		{note: "claim value not a scalar", method: "POST", path: "/v1/claims/verify", token: prov, ctype: "application/json", body: `{"claimId":"c1","patient":"p-7","items":[{"recordId":"r-1","path":"/status","value":{"a":1}}]}`, want: 400},
		{note: "deeply nested JSON", method: "POST", path: "/v1/consents", token: pat, ctype: "application/json", body: `{"grantee":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100) + `}`, want: 400},
		{note: "invalid UTF-8", method: "POST", path: "/v1/records", token: prov, ctype: "application/json", body: "{\"patient\":\"p-7\",\"category\":\"lab\",\"contentType\":\"text/plain\",\"content\":\"\xff\xfe\"}", want: 400},
		{note: "huge array of categories", method: "POST", path: "/v1/consents", token: pat, ctype: "application/json", body: `{"grantee":{"org":"hospital-b"},"categories":[` + strings.TrimSuffix(strings.Repeat(`"lab",`, 5000), ",") + `],"purposes":["TREAT"]}`, want: 400},
		{note: "too many claim items", method: "POST", path: "/v1/claims/verify", token: prov, ctype: "application/json", body: `{"claimId":"c1","patient":"p-7","items":[` + strings.TrimSuffix(strings.Repeat(`{"recordId":"r-1","path":"/status","value":1},`, 500), ",") + `]}`, want: 400},
		{note: "record id that looks like a mongo operator", method: "GET", path: "/v1/records/$gt", token: prov, headers: []string{"X-Purpose-Of-Use", "TREAT"}, want: 400},
		{note: "record id with a dot-dot path", method: "GET", path: "/v1/records/..%2f..%2fetc", token: prov, headers: []string{"X-Purpose-Of-Use", "TREAT"}, want: 400},
		{note: "consent id with NUL", method: "DELETE", path: "/v1/consents/c%00x", token: pat, want: 400},
		{note: "non-numeric limit", method: "GET", path: "/v1/access-log?limit=ten", token: pat, want: 400},
		{note: "unknown route", method: "GET", path: "/v1/nothing", token: pat, want: 404},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			r := rawDo(t, m.URL(), tt.method, tt.path, tt.token, tt.ctype, []byte(tt.body), tt.headers...)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.want, r.Body)
			}
			assertProblem(t, r)
		})
	}
	// Nothing half-written: the failed uploads left no record.
	r, err := j.expect(context.Background(), 200, "GET", "/v1/records?patient=p-7", drAsh, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r.Body), `"records":[]`) {
		t.Fatalf("failed uploads left records: %s", r.Body)
	}
}

// TestBodyLimit announces a body over the limit and reads the answer
// without sending the body: the server refuses it up front with 413.
func TestBodyLimit(t *testing.T) {
	m := MustStart(t, testConfig(t.TempDir()))
	j := setupOrgs(t, m)
	prov, _ := j.token(drAsh[0], drAsh[1], drAsh[2])
	conn, err := net.Dial("tcp", strings.TrimPrefix(m.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", prov, 2<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := &response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if r.Status != 413 {
		t.Fatalf("status %d, want 413: %s", r.Status, body)
	}
	assertProblem(t, r)
}

// assertProblem checks an error response is problem+json with its fields.
func assertProblem(tb testing.TB, r *response) {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		tb.Fatalf("content type %q, want application/problem+json (body %.200s)", ct, r.Body)
	}
	var p Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		tb.Fatalf("problem body: %v", err)
	}
	if p.Type == "" || p.Title == "" || p.Status != r.Status || p.Detail == "" {
		tb.Fatalf("incomplete problem: %+v", p)
	}
}

// Problem mirrors the API's problem+json body.
type Problem struct {
	Type, Title, Detail string
	Status              int
}

func TestPublicEndpoints(t *testing.T) {
	m := MustStart(t, testConfig(t.TempDir()))
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := rawDo(t, m.URL(), "GET", p, "", "", nil); r.Status != 200 {
			t.Fatalf("%s: %d %s", p, r.Status, r.Body)
		}
	}
	r := rawDo(t, m.URL(), "GET", "/.well-known/jwks.json", "", "", nil)
	var set struct {
		Keys []struct{ Kid, Alg, Kty string }
	}
	if err := json.Unmarshal(r.Body, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("jwks: %v %s", err, r.Body)
	}
	for _, k := range set.Keys {
		if k.Kid == "" || k.Alg != "ES256" || k.Kty != "EC" {
			t.Fatalf("jwks key %+v", k)
		}
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("security headers missing: %v", r.Header)
	}
}

func TestOrgStatusGatesTokens(t *testing.T) {
	m := MustStart(t, testConfig(t.TempDir()))
	j := setupOrgs(t, m)
	ctx := context.Background()
	if _, err := j.expect(ctx, 200, "GET", "/v1/orgs", drBo, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := j.expect(ctx, 200, "PATCH", "/v1/orgs/hospital-b", admin, map[string]string{"status": "inactive"}); err != nil {
		t.Fatal(err)
	}
	r, err := j.expect(ctx, 403, "GET", "/v1/orgs", drBo, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertProblem(t, r)
	ghost := [3]string{"dr-x", "provider", "ghost-hospital"}
	if _, err := j.expect(ctx, 403, "GET", "/v1/orgs", ghost, nil); err != nil {
		t.Fatal(err)
	}
	// A patient cannot grant to an inactive org.
	if _, err := j.expect(ctx, 400, "POST", "/v1/consents", patient7, map[string]any{
		"grantee": map[string]string{"org": "hospital-b"}, "categories": []string{"lab"}, "purposes": []string{"TREAT"}}); err != nil {
		t.Fatal(err)
	}
}

func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	m := MustStart(t, testConfig(dir))
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"token", "--data", dir, "--role", "admin", "--sub", "ops-1", "--ttl", "5m"}, &out, &errOut); code != 0 {
		t.Fatalf("token exited %d: %s", code, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	if r := rawDo(t, m.URL(), "GET", "/v1/orgs", tok, "", nil); r.Status != 200 {
		t.Fatalf("minted token refused: %d %s", r.Status, r.Body)
	}
	if code := run(context.Background(), []string{"token", "--data", dir, "--role", "admin"}, &out, &errOut); code == 0 {
		t.Fatal("token without --sub succeeded")
	}
	// An expired token is refused.
	expired, err := m.Issuer.Mint("ops-1", "admin", "", -time.Minute)
	if err == nil {
		if r := rawDo(t, m.URL(), "GET", "/v1/orgs", expired, "", nil); r.Status != 401 {
			t.Fatalf("expired token: %d", r.Status)
		}
	}
}

func TestLedgerVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	m := MustStart(t, testConfig(dir))
	setupOrgs(t, m)
	m.Close()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"ledger", "verify", "--data", dir}, &out, &errOut); code != 0 {
		t.Fatalf("ledger verify exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "ledger OK") {
		t.Fatalf("ledger verify output: %s", out.String())
	}
	if code := run(context.Background(), []string{"ledger", "verify", "--data", t.TempDir()}, &out, &errOut); code == 0 {
		t.Fatal("ledger verify of an empty dir succeeded")
	}
}
