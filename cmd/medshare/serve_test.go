package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLine is the part of a JSON log line the tests read.
type logLine struct {
	Level, Msg, URL string
}

// serveUntilServing runs `medshare serve args...` until it logs "medshare
// serving" and returns that line, the whole log so far, and a stop
// function returning the exit code.
func serveUntilServing(t *testing.T, args ...string) (logLine, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, append([]string{"serve"}, args...), io.Discard, &stderr) }()
	var once sync.Once
	exit := 0
	stop := func() int { // idempotent: the test and its cleanup may both stop
		once.Do(func() { cancel(); exit = <-code })
		return exit
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case c := <-code:
			cancel()
			t.Fatalf("serve exited with %d: %s", c, stderr.String())
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "medshare serving" {
				t.Cleanup(func() { stop() })
				return l, &stderr, stop
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	t.Fatalf("serve did not start: %s", stderr.String())
	return logLine{}, nil, nil
}

// TestTokenCommandNeedsAKey: `medshare token` on a directory without the
// dev issuer key refuses, instead of creating a key whose tokens no node
// accepts.
func TestTokenCommandNeedsAKey(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"token", "--data", dir, "--role", "admin", "--sub", "ops-1"}, &out, &errOut)
	if code == 0 {
		t.Fatalf("token on an empty data dir succeeded: %s", out.String())
	}
	want := fmt.Sprintf("no dev issuer key in %s: start `medshare serve --data %s` once first", filepath.Join(dir, "keys"), dir)
	if !strings.Contains(errOut.String(), want) {
		t.Fatalf("stderr %q, want it to contain %q", errOut.String(), want)
	}
	if _, err := os.Stat(keysOf(dir).devIssuer()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("token created a key: %v", err)
	}
}

// TestDevIssuerAnnouncesItself: serving without an identity provider logs
// a WARN line saying tokens are minted locally, for development only.
func TestDevIssuerAnnouncesItself(t *testing.T) {
	_, stderr, stop := serveUntilServing(t, "--addr", "127.0.0.1:0", "--data", t.TempDir())
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Level == "WARN" &&
			strings.Contains(l.Msg, "minted locally") && strings.Contains(l.Msg, "development only") {
			return
		}
	}
	t.Fatalf("no WARN line about the dev issuer:\n%s", stderr.String())
}

// TestDevIssuerStaysOnLoopback: the dev issuer refuses a non-loopback
// listen address unless explicitly allowed.
func TestDevIssuerStaysOnLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		var errOut bytes.Buffer
		code := run(ctx, []string{"serve", "--addr", addr, "--data", t.TempDir()}, io.Discard, &errOut)
		if code != 1 || !strings.Contains(errOut.String(), "--allow-dev-issuer-on-network") {
			t.Fatalf("serve --addr %s with the dev issuer: exit %d: %s", addr, code, errOut.String())
		}
	}
	for _, tt := range []struct {
		note string
		cfg  Config
		ok   bool
	}{
		{"loopback IPv4", Config{Addr: "127.0.0.1:8080"}, true},
		{"loopback IPv6", Config{Addr: "[::1]:8080"}, true},
		{"localhost", Config{Addr: "localhost:8080"}, true},
		{"all interfaces, allowed", Config{Addr: "0.0.0.0:8080", AllowDevIssuerOnNetwork: true}, true},
		{"all interfaces with an identity provider", Config{Addr: "0.0.0.0:8080", JWKSURL: "https://idp.example/jwks", JWTIssuer: "https://idp.example/"}, true},
		{"a LAN address", Config{Addr: "192.168.1.5:8080"}, false},
		{"a host name", Config{Addr: "medshare.example:8080"}, false},
	} {
		tt.cfg.BodyLimitMB = 12
		err := tt.cfg.validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: validate: %v, want ok=%v", tt.note, err, tt.ok)
		}
	}
	t.Setenv("MEDSHARE_ALLOW_DEV_ISSUER", "1")
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	if err := fs.Parse(nil); err != nil || !cfg.AllowDevIssuerOnNetwork {
		t.Fatalf("MEDSHARE_ALLOW_DEV_ISSUER=1: %v, allowed %v", err, cfg.AllowDevIssuerOnNetwork)
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key under dir; it returns their paths and a pool trusting it.
func writeSelfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "medshare test node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS: `serve --tls-cert --tls-key` terminates TLS itself; the
// token of `medshare token` works over it.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t, t.TempDir())
	data := t.TempDir()
	l, _, _ := serveUntilServing(t, "--addr", "127.0.0.1:0", "--data", data, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(l.URL, "https://127.0.0.1:") {
		t.Fatalf("serving at %q, want https", l.URL)
	}
	var tok bytes.Buffer
	if code := run(context.Background(), []string{"token", "--data", data, "--role", "admin", "--sub", "ops-1"}, &tok, io.Discard); code != 0 {
		t.Fatal("token failed")
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequest("GET", l.URL+"/v1/orgs", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok.String()))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET /v1/orgs over TLS: %d %s", resp.StatusCode, body)
	}
	// The certificate is checked at start-up: a key that does not match
	// it is a configuration error.
	_, otherKey, _ := writeSelfSigned(t, t.TempDir())
	var errOut bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--tls-cert", certFile, "--tls-key", otherKey}, io.Discard, &errOut); code != 1 {
		t.Fatalf("mismatched key: exit %d: %s", code, errOut.String())
	}
	if code := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--tls-cert", certFile}, io.Discard, &errOut); code != 1 {
		t.Fatalf("certificate without key: exit %d", code)
	}
}

