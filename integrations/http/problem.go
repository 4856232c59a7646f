package http

import (
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	AccessID  string `json:"accessId,omitempty"`
}

// problemContentType is the media type of every error response.
const problemContentType = "application/problem+json"

// ErrorStatus returns the HTTP status for err's domain code: the one
// table from codes to statuses.
func ErrorStatus(err error) int {
	switch consent.ErrorCode(err) {
	case consent.EINVALID:
		return http.StatusBadRequest
	case consent.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case consent.EFORBIDDEN:
		return http.StatusForbidden
	case consent.ENOTFOUND:
		return http.StatusNotFound
	case consent.ECONFLICT:
		return http.StatusConflict
	case consent.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case consent.ETOOMANY:
		return http.StatusTooManyRequests
	case consent.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeProblem renders err as problem+json. Internal errors are logged with
// their cause and shown only as "internal error" with the request id.
func (s *Server) writeProblem(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	status, code, detail := 0, "", ""
	if errors.As(err, &fe) {
		status, code, detail = fe.Code, fiberCode(fe.Code), fe.Message
		if fe.Code == fiber.StatusRequestEntityTooLarge {
			detail = "request body is larger than the limit"
		}
	} else {
		status, code, detail = ErrorStatus(err), consent.ErrorCode(err), consent.ErrorMessage(err)
	}
	rid, _ := c.Locals(ridKey).(string)
	switch code {
	case consent.EINTERNAL:
		s.logger.ErrorContext(c.UserContext(), "internal error", "request_id", rid, "path", c.Path(), "err", err)
		detail = "internal error; quote request id " + rid
	case consent.EINTEGRITY:
		s.logger.ErrorContext(c.UserContext(), "integrity error", "request_id", rid, "path", c.Path(), "err", err)
	case consent.EUNAVAILABLE:
		s.logger.WarnContext(c.UserContext(), "dependency unavailable", "request_id", rid, "path", c.Path(), "err", err)
	}
	p := Problem{Type: "https://medshare.dev/problems/" + problemType(code, status), Title: http.StatusText(status),
		Status: status, Detail: detail, Instance: c.Path(), RequestID: rid}
	if code == consent.EINTEGRITY {
		p.Title = "Record integrity check failed"
	}
	var ae *records.AccessError
	if errors.As(err, &ae) {
		p.AccessID = ae.AccessID
		c.Set("X-Access-Id", ae.AccessID)
	}
	if status == http.StatusUnauthorized {
		c.Set("WWW-Authenticate", `Bearer realm="medshare"`)
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, problemContentType)
	return c.JSON(p, problemContentType)
}

func fiberCode(status int) string {
	switch {
	case status == fiber.StatusRequestEntityTooLarge:
		return consent.ETOOLARGE
	case status == fiber.StatusNotFound:
		return consent.ENOTFOUND
	case status == fiber.StatusTooManyRequests:
		return consent.ETOOMANY
	case status >= 500:
		return consent.EINTERNAL
	default:
		return consent.EINVALID
	}
}

func problemType(code string, status int) string {
	if code == "" {
		return slug(status)
	}
	return code
}

func slug(status int) string {
	switch status {
	case fiber.StatusMethodNotAllowed:
		return "method_not_allowed"
	case fiber.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	}
	return "error"
}
