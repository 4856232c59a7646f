package http

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// authorize asks the policy and returns EFORBIDDEN with its reasons on deny.
func (s *Server) authorize(c *fiber.Ctx, action string, res policy.Resource) error {
	d, err := s.cfg.Authz.Decide(c.UserContext(), policy.Input{Subject: subject(c), Action: action, Resource: res, Consents: []consent.Consent{}, Time: time.Now().UTC()})
	if err != nil {
		return consent.Errorf(consent.EFORBIDDEN, "access denied: policy evaluation failed")
	}
	if !d.Allow {
		msg := "access denied"
		for i, r := range d.Reasons {
			if i == 0 {
				msg += ": " + r
			} else {
				msg += "; " + r
			}
		}
		return consent.Errorf(consent.EFORBIDDEN, "%s", msg)
	}
	return nil
}

func (s *Server) createOrg(c *fiber.Ctx) error {
	if err := s.authorize(c, "manage_orgs", policy.Resource{Type: "org"}); err != nil {
		return err
	}
	var body consent.RegisterOrgArgs
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	o, _, err := s.cfg.Orgs.RegisterOrg(c.UserContext(), body)
	if err != nil {
		return err
	}
	c.Location("/v1/orgs/" + o.ID)
	return c.Status(fiber.StatusCreated).JSON(o)
}

// updateOrg changes an organization's status (active or inactive): an
// extension of the v1 contract so administrators can suspend an org.
func (s *Server) updateOrg(c *fiber.Ctx) error {
	if err := s.authorize(c, "manage_orgs", policy.Resource{Type: "org", ID: c.Params("id")}); err != nil {
		return err
	}
	var body struct {
		Status string `json:"status"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	o, _, err := s.cfg.Orgs.SetOrgStatus(c.UserContext(), consent.SetOrgStatusArgs{ID: c.Params("id"), Status: body.Status})
	if err != nil {
		return err
	}
	return c.JSON(o)
}

func (s *Server) listOrgs(c *fiber.Ctx) error {
	if err := s.authorize(c, "list_orgs", policy.Resource{Type: "org"}); err != nil {
		return err
	}
	orgs, err := s.cfg.Orgs.Orgs(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"orgs": orgs})
}
