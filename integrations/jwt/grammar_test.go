package jwt

import (
	"context"
	"crypto/ecdsa"
	"strings"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
)

// lookalikes are subjects that render like (or normalize under NFKC to) an
// ASCII id but are other strings: each would be another patient if accepted.
var lookalikes = []struct{ note, id string }{
	{"U+2010 HYPHEN instead of '-'", "p\u20107"},
	{"U+2011 NON-BREAKING HYPHEN", "p\u20117"},
	{"U+2212 MINUS SIGN", "p\u22127"},
	{"full-width letter (NFKC: p-7)", "\uff50-7"},
	{"full-width digit (NFKC: p-7)", "p-\uff17"},
	{"zero-width space", "p-\u200b7"},
	{"zero-width joiner at the end", "p-7\u200d"},
	{"byte order mark in front", "\ufeffp-7"},
	{"soft hyphen", "p\u00ad-7"},
	{"ligature fi (NFKC: file)", "\ufb01le"},
	{"combining acute accent", "e\u0301"},
	{"Cyrillic р (U+0440) for Latin p", "\u0440-7"},
	{"NBSP", "p\u00a07"},
	{"space", "p 7"},
	{"an e-mail address", "alice@example.com"},
	{"a provider-prefixed id", "auth0|1234"},
	{"a leading dot", ".p-7"},
	{"a leading dash", "-p-7"},
	{"129 characters", strings.Repeat("a", 129)},
	{"a newline", "p-7\nforged log line"},
}

// TestVerifySubjectGrammar: sub must match [A-Za-z0-9._-]{1,128}, not
// starting with '.' or '-'; anything else is refused with a message naming
// the grammar, so look-alike spellings cannot become other patients.
func TestVerifySubjectGrammar(t *testing.T) {
	key := MustKey(t)
	v := MustVerifier(t, &key.PublicKey)
	hdr := map[string]any{"alg": "ES256", "kid": MustKID(t, key), "typ": "JWT"}
	sign := func(sub string) string {
		c := baseClaims()
		c["sub"] = sub
		return MustSign(t, key, hdr, c)
	}
	for _, tt := range lookalikes {
		t.Run("Err", func(t *testing.T) {
			_, err := v.Verify(context.Background(), sign(tt.id))
			if code, msg := errorCode(err); code != consent.EUNAUTHORIZED || msg != subjectGrammarMessage {
				t.Errorf("%s (%q): got %s %q, want %s %q", tt.note, tt.id, code, msg, consent.EUNAUTHORIZED, subjectGrammarMessage)
			}
		})
	}
	for _, sub := range []string{"p-7", "A.b_c-9", "0", strings.Repeat("a", 128), "patient.7_x"} {
		t.Run("OK", func(t *testing.T) {
			c, err := v.Verify(context.Background(), sign(sub))
			if err != nil || c.Subject != sub {
				t.Errorf("%q: got %+v, %v", sub, c, err)
			}
		})
	}
}

// TestVerifyOrgGrammar: org follows the same grammar as sub.
func TestVerifyOrgGrammar(t *testing.T) {
	key := MustKey(t)
	v := MustVerifier(t, &key.PublicKey)
	hdr := map[string]any{"alg": "ES256", "kid": MustKID(t, key), "typ": "JWT"}
	for _, tt := range lookalikes {
		t.Run("Err", func(t *testing.T) {
			c := baseClaims()
			c["role"], c["org"] = RoleProvider, "hospital-"+tt.id
			if tt.id == strings.Repeat("a", 129) || tt.id[0] == '.' || tt.id[0] == '-' {
				c["org"] = tt.id
			}
			_, err := v.Verify(context.Background(), MustSign(t, key, hdr, c))
			if code, msg := errorCode(err); code != consent.EUNAUTHORIZED || msg != orgGrammarMessage {
				t.Errorf("%s (%q): got %s %q, want %s %q", tt.note, c["org"], code, msg, consent.EUNAUTHORIZED, orgGrammarMessage)
			}
		})
	}
}

