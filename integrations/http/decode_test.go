package http

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

func TestDecodeStrict(t *testing.T) {
	type body struct {
		A string   `json:"a"`
		B []string `json:"b"`
		C any      `json:"c"`
	}
	tests := []struct {
		note string
		in   string
		ok   bool
	}{
		{"plain object", `{"a":"x","b":["y"]}`, true},
		{"whitespace after object", "{\"a\":\"x\"}\n  ", true},
		{"nested within limit", `{"c":` + strings.Repeat("[", 30) + strings.Repeat("]", 30) + `}`, true},
		{"empty body", ``, false},
		{"only spaces", `   `, false},
		{"unknown field", `{"a":"x","z":1}`, false},
		{"duplicate field", `{"a":"x","a":"y"}`, false},
		{"duplicate field in nested object", `{"c":{"k":1,"k":2}}`, false},
		{"same key in sibling objects is fine", `{"c":[{"k":1},{"k":2}]}`, true},
		{"trailing object", `{"a":"x"}{"a":"y"}`, false},
		{"trailing garbage", `{"a":"x"} xyz`, false},
		{"invalid UTF-8", "{\"a\":\"\xff\xfe\"}", false},
		{"too deep", `{"c":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, false},
		{"wrong type", `{"a":1}`, false},
		{"not an object", `[1,2]`, false},
		{"null is not an object", ` null `, false},
		{"a string is not an object", `"{}"`, false},
		{"truncated", `{"a":"x"`, false},
		{"mongo operator as value is just a string mismatch", `{"a":{"$gt":""}}`, false},
		{"field name in another case", `{"A":"x"}`, false},
		{"second spelling of a field overrides nothing", `{"a":"x","A":"y"}`, false},
		{"escaped field name is the same name", `{"\u0061":"x"}`, true},
		{"keys inside a free-form value keep their case", `{"c":{"K":1,"k":2}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			var b body
			err := decodeStrict([]byte(tt.in), &b)
			if (err == nil) != tt.ok {
				t.Fatalf("decodeStrict(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && consent.ErrorCode(err) != consent.EINVALID {
				t.Fatalf("error code = %q, want invalid", consent.ErrorCode(err))
			}
		})
	}
}

// TestDecodeStrictFieldSpelling sends upload bodies whose second spelling
// of a field encoding/json would accept (it matches names case-insensitively,
// with Unicode folding): each must be refused, not decoded as the last one.
func TestDecodeStrictFieldSpelling(t *testing.T) {
	const rest = `"category":"lab","contentType":"text/plain"`
	tests := []struct{ note, in string }{
		{"upper-case duplicate overrides patient", `{"patient":"p-7","PATIENT":"p-8",` + rest + `,"content":"x"}`},
		{"only a case variant of patient", `{"Patient":"p-8",` + rest + `,"content":"x"}`},
		{"long s folds to s", `{"patient":"p-7",` + rest + `,"contentBa\u017fe64":"eA=="}`},
		{"long s as raw UTF-8", "{\"patient\":\"p-7\"," + rest + ",\"contentBa\u017fe64\":\"eA==\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			var u uploadBody
			err := decodeStrict([]byte(tt.in), &u)
			if consent.ErrorCode(err) != consent.EINVALID {
				t.Fatalf("decodeStrict(%s) = %v (patient %q), want invalid", tt.in, err, u.Patient)
			}
		})
	}
}

// FuzzDecodeStrict feeds arbitrary bytes to the request decoders of every
// endpoint with a body. None may panic; every refusal is EINVALID; and a body
// one of them accepts is valid UTF-8 JSON, a single object, nested no deeper
// than maxJSONDepth. Committed seeds live in testdata/fuzz/FuzzDecodeStrict.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"patient":"p-7","category":"lab","contentType":"text/plain","content":"x"}`,
		`{"claimId":"c","patient":"p","items":[{"recordId":"r","path":"/a","value":1}]}`,
		`{"grantee":{"org":"h"},"categories":["*"],"purposes":["TREAT"]}`, `{"a":{"a":{"a":[]}}}`, "\xff", `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var (
			u  uploadBody
			c  records.ClaimRequest
			g  records.GrantRequest
			o  consent.RegisterOrgArgs
			st struct {
				Status string `json:"status"`
			}
		)
		for _, v := range []any{&u, &c, &g, &o, &st} {
			err := decodeStrict(data, v)
			if err != nil {
				if code := consent.ErrorCode(err); code != consent.EINVALID {
					t.Fatalf("decode %T: code %q, want invalid: %v", v, code, err)
				}
				continue
			}
			if !utf8.Valid(data) || !json.Valid(data) || bytes.TrimSpace(data)[0] != '{' {
				t.Fatalf("decode %T accepted %q", v, data)
			}
			if d := depth(data); d > maxJSONDepth {
				t.Fatalf("decode %T accepted nesting %d", v, d)
			}
		}
		if decodeStrict(data, &u) != nil {
			return
		}
		// An accepted upload means what a reader matching names exactly sees.
		var exact map[string]json.RawMessage
		if err := json.Unmarshal(data, &exact); err != nil {
			t.Fatalf("accepted body is no object: %v", err)
		}
		for name, got := range map[string]string{"patient": u.Patient, "category": u.Category, "contentType": u.ContentType} {
			var want string
			if raw, ok := exact[name]; ok && json.Unmarshal(raw, &want) != nil {
				t.Fatalf("%s: %s is no string", name, raw)
			}
			if got != want {
				t.Fatalf("%s decoded as %q, but the body says %q", name, got, want)
			}
		}
		if _, err := u.content(); err != nil && consent.ErrorCode(err) != consent.EINVALID {
			t.Fatalf("content: %v", err)
		}
	})
}

// depth returns the deepest nesting of brackets outside strings in valid
// JSON.
func depth(data []byte) int {
	d, top, inStr, esc := 0, 0, false, false
	for _, b := range data {
		switch {
		case esc:
			esc = false
		case inStr && b == '\\':
			esc = true
		case b == '"':
			inStr = !inStr
		case inStr:
		case b == '{' || b == '[':
			d++
			top = max(top, d)
		case b == '}' || b == ']':
			d--
		}
	}
	return top
}