// TestNodeBodiesBoundedBeforeAuth: on a running node, a body announced
// over the small limit is refused 413 from its headers on every route but
// the upload, and an upload without a valid token is refused 401 from its
// headers; neither waits for the body.
func TestNodeBodiesBoundedBeforeAuth(t *testing.T) {
	m := MustStart(t, testConfig(t.TempDir()))
	j := setupOrgs(t, m)
	prov, _ := j.token(drAsh[0], drAsh[1], drAsh[2])
	addr := strings.TrimPrefix(m.URL(), "http://")
	for _, tt := range []struct {
		note, method, path, token string
		length                    int
		want                      int
	}{
		{"consent grant with a valid token, 10 MiB", "POST", "/v1/consents", prov, 10 << 20, 413},
		{"org registration without a token, 10 MiB", "POST", "/v1/orgs", "", 10 << 20, 413},
		{"consent grant, 65 KiB", "POST", "/v1/consents", prov, 65 << 10, 413},
		{"upload without a token, 1 MiB (the node's upload limit)", "POST", "/v1/records", "", 1 << 20, 401},
		{"upload with a forged token, 1 MiB", "POST", "/v1/records", prov[:len(prov)-4] + "AAAA", 1 << 20, 401},
		{"upload with a valid token, over 1 MiB", "POST", "/v1/records", prov, 1<<20 + 1, 413},
	} {
		t.Run(tt.note, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			auth := ""
			if tt.token != "" {
				auth = "Authorization: Bearer " + tt.token + "\r\n"
			}
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", tt.method, tt.path, auth, tt.length)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer without the body: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			r := &response{Status: resp.StatusCode, Header: resp.Header, Body: body}
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.want, body)
			}
			assertProblem(t, r)
		})
	}
}

// TestLimitFlags: the request limits have flags and MEDSHARE_* variables,
// and validate refuses nonsense.
func TestLimitFlags(t *testing.T) {
	for k, v := range map[string]string{
		"MEDSHARE_BODY_LIMIT_MB": "20", "MEDSHARE_SMALL_BODY_LIMIT_KB": "32", "MEDSHARE_INFLIGHT_BODY_MB": "100",
		"MEDSHARE_MAX_CONNS_PER_IP": "8", "MEDSHARE_TOKEN_MAX_LIFETIME": "2h",
		"MEDSHARE_TLS_CERT": "/etc/medshare/tls.crt", "MEDSHARE_TLS_KEY": "/etc/medshare/tls.key",
	} {
		t.Setenv(k, v)
	}
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	if err := fs.Parse([]string{"--max-conns-per-ip", "9"}); err != nil {
		t.Fatal(err)
	}
	if cfg.BodyLimitMB != 20 || cfg.SmallBodyLimitKB != 32 || cfg.InflightBodyMB != 100 || cfg.MaxConnsPerIP != 9 ||
		cfg.TokenMaxLifetime != 2*time.Hour || cfg.TLSCert != "/etc/medshare/tls.crt" || cfg.TLSKey != "/etc/medshare/tls.key" {
		t.Fatalf("flags and environment: %+v", cfg)
	}
	base := func() Config { return Config{Addr: "127.0.0.1:0", BodyLimitMB: 12} }
	for _, tt := range []struct {
		note string
		edit func(c *Config)
	}{
		{"small limit above the upload limit", func(c *Config) { c.SmallBodyLimitKB = 13 << 10 }},
		{"budget below the upload limit", func(c *Config) { c.InflightBodyMB = 11 }},
		{"negative connections per IP", func(c *Config) { c.MaxConnsPerIP = -1 }},
		{"token lifetime under a minute", func(c *Config) { c.TokenMaxLifetime = time.Second }},
		{"token lifetime over 30 days", func(c *Config) { c.TokenMaxLifetime = 31 * 24 * time.Hour }},
		{"TLS certificate without key", func(c *Config) { c.TLSCert = "/x.crt" }},
		{"TLS files that do not exist", func(c *Config) { c.TLSCert, c.TLSKey = "/nonexistent.crt", "/nonexistent.key" }},
	} {
		c := base()
		tt.edit(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: validate accepted %+v", tt.note, c)
		}
	}
	c := base()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.SmallBodyLimitKB != 64 || c.InflightBodyMB != 48 || c.TokenMaxLifetime != 24*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
}
