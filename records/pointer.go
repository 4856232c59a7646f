package records

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"

	"github.com/medshare/medshare/consent"
)

// maxPointerLen bounds a JSON Pointer (RFC 6901) in a claim item.
const maxPointerLen = 1024

// ParsePointer splits an RFC 6901 JSON Pointer into unescaped reference
// tokens. "" is the whole document. EINVALID for a pointer that does not
// start with "/", has a "~" not followed by 0 or 1, or is too long.
func ParsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if len(p) > maxPointerLen {
		return nil, consent.Errorf(consent.EINVALID, "JSON Pointer is longer than %d characters", maxPointerLen)
	}
	if p[0] != '/' {
		return nil, consent.Errorf(consent.EINVALID, "JSON Pointer %q must start with /", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, consent.Errorf(consent.EINVALID, "JSON Pointer %q has an invalid ~ escape", p)
			}
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

// decodeJSON decodes doc keeping numbers exact (json.Number).
func decodeJSON(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, consent.Errorf(consent.EINVALID, "trailing data after JSON value")
	}
	return v, nil
}

// resolve walks tokens through a decoded document; ok is false when the
// path does not exist.
func resolve(v any, toks []string) (any, bool) {
	for _, t := range toks {
		switch n := v.(type) {
		case map[string]any:
			next, ok := n[t]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, ok := arrayIndex(t)
			if !ok || i >= len(n) {
				return nil, false
			}
			v = n[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// arrayIndex parses an RFC 6901 array index: "0" or no leading zeros.
func arrayIndex(t string) (int, bool) {
	if t == "" || len(t) > 9 || (len(t) > 1 && t[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(t)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// jsonEqual compares decoded JSON values; numbers compare by exact value,
// so 100, 100.0 and 1e2 are equal.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numEqual(string(x), string(y))
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// numEqual compares two JSON numbers exactly. Numbers with huge exponents
// (which would make big.Rat allocate without bound) compare as text.
func numEqual(x, y string) bool {
	if x == y {
		return true
	}
	if !smallExponent(x) || !smallExponent(y) {
		return false
	}
	rx, okx := new(big.Rat).SetString(x)
	ry, oky := new(big.Rat).SetString(y)
	return okx && oky && rx.Cmp(ry) == 0
}

// smallExponent reports whether a JSON number's exponent is within ±400.
func smallExponent(n string) bool {
	i := strings.IndexAny(n, "eE")
	if i < 0 {
		return len(n) <= 400
	}
	e, err := strconv.Atoi(strings.TrimPrefix(n[i+1:], "+"))
	return err == nil && e >= -400 && e <= 400 && i <= 400
}
