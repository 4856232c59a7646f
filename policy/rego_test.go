package policy_test

import (
	"context"
	"io/fs"
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/medshare/medshare/policy"
)

// minRegoTests guards against a run that silently finds no tests (a renamed
// package, a glob that matches nothing).
const minRegoTests = 90

// TestRego runs the _test.rego files in rego/ against the policies there,
// with the default restricted set as data. Any failing or erroring rego test
// fails this test.
func TestRego(t *testing.T) {
	fsys := os.DirFS("rego")
	names, err := fs.Glob(fsys, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]*ast.Module{}
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ast.ParseModuleWithOpts(name, string(b), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		mods[name] = m
	}
	restricted := []any{}
	for _, c := range policy.DefaultRestricted() {
		restricted = append(restricted, c)
	}
	store := inmem.NewFromObject(map[string]any{
		"medshare": map[string]any{"config": map[string]any{"restricted": restricted}},
	})
	ch, err := tester.NewRunner().
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(store).
		SetModules(mods).
		RunTests(context.Background(), nil)
	if err != nil {
		t.Fatalf("run rego tests: %v", err)
	}
	ran := 0
	for r := range ch {
		ran++
		switch {
		case r.Error != nil:
			t.Errorf("%s.%s (%v): error: %v", r.Package, r.Name, r.Location, r.Error)
		case r.Fail:
			t.Errorf("%s.%s (%v): failed", r.Package, r.Name, r.Location)
		case r.Skip:
			t.Errorf("%s.%s (%v): skipped; rego tests may not be skipped", r.Package, r.Name, r.Location)
		}
	}
	if ran < minRegoTests {
		t.Errorf("ran %d rego tests, want at least %d", ran, minRegoTests)
	}
	t.Logf("ran %d rego tests", ran)
}
