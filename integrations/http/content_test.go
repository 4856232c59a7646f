package http

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// TestRecordContentHeaders: record content is always nosniff and
// sandboxed; active or unknown types are attachments.
func TestRecordContentHeaders(t *testing.T) {
	app := fiber.New()
	app.Get("/:ct", func(c *fiber.Ctx) error {
		ct := strings.ReplaceAll(c.Query("ct"), "_", "+")
		setContentHeaders(c, "r-1", ct)
		return c.SendString("<svg onload=alert(1)>")
	})
	tests := []struct {
		contentType string
		attachment  bool
	}{
		{"text/html", true},
		{"text/html; charset=utf-8", true},
		{"TEXT/HTML", true},
		{"image/svg+xml", true},
		{"application/xhtml+xml", true},
		{"text/xml", true},
		{"application/xml", true},
		{"application/javascript", true},
		{"text/javascript", true},
		{"application/pdf", true},
		{"application/octet-stream", true},
		{"application/dicom", true},
		{"text/markdown", true},
		{"not a type", true},
		{"text/plain", false},
		{"text/plain; charset=utf-8", false},
		{"text/csv", false},
		{"application/json", false},
		{"application/fhir+json", false},
		{"image/png", false},
		{"image/jpeg", false},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/x?ct="+strings.NewReplacer(" ", "%20", "+", "_", ";", "%3B", "=", "%3D").Replace(tt.contentType), nil)
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox; default-src 'none'") {
				t.Errorf("Content-Security-Policy %q, want a sandbox loading nothing", csp)
			}
			cd := resp.Header.Get("Content-Disposition")
			if tt.attachment != strings.HasPrefix(cd, "attachment") {
				t.Errorf("Content-Disposition %q, attachment %v", cd, tt.attachment)
			}
			if tt.attachment && !strings.Contains(cd, `filename=record-r-1`) {
				t.Errorf("Content-Disposition %q names no file", cd)
			}
		})
	}
}
