package http

import (
	"mime"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// recordCSP is the Content-Security-Policy of every record's content: a
// document opened from it runs in a sandbox (no scripts, no forms, a unique
// origin, so no access to the API's cookies or storage) and loads nothing.
const recordCSP = "sandbox; default-src 'none'; frame-ancestors 'none'"

// passiveType reports whether a browser shows content of media type mt
// (lower case, no parameters) without running anything in it. Those types
// are served inline: plain text and CSV, JSON (application/json and any
// application/*+json such as FHIR), and the raster images PNG, JPEG, GIF
// and WebP. Every other type is active or unknown — HTML, XHTML, SVG, XML,
// JavaScript, PDF (which may carry scripts), octet-stream, and anything not
// named here — and is served as an attachment, so a browser saves it
// rather than render it on the API's origin.
func passiveType(mt string) bool {
	switch mt {
	case "text/plain", "text/csv", "application/json", "image/png", "image/jpeg", "image/gif", "image/webp":
		return true
	}
	return strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// setContentHeaders sets the headers of a record's content: its stored
// Content-Type, nosniff and recordCSP always, and Content-Disposition:
// attachment unless the type is passive (see passiveType).
func setContentHeaders(c *fiber.Ctx, id, contentType string) {
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderContentSecurityPolicy, recordCSP)
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !passiveType(mt) {
		c.Set(fiber.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": "record-" + id}))
	}
}
