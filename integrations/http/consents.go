package http

import (
	"github.com/gofiber/fiber/v2"

	"github.com/medshare/medshare/records"
)

func (s *Server) grantConsent(c *fiber.Ctx) error {
	var body records.GrantRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	v, err := s.cfg.Service.Grant(c.UserContext(), subject(c), body)
	if err != nil {
		return err
	}
	c.Location("/v1/consents/" + v.ID)
	return c.Status(fiber.StatusCreated).JSON(v)
}

func (s *Server) listConsents(c *fiber.Ctx) error {
	vs, err := s.cfg.Service.ListConsents(c.UserContext(), subject(c))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"consents": vs})
}

func (s *Server) getConsent(c *fiber.Ctx) error {
	v, err := s.cfg.Service.Consent(c.UserContext(), subject(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Server) revokeConsent(c *fiber.Ctx) error {
	v, err := s.cfg.Service.Revoke(c.UserContext(), subject(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Server) accessLog(c *fiber.Ctx) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	page, err := s.cfg.Service.AccessLog(c.UserContext(), subject(c), c.Query("patient"), c.Query("after"), limit)
	if err != nil {
		return err
	}
	return c.JSON(page)
}

func (s *Server) verifyClaim(c *fiber.Ctx) error {
	var body records.ClaimRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	res, err := s.cfg.Service.VerifyClaim(c.UserContext(), subject(c), body)
	if err != nil {
		return err
	}
	return c.JSON(res)
}
