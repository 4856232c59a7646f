package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the chaincode binary a thin host: none of the API's heavy
// dependencies (policy engine, HTTP framework, Mongo, JWT, FerretDB) may be
// linked into it.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	banned := []string{
		"github.com/open-policy-agent",
		"github.com/gofiber",
		"go.mongodb.org",
		"github.com/lestrrat-go/jwx",
		"github.com/FerretDB",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(pkg, b) {
				t.Errorf("chaincode depends on %s", pkg)
			}
		}
	}
}
