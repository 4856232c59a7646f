package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRoleNeedsMatchingOrgType: a token's role must fit the type of the
// organization it names: auditors belong to auditor orgs, insurers to
// insurer orgs, providers to hospitals, clinics or labs. A registered,
// active org of the wrong type is 403 problem+json, whatever the route.
func TestRoleNeedsMatchingOrgType(t *testing.T) {
	m := MustStart(t, testConfig(t.TempDir()))
	j := setupOrgs(t, m)
	if _, err := j.expect(context.Background(), 201, "POST", "/v1/orgs", admin, map[string]string{"id": "lab-d", "name": "Lab D", "type": "lab"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		note      string
		role, org string
		refused   bool
	}{
		{"auditor with a hospital's org", "auditor", "hospital-a", true},
		{"auditor with an insurer's org", "auditor", "insurer-x", true},
		{"auditor with a clinic's org", "auditor", "clinic-c", true},
		{"insurer with a hospital's org", "insurer", "hospital-a", true},
		{"insurer with an auditor's org", "insurer", "audit-office", true},
		{"provider with an insurer's org", "provider", "insurer-x", true},
		{"provider with an auditor's org", "provider", "audit-office", true},
		{"auditor with an auditor org", "auditor", "audit-office", false},
		{"insurer with an insurer org", "insurer", "insurer-x", false},
		{"provider with a hospital", "provider", "hospital-a", false},
		{"provider with a clinic", "provider", "clinic-c", false},
		{"provider with a lab", "provider", "lab-d", false},
		{"admin naming any org", "admin", "insurer-x", false},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			tok, err := m.Issuer.Mint("someone-1", tt.role, tt.org, 10*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/v1/orgs", "/v1/access-log", "/v1/records?patient=p-7"} {
				r := rawDo(t, m.URL(), "GET", path, tok, "", nil)
				mismatch := r.Status == 403 && strings.Contains(string(r.Body), "requires an organization of type")
				if mismatch != tt.refused {
					t.Fatalf("%s as %s@%s: %d %s; want refused=%v", path, tt.role, tt.org, r.Status, r.Body, tt.refused)
				}
				if tt.refused {
					assertProblem(t, r)
				}
			}
		})
	}
}
