package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// listPackages returns, per package of the module, its imports (direct)
// and its dependencies (transitive), from `go list`.
func listPackages(tb testing.TB) map[string]struct{ Imports, Deps []string } {
	tb.Helper()
	out, err := exec.Command("go", "list", "-json", "github.com/medshare/medshare/...").Output()
	if err != nil {
		tb.Fatalf("go list: %v", err)
	}
	pkgs := map[string]struct{ Imports, Deps []string }{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath    string
			Imports, Deps []string
		}
		if err := dec.Decode(&p); err != nil {
			tb.Fatal(err)
		}
		pkgs[p.ImportPath] = struct{ Imports, Deps []string }{p.Imports, p.Deps}
	}
	if len(pkgs) < 8 {
		tb.Fatalf("go list saw only %d packages", len(pkgs))
	}
	return pkgs
}

// TestDependencyRules keeps the one-way rule of docs/ARCHITECTURE.md: domain packages
// never depend on integrations, and each deprecated or swappable library is
// imported by exactly one package, so replacing it touches one place.
func TestDependencyRules(t *testing.T) {
	const mod = "github.com/medshare/medshare/"
	pkgs := listPackages(t)
	for _, domain := range []string{"consent", "records", "policy"} {
		for _, d := range pkgs[mod+domain].Deps {
			if strings.HasPrefix(d, mod+"integrations/") {
				t.Errorf("domain package %s depends on %s", domain, d)
			}
		}
	}
	for _, lib := range []struct{ prefix, owner string }{
		{"github.com/gofiber/fiber/", mod + "integrations/http"},
		{"github.com/lestrrat-go/jwx/", mod + "integrations/jwt"},
		{"go.mongodb.org/mongo-driver/", mod + "integrations/mongo"},
		{"go.etcd.io/bbolt", ""}, // bolt and localledger each own a bbolt file
	} {
		var importers []string
		for path, p := range pkgs {
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, lib.prefix) {
					importers = append(importers, path)
					break
				}
			}
		}
		if lib.owner != "" && (len(importers) != 1 || importers[0] != lib.owner) {
			t.Errorf("%s imported by %v, want only %s", lib.prefix, importers, lib.owner)
		}
	}
	// The contract must stay free of heavy or nondeterministic dependencies
	// so the Fabric chaincode can host it.
	for _, d := range pkgs[mod+"consent"].Deps {
		for _, banned := range []string{"github.com/open-policy-agent/", "github.com/gofiber/", "go.mongodb.org/", "math/rand"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("consent depends on %s", d)
			}
		}
	}
}