// TestMintSubjectGrammar: the dev issuer refuses to mint what Verify would
// refuse.
func TestMintSubjectGrammar(t *testing.T) {
	iss := MustIssuer(t, MustKey(t))
	for _, tt := range lookalikes {
		if _, err := iss.Mint(tt.id, RolePatient, "", time.Hour); consent.ErrorCode(err) != consent.EINVALID {
			t.Errorf("%s (%q): Mint: %v, want %s", tt.note, tt.id, err, consent.EINVALID)
		}
	}
}

// TestVerifyMaxLifetime: a token may live at most MaxLifetime (default
// 24h), measured as exp - iat, or exp - now when the token has no iat.
func TestVerifyMaxLifetime(t *testing.T) {
	key := MustKey(t)
	hdr := map[string]any{"alg": "ES256", "kid": MustKID(t, key), "typ": "JWT"}
	now := testNow()
	claims := func(iat, exp time.Time) map[string]any {
		c := baseClaims()
		if iat.IsZero() {
			delete(c, "iat")
		} else {
			c["iat"] = iat.Unix()
		}
		c["nbf"] = now.Add(-time.Hour).Unix()
		c["exp"] = exp.Unix()
		return c
	}
	tests := []struct {
		name, note string
		max        time.Duration // 0: the default
		iat, exp   time.Time
		wantMsg    string
	}{
		{name: "OK", note: "a 24h token is within the default", iat: now, exp: now.Add(24 * time.Hour)},
		{name: "OK", note: "no iat: 23h left", exp: now.Add(23 * time.Hour)},
		{name: "OK", note: "a 1h token under a 1h maximum", max: time.Hour, iat: now, exp: now.Add(time.Hour)},
		{name: "ErrTooLong", note: "a hand-signed 100-year token", iat: now, exp: now.AddDate(100, 0, 0),
			wantMsg: "token lifetime exceeds the maximum of 24h0m0s"},
		{name: "ErrTooLong", note: "24h and one second", iat: now, exp: now.Add(24*time.Hour + time.Second),
			wantMsg: "token lifetime exceeds the maximum of 24h0m0s"},
		{name: "ErrTooLong", note: "issued two days ago, one hour left: the lifetime counts, not what is left",
			iat: now.Add(-48 * time.Hour), exp: now.Add(time.Hour), wantMsg: "token lifetime exceeds the maximum of 24h0m0s"},
		{name: "ErrTooLong", note: "no iat: 25h left", exp: now.Add(25 * time.Hour),
			wantMsg: "token lifetime exceeds the maximum of 24h0m0s"},
		{name: "ErrTooLong", note: "a 2h token under a 1h maximum", max: time.Hour, iat: now, exp: now.Add(2 * time.Hour),
			wantMsg: "token lifetime exceeds the maximum of 1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(context.Background(), VerifierConfig{
				Issuer: testIssuer, Audience: testAudience, Keys: []*ecdsa.PublicKey{&key.PublicKey},
				Now: testNow, MaxLifetime: tt.max, CacheSize: 8,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			tok := MustSign(t, key, hdr, claims(tt.iat, tt.exp))
			for range 2 { // the second answer may come from the cache
				_, err = v.Verify(context.Background(), tok)
				if tt.wantMsg == "" {
					if err != nil {
						t.Fatalf("%s: %v", tt.note, err)
					}
					continue
				}
				if code, msg := errorCode(err); code != consent.EUNAUTHORIZED || msg != tt.wantMsg {
					t.Fatalf("%s: got %s %q, want %s %q", tt.note, code, msg, consent.EUNAUTHORIZED, tt.wantMsg)
				}
			}
		})
	}
	t.Run("ErrNegative", func(t *testing.T) {
		_, err := NewVerifier(context.Background(), VerifierConfig{
			Issuer: testIssuer, Audience: testAudience, Keys: []*ecdsa.PublicKey{&key.PublicKey}, MaxLifetime: -time.Second,
		})
		if consent.ErrorCode(err) != consent.EINVALID {
			t.Errorf("a negative maximum lifetime: %v, want %s", err, consent.EINVALID)
		}
	})
}
