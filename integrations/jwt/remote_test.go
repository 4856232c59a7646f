package jwt

import (
	"context"
	"crypto/ecdsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
)

// jwksServer serves a JWKS document that tests can swap, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	hits atomic.Int64
}

// MustJWKSServer starts a loopback server publishing keys.
func MustJWKSServer(tb testing.TB, keys ...*ecdsa.PublicKey) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.publish(tb, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	tb.Cleanup(s.Close)
	return s
}

// publish replaces the served JWKS.
func (s *jwksServer) publish(tb testing.TB, keys ...*ecdsa.PublicKey) {
	tb.Helper()
	body, err := JWKS(keys...)
	if err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

// mutableClock is a test clock that can be moved forward.
type mutableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *mutableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *mutableClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestVerifyJWKSURL(t *testing.T) {
	iss1, iss2, iss3 := MustIssuer(t, MustKey(t)), MustIssuer(t, MustKey(t)), MustIssuer(t, MustKey(t))
	srv := MustJWKSServer(t, iss1.PublicKey())
	clock := &mutableClock{now: testNow()}
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuer: testIssuer, Audience: testAudience,
		JWKSURL: srv.URL + "/.well-known/jwks.json", HTTPClient: srv.Client(), Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	mint := func(iss *Issuer) string {
		tok, err := iss.Mint("dr-1", RoleProvider, "hospital-b", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	verify := func(note, tok string, wantMsg string, wantHits int64) {
		t.Helper()
		_, err := v.Verify(context.Background(), tok)
		if _, msg := errorCode(err); msg != wantMsg {
			t.Errorf("%s: got %q (%v), want %q", note, msg, err, wantMsg)
		}
		if got := srv.hits.Load(); got != wantHits {
			t.Errorf("%s: %d JWKS fetches, want %d", note, got, wantHits)
		}
	}

	t.Run("OK", func(t *testing.T) {
		verify("a key from the first fetch", mint(iss1), "", 1)
	})
	t.Run("OK", func(t *testing.T) {
		srv.publish(t, iss1.PublicKey(), iss2.PublicKey())
		verify("a rotated-in key triggers one refresh", mint(iss2), "", 2)
		verify("then it is cached", mint(iss2), "", 2)
	})
	t.Run("ErrUnknownKID", func(t *testing.T) {
		verify("a second unknown kid within a minute does not refetch", mint(iss3), "unknown signing key", 2)
		clock.Advance(2 * time.Minute)
		verify("after a minute an unknown kid may refetch once", mint(iss3), "unknown signing key", 3)
		verify("and then not again", mint(iss3), "unknown signing key", 3)
	})
	t.Run("OK", func(t *testing.T) {
		srv.Close()
		verify("cached keys survive the issuer going down", mint(iss1), "", 3)
	})
}

func TestNewVerifierJWKSURL(t *testing.T) {
	key := MustKey(t)
	good, err := JWKS(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	withoutAlg := strings.Replace(string(good), `"alg":"ES256",`, "", 1)
	if withoutAlg == string(good) {
		t.Fatalf("JWKS layout changed: %s", good)
	}
	tests := []struct {
		name    string
		note    string
		handler http.HandlerFunc
		down    bool
	}{
		{name: "ErrUnavailable", note: "the server is down at start", down: true},
		{name: "ErrUnavailable", note: "the server answers 500",
			handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }},
		{name: "ErrUnavailable", note: "the body is not a JWKS",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }},
		{name: "ErrUnavailable", note: "the only key has no alg, and algorithms are never inferred",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(withoutAlg)) }},
		{name: "ErrUnavailable", note: "the only key is an HMAC secret, never accepted from a JWKS",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"h","alg":"HS256"}]}`))
			}},
		{name: "ErrUnavailable", note: "a body over 1 MiB",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSBytes) + `"}`))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			if tt.down {
				srv.Close()
			} else {
				defer srv.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, err := NewVerifier(ctx, VerifierConfig{
				Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL, HTTPClient: srv.Client(),
			})
			if err == nil {
				_ = v.Close()
				t.Fatalf("%s: NewVerifier succeeded", tt.note)
			}
			t.Logf("%s: %v", tt.note, err)
			if code := consent.ErrorCode(err); code != consent.EUNAVAILABLE {
				t.Errorf("%s: code %s, want %s (%v)", tt.note, code, consent.EUNAVAILABLE, err)
			}
		})
	}
}
