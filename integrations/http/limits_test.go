package http

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// goodToken is the only token stubAuth accepts.
const goodToken = "good-token"

// stubAuth accepts goodToken as a provider of hospital-a.
func stubAuth(_ context.Context, token string) (policy.Subject, error) {
	if token == goodToken {
		return policy.Subject{ID: "dr-1", Role: "provider", Org: "hospital-a", OrgType: "hospital"}, nil
	}
	return policy.Subject{}, consent.Errorf(consent.EUNAUTHORIZED, "token is invalid")
}

// countingListener counts the bytes the server reads from its connections.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.read}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// startServer serves cfg (with stubAuth unless set) on a loopback port and
// returns its address and the byte counter of its listener.
func startServer(t *testing.T, cfg Config) (string, *Server, *countingListener) {
	t.Helper()
	if cfg.Authenticate == nil {
		cfg.Authenticate = stubAuth
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	done := make(chan error, 1)
	go func() { done <- s.Serve(cl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), s, cl
}

// rawExchange writes head and body on a new connection and reads one
// response, waiting at most 5 s: a server that waits for a body the client
// never sends fails the test instead of hanging it.
func rawExchange(t *testing.T, addr, head string, body []byte) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the body was not sent: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// checkProblem fails unless resp is a problem+json body with status want.
func checkProblem(t *testing.T, resp *http.Response, body []byte, want int) Problem {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, problemContentType) {
		t.Fatalf("content type %q, want %s: %s", ct, problemContentType, body)
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Status != want || p.Detail == "" {
		t.Fatalf("problem body %s: %v", body, err)
	}
	return p
}

// head builds a request head; token "" sends no Authorization header.
func head(method, path, token string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: medshare.test\r\n", method, path)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// TestBodyRefusedBeforeRead announces bodies of 10 MiB and sends none of
// them: the server must answer from the headers alone, 413 on every route
// but the upload route (64 KiB there, before any token check) and 401 on
// the upload route without a valid token (its large limit applies only to
// callers whose token verified).
func TestBodyRefusedBeforeRead(t *testing.T) {
	addr, _, _ := startServer(t, Config{})
	const tenMiB = "Content-Length: 10485760"
	ctJSON := "Content-Type: application/json"
	tests := []struct {
		note string
		head string
		body string
		want int
	}{
		{"consent grant, valid token", head("POST", "/v1/consents", goodToken, ctJSON, tenMiB), "", 413},
		{"consent grant, no token", head("POST", "/v1/consents", "", ctJSON, tenMiB), "", 413},
		{"org registration, no token", head("POST", "/v1/orgs", "", ctJSON, tenMiB), "", 413},
		{"health check with a body", head("GET", "/healthz", "", tenMiB), "", 413},
		{"unknown route", head("PUT", "/nowhere", "", tenMiB), "", 413},
		{"upload, no token", head("POST", "/v1/records", "", ctJSON, tenMiB), "", 401},
		{"upload, bad token", head("POST", "/v1/records", "forged", ctJSON, tenMiB), "", 401},
		{"upload spelled /V1/Records/, no token", head("POST", "/V1/Records/", "", ctJSON, tenMiB), "", 401},
		{"upload in absolute form, no token", head("POST", "http://medshare.test/v1/records", "", ctJSON, tenMiB), "", 401},
		{"upload, valid token, over the 12 MiB upload limit", head("POST", "/v1/records", goodToken, ctJSON, "Content-Length: 12582913"), "", 413},
		{"chunked consent body announcing a 100 KiB chunk", head("POST", "/v1/consents", goodToken, ctJSON, "Transfer-Encoding: chunked"), "19000\r\n", 413},
		{"chunked upload, no token", head("POST", "/v1/records", "", ctJSON, "Transfer-Encoding: chunked"), "19000\r\n", 401},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			resp, body := rawExchange(t, addr, tt.head, []byte(tt.body))
			checkProblem(t, resp, body, tt.want)
		})
	}
}

// TestSmallBodyLimitAppliesToAuthenticatedCallers: only POST /v1/records
// takes bodies over the small limit, whoever the caller.
func TestSmallBodyLimitAppliesToAuthenticatedCallers(t *testing.T) {
	addr, _, _ := startServer(t, Config{BodyLimit: 1 << 20, SmallBodyLimit: 4 << 10})
	big := bytes.Repeat([]byte("x"), 8<<10)
	hdr := func(path string) string {
		return head("POST", path, goodToken, "Content-Type: application/json", fmt.Sprintf("Content-Length: %d", len(big)))
	}
	resp, body := rawExchange(t, addr, hdr("/v1/consents"), big)
	checkProblem(t, resp, body, 413)
	// The upload route reads it: the handler answers about the JSON, not
	// the size.
	resp, body = rawExchange(t, addr, hdr("/v1/records"), big)
	if p := checkProblem(t, resp, body, 400); !strings.Contains(p.Detail, "JSON object") {
		t.Fatalf("upload of 8 KiB: %s", body)
	}
}

// TestUnauthenticatedUploadsNotRead opens many connections that each try
// to upload 4 MiB without a token: every one is refused and the server
// reads no more than its header buffer from each.
func TestUnauthenticatedUploadsNotRead(t *testing.T) {
	addr, _, counter := startServer(t, Config{})
	const conns, size = 16, 4 << 20
	var wg sync.WaitGroup
	var answered, refused atomic.Int64
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			go func() {
				_, _ = io.WriteString(conn, head("POST", "/v1/records", "", "Content-Type: application/json", fmt.Sprintf("Content-Length: %d", size)))
				chunk := bytes.Repeat([]byte("x"), 32<<10)
				for sent := 0; sent < size; sent += len(chunk) {
					if _, err := conn.Write(chunk); err != nil {
						return // the server closed the connection
					}
				}
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				return // a reset can swallow the answer; the byte count decides
			}
			answered.Add(1)
			if resp.StatusCode == http.StatusUnauthorized {
				refused.Add(1)
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	read := counter.read.Load()
	t.Logf("%d connections tried %d MiB each; %d answers, %d of them 401; the server read %d bytes in all",
		conns, size>>20, answered.Load(), refused.Load(), read)
	if read > conns*64<<10 {
		t.Fatalf("the server read %d bytes from %d unauthenticated uploads: bodies were read before the token was checked", read, conns)
	}
	if refused.Load() != answered.Load() || answered.Load() == 0 {
		t.Fatalf("%d answers, %d of them 401", answered.Load(), refused.Load())
	}
}

// TestEncodedBodyRefused: a compressed body could expand far beyond the
// body limit when decoded, so Content-Encoding other than identity is 415.
func TestEncodedBodyRefused(t *testing.T) {
	addr, _, _ := startServer(t, Config{})
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write([]byte(`{"grantee":{"org":"x"}}`))
	_ = w.Close()
	for _, path := range []string{"/v1/consents", "/v1/records"} {
		resp, body := rawExchange(t, addr, head("POST", path, goodToken, "Content-Type: application/json", "Content-Encoding: gzip",
			fmt.Sprintf("Content-Length: %d", gz.Len())), gz.Bytes())
		checkProblem(t, resp, body, http.StatusUnsupportedMediaType)
	}
}

// TestConnsPerIP: one address may hold MaxConnsPerIP connections; the next
// is answered 429 problem+json and closed, and a slot frees on close.
func TestConnsPerIP(t *testing.T) {
	addr, _, _ := startServer(t, Config{MaxConnsPerIP: 2})
	open := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, r *bufio.Reader) (*http.Response, []byte, error) {
		if _, err := io.WriteString(c, head("GET", "/healthz", "")); err != nil {
			return nil, nil, err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	var held []net.Conn
	for range 2 {
		c, r := open()
		if resp, b, err := get(c, r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection within the limit: %v %s", err, b)
		}
		held = append(held, c)
	}
	c, r := open()
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("third connection: no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkProblem(t, resp, b, http.StatusTooManyRequests)
	c.Close()
	held[0].Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, r := open()
		resp, _, err := get(c, r)
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after a connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInflightBodyBudget: bodies being received count against one budget;
// an upload that would exceed it is refused 429 from its headers, and the
// budget frees when the holder's request ends.
func TestInflightBodyBudget(t *testing.T) {
	addr, s, _ := startServer(t, Config{BodyLimit: 256 << 10, MaxInflightBytes: 256 << 10})
	upload := func(n int) string {
		return head("POST", "/v1/records", goodToken, "Content-Type: application/json", fmt.Sprintf("Content-Length: %d", n))
	}
	holder, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	_ = holder.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(holder, upload(200<<10)+"xx"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); s.gate.inUse() < 200<<10; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first upload reserved %d bytes", s.gate.inUse())
		}
	}
	resp, body := rawExchange(t, addr, upload(100<<10), nil)
	checkProblem(t, resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// The holder finishes; its bytes are released with its answer.
	if _, err := holder.Write(bytes.Repeat([]byte("x"), 200<<10-2)); err != nil {
		t.Fatal(err)
	}
	hr, err := http.ReadResponse(bufio.NewReader(holder), nil)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != 400 {
		t.Fatalf("holder: %d", hr.StatusCode)
	}
	for deadline := time.Now().Add(3 * time.Second); s.gate.inUse() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still reserved after every request ended", s.gate.inUse())
		}
	}
	resp, body = rawExchange(t, addr, upload(100<<10), bytes.Repeat([]byte("x"), 100<<10))
	checkProblem(t, resp, body, 400)
}
