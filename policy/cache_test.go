package policy

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestRuleCache checks ruleCache against the contract of
// topdown.VirtualCache: values and undefined results of rules, per frame;
// function results are not kept.
func TestRuleCache(t *testing.T) {
	c := &ruleCache{}
	p, q := ast.MustParseRef("data.a.p"), ast.MustParseRef("data.a.q")
	fn := ast.Ref{ast.NewTerm(ast.MustParseRef("data.a.f")), ast.StringTerm("x")}
	get := func(ref ast.Ref) (string, bool) {
		v, undefined := c.Get(ref)
		if v == nil {
			return "", undefined
		}
		return v.String(), undefined
	}
	expect := func(note string, ref ast.Ref, want string, wantUndefined bool) {
		t.Helper()
		if got, undefined := get(ref); got != want || undefined != wantUndefined {
			t.Errorf("%s: Get(%v) = %q, %v; want %q, %v", note, ref, got, undefined, want, wantUndefined)
		}
	}

	expect("empty", p, "", false)
	buf := copyRef(p)
	c.Put(buf, ast.IntNumberTerm(1))
	buf[2] = ast.StringTerm("changed") // the evaluator reuses its slices
	expect("put", p, "1", false)
	c.Put(q, nil)
	expect("undefined", q, "", true)
	c.Put(fn, ast.IntNumberTerm(2))
	expect("function", fn, "", false)

	c.Push()
	expect("new frame", p, "", false)
	c.Put(p, ast.IntNumberTerm(3))
	expect("in frame", p, "3", false)
	if keys := c.Keys(); len(keys) != 1 || !keys[0].Equal(p) {
		t.Errorf("Keys() = %v, want [%v]", keys, p)
	}
	c.Pop()
	expect("after pop", p, "1", false)
	if keys := c.Keys(); len(keys) != 1 || !keys[0].Equal(p) {
		t.Errorf("Keys() = %v, want [%v] (undefined ones are not keys)", keys, p)
	}

	for i := range 2 * maxRuleCacheEntries {
		c.Put(ast.Ref{ast.DefaultRootDocument, ast.IntNumberTerm(i)}, ast.IntNumberTerm(i))
	}
	if n := len(c.entries); n != maxRuleCacheEntries {
		t.Errorf("%d entries, want at most %d", n, maxRuleCacheEntries)
	}
}

// copyRef copies ref, like the buffer the evaluator reuses.
func copyRef(ref ast.Ref) ast.Ref { return append(ast.Ref(nil), ref...) }
