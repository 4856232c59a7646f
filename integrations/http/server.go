// Package http is medshare's HTTP API v1 on Fiber: routes, bearer-token
// authentication, strict JSON decoding and problem+json errors. It is the
// only package that imports Fiber.
package http

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
	"github.com/medshare/medshare/records"
)

// Authenticator verifies a bearer token and returns the caller, including
// the organization checks (registered and active). EUNAUTHORIZED for a bad
// token, EFORBIDDEN for a token from an inactive or unknown org.
type Authenticator func(ctx context.Context, token string) (policy.Subject, error)

// Config wires a Server.
type Config struct {
	Service      *records.Service
	Orgs         *consent.Service
	Authz        records.Authorizer
	Authenticate Authenticator
	JWKS         []byte                          // served at /.well-known/jwks.json
	Ready        func(ctx context.Context) error // nil error means ready
	Logger       *slog.Logger
	Timeout      time.Duration // per request; 0 means 30 s

	// Request limits; see "How request bodies are bounded" in limits.go.

	// BodyLimit bounds a POST /v1/records body, and applies only once the
	// request's bearer token verified; 0 means DefaultBodyLimit (12 MiB).
	BodyLimit int
	// SmallBodyLimit bounds the body of every other request, before any
	// token check; 0 means DefaultSmallBodyLimit (64 KiB).
	SmallBodyLimit int
	// MaxInflightBytes bounds the request-body bytes held at once by all
	// requests together; 0 means four times BodyLimit, and a value below
	// BodyLimit is raised to it.
	MaxInflightBytes int64
	// MaxConnsPerIP bounds the open connections of one client IP address;
	// 0 means DefaultMaxConnsPerIP (64), a negative value no bound.
	MaxConnsPerIP int

	// TLSCertFile and TLSKeyFile, both set, make Serve terminate TLS with
	// this PEM certificate chain and key; both empty serve plain HTTP.
	TLSCertFile string
	TLSKeyFile  string
}

// Server is the HTTP API.
type Server struct {
	app    *fiber.App
	cfg    Config
	logger *slog.Logger
	gate   *bodyGate
}

const ridKey = "request_id"
const subjectKey = "subject"

// New builds the API. Middleware order: request id → recover → logging →
// security headers → auth (per route group).
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.SmallBodyLimit <= 0 {
		cfg.SmallBodyLimit = DefaultSmallBodyLimit
	}
	if cfg.MaxInflightBytes == 0 {
		cfg.MaxInflightBytes = 4 * int64(cfg.BodyLimit)
	}
	cfg.MaxInflightBytes = max(cfg.MaxInflightBytes, int64(cfg.BodyLimit))
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	s := &Server{cfg: cfg, logger: cfg.Logger, gate: newBodyGate(cfg.MaxInflightBytes, 3*cfg.Timeout+time.Minute)}
	s.app = fiber.New(fiber.Config{
		AppName: "medshare",
		// The largest body any request may have; admit lowers it per
		// request before the body is read.
		BodyLimit:                    cfg.BodyLimit,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  cfg.Timeout,
		WriteTimeout:                 cfg.Timeout,
		IdleTimeout:                  2 * time.Minute,
		ReadBufferSize:               16 << 10,
		Immutable:                    true,
		DisableStartupMessage:        true,
		ErrorHandler:                 s.handleError,
	})
	s.app.Server().HeaderReceived = s.admit
	s.app.Use(s.requestID, s.recover, s.logRequests, securityHeaders, s.gateBodies)
	s.routes()
	return s
}

func (s *Server) routes() {
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/.well-known/jwks.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/jwk-set+json")
		return c.Send(s.cfg.JWKS)
	})
	v1 := s.app.Group("/v1", s.authenticate)
	v1.Post("/orgs", s.createOrg)
	v1.Get("/orgs", s.listOrgs)
	v1.Patch("/orgs/:id", s.updateOrg)
	v1.Post("/records", s.uploadRecord)
	v1.Get("/records", s.listRecords)
	v1.Get("/records/:id", s.fetchRecord)
	v1.Post("/consents", s.grantConsent)
	v1.Get("/consents", s.listConsents)
	v1.Get("/consents/:id", s.getConsent)
	v1.Delete("/consents/:id", s.revokeConsent)
	v1.Get("/access-log", s.accessLog)
	v1.Get("/notices", s.listNotices)
	v1.Post("/claims/verify", s.verifyClaim)
	s.app.Use(func(c *fiber.Ctx) error {
		return consent.Errorf(consent.ENOTFOUND, "no such endpoint: %s %s", c.Method(), c.Path())
	})
}

// App returns the Fiber app (for tests using app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Serve serves on ln until Shutdown: over TLS when Config names a
// certificate, with at most MaxConnsPerIP connections per client address.
func (s *Server) Serve(ln net.Listener) error {
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return err
	}
	if s.cfg.MaxConnsPerIP > 0 {
		ln = newIPLimitListener(ln, s.cfg.MaxConnsPerIP, tlsCfg, s.logger)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	if err := s.app.Listener(ln); err != nil {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Shutdown stops accepting requests and waits for in-flight ones until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("shutdown http: %w", err)
	}
	return nil
}

func (s *Server) readyz(c *fiber.Ctx) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(c.UserContext()); err != nil {
			return consent.WrapError(consent.EUNAVAILABLE, err, "not ready: %s", consent.ErrorMessage(err))
		}
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// requestID assigns every request an id, echoed in X-Request-Id and in
// every problem body. A caller-supplied id is kept only if it is short and
// plain.
func (s *Server) requestID(c *fiber.Ctx) error {
	rid := c.Get("X-Request-Id")
	if rid == "" || len(rid) > 64 || !consent.ValidID(rid) {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		rid = hex.EncodeToString(b)
	}
	c.Locals(ridKey, rid)
	c.Set("X-Request-Id", rid)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// recover turns a panic into a 500 problem and logs the stack.
func (s *Server) recover(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("panic in handler", "request_id", c.Locals(ridKey), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = consent.Errorf(consent.EINTERNAL, "internal error")
		}
	}()
	return c.Next()
}

// logRequests logs one line per request: never headers, bodies or tokens.
func (s *Server) logRequests(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		status = ErrorStatus(err)
		if fe, ok := err.(*fiber.Error); ok {
			status = fe.Code
		}
	}
	s.logger.Debug("request", "request_id", c.Locals(ridKey), "method", c.Method(), "path", c.Path(),
		"status", status, "duration", time.Since(start))
	return err
}

func securityHeaders(c *fiber.Ctx) error {
	setSecurityHeaders(c)
	return c.Next()
}

// setSecurityHeaders sets the headers every response carries; the error
// handler sets them too, for requests refused before the handler chain.
func setSecurityHeaders(c *fiber.Ctx) {
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("Cache-Control", "no-store")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
}

// authenticate requires a bearer token and stores the caller.
func (s *Server) authenticate(c *fiber.Ctx) error {
	token, err := bearer(c.Get(fiber.HeaderAuthorization))
	if err != nil {
		return err
	}
	sub, err := s.cfg.Authenticate(c.UserContext(), token)
	if err != nil {
		return err
	}
	c.Locals(subjectKey, sub)
	return c.Next()
}

func subject(c *fiber.Ctx) policy.Subject {
	sub, _ := c.Locals(subjectKey).(policy.Subject)
	return sub
}
