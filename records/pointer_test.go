package records

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

func TestParsePointer(t *testing.T) {
	tests := []struct {
		note string
		in   string
		want []string
		code string
	}{
		{note: "whole document", in: "", want: nil},
		{note: "root key", in: "/a", want: []string{"a"}},
		{note: "nested with index", in: "/code/coding/0/code", want: []string{"code", "coding", "0", "code"}},
		{note: "escapes ~1 and ~0", in: "/a~1b/c~0d", want: []string{"a/b", "c~d"}},
		{note: "~01 is ~1 not /", in: "/~01", want: []string{"~1"}},
		{note: "empty token", in: "/", want: []string{""}},
		{note: "no leading slash", in: "a/b", code: consent.EINVALID},
		{note: "bad escape", in: "/a~2", code: consent.EINVALID},
		{note: "dangling tilde", in: "/a~", code: consent.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			got, err := ParsePointer(tt.in)
			if consent.ErrorCode(err) != tt.code {
				t.Fatalf("ParsePointer(%q) err = %v, want code %q", tt.in, err, tt.code)
			}
			if diff := cmp.Diff(tt.want, got); tt.code == "" && diff != "" {
				t.Fatalf("ParsePointer(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestEvaluateItem(t *testing.T) {
	doc, err := decodeJSON([]byte(`{"code":{"coding":[{"code":"430193006"}]},"total":{"value":100.50},"flag":true,"n":null,"a/b":1}`))
	if err != nil {
		t.Fatal(err)
	}
	cr := &claimRecord{doc: doc}
	tests := []struct {
		note  string
		path  string
		value string
		ok    bool
	}{
		{"string matches", "/code/coding/0/code", `"430193006"`, true},
		{"string differs", "/code/coding/0/code", `"99"`, false},
		{"number equal in another spelling", "/total/value", `100.5`, true},
		{"number with exponent", "/total/value", `1.005e2`, true},
		{"number differs", "/total/value", `100.51`, false},
		{"string is not number", "/total/value", `"100.50"`, false},
		{"bool", "/flag", `true`, true},
		{"null", "/n", `null`, true},
		{"escaped key", "/a~1b", `1`, true},
		{"index out of range", "/code/coding/1/code", `"430193006"`, false},
		{"leading zero index", "/code/coding/00/code", `"430193006"`, false},
		{"dash index", "/code/coding/-", `"x"`, false},
		{"missing key", "/nope", `1`, false},
		{"object compares deeply", "/code/coding/0", `{"code":"430193006"}`, true},
		{"huge exponent compares as text", "/total/value", `1e999999999`, false},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			ok, reason := evaluateItem(cr, ClaimItem{Path: tt.path, Value: json.RawMessage(tt.value)})
			if ok != tt.ok {
				t.Fatalf("evaluate %s = %v (%s), want %v", tt.path, ok, reason, tt.ok)
			}
			if reason == "" {
				t.Fatal("no reason")
			}
		})
	}
	if ok, reason := evaluateItem(nil, ClaimItem{Path: "/a", Value: json.RawMessage(`1`)}); ok || reason != "record not found for this patient" {
		t.Fatalf("missing record: %v %q", ok, reason)
	}
}

// FuzzPointer checks that pointer parsing and evaluation never panic; that
// a pointer which parses is exactly its tokens escaped again (so no two
// spellings reach one path); and that a claim item naming it is judged
// exactly as resolving it and comparing values says, with a reason.
// Committed seeds live in testdata/fuzz/FuzzPointer.
func FuzzPointer(f *testing.F) {
	for _, s := range []string{"", "/", "/a/0", "/a~1b", "/~", "/a/-", "/0/00"} {
		f.Add(s, `{"a":[1,{"b":2}],"a/b":3}`, `2`)
	}
	escape := strings.NewReplacer("~", "~0", "/", "~1")
	f.Fuzz(func(t *testing.T, ptr, doc, value string) {
		toks, err := ParsePointer(ptr)
		if err != nil {
			if consent.ErrorCode(err) != consent.EINVALID {
				t.Fatalf("ParsePointer(%q): %v", ptr, err)
			}
			return
		}
		again := ""
		for _, tok := range toks {
			again += "/" + escape.Replace(tok)
		}
		if again != ptr {
			t.Fatalf("ParsePointer(%q) = %q, which escapes back to %q", ptr, toks, again)
		}
		d, err := decodeJSON([]byte(doc))
		if err != nil {
			return
		}
		got, found := resolve(d, toks)
		want, err := decodeJSON([]byte(value))
		if err != nil {
			return
		}
		match := found && jsonEqual(got, want)
		if found && !jsonEqual(got, got) {
			t.Fatalf("value at %q is not equal to itself", ptr)
		}
		ok, reason := evaluateItem(&claimRecord{doc: d}, ClaimItem{RecordID: "r-1", Path: ptr, Value: json.RawMessage(value)})
		if ok != match || reason == "" {
			t.Fatalf("evaluate %q in %s against %s = %v (%q), want %v", ptr, doc, value, ok, reason, match)
		}
	})
}
