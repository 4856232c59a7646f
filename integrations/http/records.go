package http

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// uploadBody is POST /v1/records. Content is a JSON string (its text is
// stored) or a JSON object or array (stored as sent); ContentBase64 carries
// binary content. Exactly one of them.
type uploadBody struct {
	Patient       string          `json:"patient"`
	Category      string          `json:"category"`
	ContentType   string          `json:"contentType"`
	Content       json.RawMessage `json:"content,omitempty"`
	ContentBase64 string          `json:"contentBase64,omitempty"`
}

// recordView is a record's metadata as the API shows it.
type recordView struct {
	ID          string    `json:"id"`
	Version     int       `json:"version"`
	Patient     string    `json:"patient"`
	Category    string    `json:"category"`
	ContentType string    `json:"contentType"`
	Org         string    `json:"org"`
	Size        int       `json:"size"`
	CreatedAt   time.Time `json:"createdAt"`
	Anchor      struct {
		Hash  string `json:"hash"`
		Tx    string `json:"tx"`
		Block uint64 `json:"block"`
	} `json:"anchor"`
}

func viewRecord(r *records.Record) recordView {
	v := recordView{ID: r.ID, Version: r.Version, Patient: r.Patient, Category: r.Category,
		ContentType: r.ContentType, Org: r.Org, Size: r.Size, CreatedAt: r.CreatedAt}
	v.Anchor.Hash, v.Anchor.Tx, v.Anchor.Block = r.Hash, r.AnchorTx, r.AnchorBlock
	return v
}

func (b *uploadBody) content() ([]byte, error) {
	hasRaw, hasB64 := len(b.Content) > 0 && string(b.Content) != "null", b.ContentBase64 != ""
	switch {
	case hasRaw == hasB64:
		return nil, consent.Errorf(consent.EINVALID, "send exactly one of content or contentBase64")
	case hasB64:
		out, err := base64.StdEncoding.DecodeString(b.ContentBase64)
		if err != nil {
			return nil, consent.Errorf(consent.EINVALID, "contentBase64 is not valid base64")
		}
		return out, nil
	case b.Content[0] == '"':
		var s string
		if err := json.Unmarshal(b.Content, &s); err != nil {
			return nil, consent.Errorf(consent.EINVALID, "content is not a valid JSON string")
		}
		return []byte(s), nil
	case b.Content[0] == '{' || b.Content[0] == '[':
		return b.Content, nil
	}
	return nil, consent.Errorf(consent.EINVALID, "content must be a string, an object or an array")
}

func (s *Server) uploadRecord(c *fiber.Ctx) error {
	var body uploadBody
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	content, err := body.content()
	if err != nil {
		return err
	}
	r, err := s.cfg.Service.Upload(c.UserContext(), subject(c), records.UploadRequest{
		Patient: body.Patient, Category: body.Category, ContentType: body.ContentType, Content: content,
	})
	if err != nil {
		return err
	}
	c.Location("/v1/records/" + r.ID)
	return c.Status(fiber.StatusCreated).JSON(viewRecord(r))
}

func (s *Server) fetchRecord(c *fiber.Ctx) error {
	purpose := c.Get("X-Purpose-Of-Use")
	if purpose == "" {
		return consent.Errorf(consent.EINVALID, "header X-Purpose-Of-Use is required (TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PATRQT)")
	}
	res, err := s.cfg.Service.Fetch(c.UserContext(), subject(c), records.FetchRequest{
		ID: c.Params("id"), Purpose: purpose, BreakGlassReason: c.Get("X-Break-Glass-Reason"),
		BreakGlassCode: c.Get("X-Break-Glass-Code"),
	})
	if err != nil {
		return err
	}
	c.Set("X-Access-Id", res.AccessID)
	c.Set("X-Record-Version", strconv.Itoa(res.Record.Version))
	if len(res.Decision.Obligations) > 0 {
		c.Set("X-Obligations", joinComma(res.Decision.Obligations))
	}
	setContentHeaders(c, res.Record.ID, res.Record.ContentType) // content.go: attachment unless passive
	return c.Send(res.Content)
}

func (s *Server) listRecords(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	// Without limit, pages of records.DefaultPageLimit; next is there
	// only when the caller may see more.
	page, err := s.cfg.Service.List(c.UserContext(), subject(c), c.Query("patient"), c.Query("after"), limit)
	if err != nil {
		return err
	}
	out := struct {
		Records []recordView `json:"records"`
		Next    string       `json:"next,omitempty"`
	}{Records: make([]recordView, 0, len(page.Records)), Next: page.Next}
	for _, r := range page.Records {
		out.Records = append(out.Records, viewRecord(r))
	}
	return c.JSON(out)
}

// queryInt parses an optional non-negative integer query parameter.
func queryInt(c *fiber.Ctx, name string) (int, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1000 {
		return 0, consent.Errorf(consent.EINVALID, "query parameter %s must be an integer from 0 to 1000", name)
	}
	return n, nil
}

func joinComma(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
