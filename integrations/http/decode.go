package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/medshare/medshare/consent"
)

// maxJSONDepth bounds nesting in request bodies.
const maxJSONDepth = 32

// decodeJSON decodes a request body strictly: media type application/json,
// valid UTF-8, bounded nesting, no duplicate or unknown fields (field names
// match exactly, case included), no trailing data. Every failure is EINVALID
// with a message saying what was wrong.
func decodeJSON(c *fiber.Ctx, v any) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != "application/json" {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	return decodeStrict(c.Body(), v)
}

// decodeStrict is decodeJSON without the media-type check (fuzzed directly).
func decodeStrict(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return consent.Errorf(consent.EINVALID, "request body is empty")
	}
	// encoding/json decodes null into a struct as "no change", so a body of
	// null would pass as an empty request.
	if trimmed[0] != '{' {
		return consent.Errorf(consent.EINVALID, "request body must be a JSON object")
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
	return checkFields(body, v)
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

// checkFields rejects an object key that is not exactly the JSON name of
// the struct field it decodes into. encoding/json matches names without
// regard to case (and folds "ſ" to "s", "K" to "k"), so {"patient":"p-7",
// "PATIENT":"p-8"} passes the duplicate check yet decodes as p-8: a reader
// that matches names exactly would see another request than we act on.
// body has already decoded into v, so it is well-formed JSON.
func checkFields(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return walkFields(dec, reflect.TypeOf(v))
}

// walkFields reads one value from dec, checking the keys of every object
// that decodes into a struct of type t.
func walkFields(dec *json.Decoder, t reflect.Type) error {
	tok, err := dec.Token()
	if err != nil {
		return consent.Errorf(consent.EINVALID, "malformed JSON: %s", jsonErrorText(err))
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar has no keys
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType)) {
		t = nil // decoded as a whole (json.RawMessage, time.Time, any): no field names
	}
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t == nil:
	case d == '{' && t.Kind() == reflect.Struct:
		fields = jsonFields(t)
	case t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		elem = t.Elem()
	}
	for dec.More() {
		if d == '{' {
			tok, err := dec.Token()
			if err != nil {
				return consent.Errorf(consent.EINVALID, "malformed JSON: %s", jsonErrorText(err))
			}
			if fields != nil {
				k, _ := tok.(string)
				ft, ok := fields[k]
				if !ok {
					return consent.Errorf(consent.EINVALID, "unknown field %q (field names are case-sensitive)", truncate(k, 64))
				}
				elem = ft
			}
		}
		if err := walkFields(dec, elem); err != nil {
			return err
		}
	}
	_, err = dec.Token() // the closing delimiter
	if err != nil {
		return consent.Errorf(consent.EINVALID, "malformed JSON: %s", jsonErrorText(err))
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// jsonFields maps the JSON names of struct type t's fields, those of
// embedded structs without a name of their own included, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case tag == "-":
			continue
		case f.Anonymous && name == "" && indirect(f.Type).Kind() == reflect.Struct:
			for k, v := range jsonFields(indirect(f.Type)) {
				if _, shadowed := out[k]; !shadowed {
					out[k] = v
				}
			}
			continue
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// indirect returns the type a pointer type points to, or t.
func indirect(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
