package http

import (
	"strings"
	"testing"

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
		{"truncated", `{"a":"x"`, false},
		{"mongo operator as value is just a string mismatch", `{"a":{"$gt":""}}`, false},
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

// FuzzDecodeStrict feeds arbitrary bytes to the request decoders: they must
// never panic and must reject or accept cleanly.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"patient":"p-7","category":"lab","contentType":"text/plain","content":"x"}`,
		`{"claimId":"c","patient":"p","items":[{"recordId":"r","path":"/a","value":1}]}`,
		`{"grantee":{"org":"h"},"categories":["*"],"purposes":["TREAT"]}`, `{"a":{"a":{"a":[]}}}`, "\xff", `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var u uploadBody
		if decodeStrict(data, &u) == nil {
			_, _ = u.content()
		}
		var c records.ClaimRequest
		_ = decodeStrict(data, &c)
		var g records.GrantRequest
		_ = decodeStrict(data, &g)
	})
}
