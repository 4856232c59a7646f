package http

import "github.com/gofiber/fiber/v2"

// listNotices is GET /v1/notices: a patient's own notices (break-glass
// reads of their records), or, for an auditor, those of ?patient=.
func (s *Server) listNotices(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	page, err := s.cfg.Service.ListNotices(c.UserContext(), subject(c), c.Query("patient"), c.Query("after"), limit)
	if err != nil {
		return err
	}
	return c.JSON(page)
}
