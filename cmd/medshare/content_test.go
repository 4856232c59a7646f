package main

import (
	"context"
	"strings"
	"testing"
)

// TestActiveContentIsAnAttachment fetches stored records through GET
// /v1/records/{id}: active types (HTML, SVG, XML, scripts, anything off the
// passive list) come as attachments; every record is nosniff and sandboxed.
func TestActiveContentIsAnAttachment(t *testing.T) {
	m := MustStart(t, testConfig(t.TempDir()))
	j := setupOrgs(t, m)
	ctx := context.Background()
	tests := []struct {
		contentType string
		attachment  bool
	}{
		{"text/html", true},
		{"image/svg+xml", true},
		{"application/xhtml+xml", true},
		{"text/xml", true},
		{"application/xml", true},
		{"application/javascript", true},
		{"text/javascript", true},
		{"application/pdf", true},
		{"application/x-unknown", true},
		{"text/plain; charset=utf-8", false},
		{"application/fhir+json", false},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			content := `<svg xmlns="http://www.w3.org/2000/svg" onload="fetch('/v1/records?patient=p-7')"/>`
			if strings.Contains(tt.contentType, "json") {
				content = `{"resourceType":"Observation"}`
			}
			r, err := j.expect(ctx, 201, "POST", "/v1/records", drAsh, map[string]any{
				"patient": "p-7", "category": "lab", "contentType": tt.contentType, "content": content})
			if err != nil {
				t.Fatal(err)
			}
			var rec struct{ ID string }
			if err := r.JSON(&rec); err != nil {
				t.Fatal(err)
			}
			r, err = j.expect(ctx, 200, "GET", "/v1/records/"+rec.ID, drAsh, nil, treat...)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if csp := r.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox; default-src 'none'") {
				t.Errorf("Content-Security-Policy %q, want sandbox; default-src 'none'", csp)
			}
			cd := r.Header.Get("Content-Disposition")
			if tt.attachment != strings.HasPrefix(cd, "attachment") {
				t.Errorf("Content-Disposition %q, want attachment=%v", cd, tt.attachment)
			}
		})
	}
}
