package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/medshare/medshare/consent"
)

// maxJSONDepth bounds nesting in request bodies.
const maxJSONDepth = 32

// decodeJSON decodes a request body strictly: media type application/json,
// valid UTF-8, bounded nesting, no duplicate or unknown fields, no trailing
// data. Every failure is EINVALID with a message saying what was wrong.
func decodeJSON(c *fiber.Ctx, v any) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != "application/json" {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	return decodeStrict(c.Body(), v)
}

// decodeStrict is decodeJSON without the media-type check (fuzzed directly).
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return consent.Errorf(consent.EINVALID, "request body is empty")
	}
	if !utf8.Valid(body) {
		return consent.Errorf(consent.EINVALID, "request body is not valid UTF-8")
	}
	if err := checkShape(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return consent.Errorf(consent.EINVALID, "malformed JSON: %s", jsonErrorText(err))
	}
	if _, err := dec.Token(); err == nil || dec.More() {
		return consent.Errorf(consent.EINVALID, "malformed JSON: trailing data after the object")
	}
	return nil
}

// jsonErrorText describes a decoding error without echoing input values.
func jsonErrorText(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return "syntax error at byte " + itoa(e.Offset)
	case *json.UnmarshalTypeError:
		return "field " + e.Field + " has the wrong type"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// checkShape walks the token stream once: it bounds nesting depth and
// rejects objects with a repeated key (encoding/json would silently keep the
// last one).
func checkShape(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		obj    bool
		keys   map[string]bool
		expKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return consent.Errorf(consent.EINVALID, "malformed JSON: %s", jsonErrorText(err))
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.obj {
					top.expKey = true
				}
				if len(stack) >= maxJSONDepth {
					return consent.Errorf(consent.EINVALID, "JSON is nested deeper than %d levels", maxJSONDepth)
				}
				stack = append(stack, &frame{obj: d == '{', keys: map[string]bool{}, expKey: true})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].expKey = true
				}
			}
			continue
		}
		if top != nil && top.obj {
			if top.expKey {
				k, _ := tok.(string)
				if top.keys[k] {
					return consent.Errorf(consent.EINVALID, "duplicate field %q", truncate(k, 64))
				}
				top.keys[k] = true
				top.expKey = false
			} else {
				top.expKey = true
			}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
