package http

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/medshare/medshare/consent"
)

// Defaults for the request limits of Config.
const (
	// DefaultBodyLimit bounds a POST /v1/records body.
	DefaultBodyLimit = 12 << 20
	// DefaultSmallBodyLimit bounds the body of every other request.
	DefaultSmallBodyLimit = 64 << 10
	// DefaultMaxConnsPerIP bounds the open connections of one client address.
	DefaultMaxConnsPerIP = 64
	// preAuthTimeout bounds the token check made from a request's headers.
	preAuthTimeout = 5 * time.Second
)

// How request bodies are bounded before they cost memory
//
// fasthttp, under Fiber, reads a whole request body into memory before any
// handler runs, up to the server's body limit. If that limit were the
// upload limit, every connection could make the server buffer 12 MiB
// before its token was even looked at. So the server's limit is set per
// request from the request's headers, before its body is read
// (fasthttp.Server.HeaderReceived, see Server.admit):
//
//   - every request but POST /v1/records may carry at most SmallBodyLimit
//     bytes; a larger Content-Length is answered 413 at once, unread, and a
//     chunked body is cut off there;
//   - POST /v1/records gets BodyLimit only when its bearer token verifies
//     (the Authenticator runs on the headers); otherwise it is answered
//     with the token's 401 or 403 without its body being read;
//   - every admitted body reserves its size from one budget,
//     MaxInflightBytes, until its request ends; a body that does not fit is
//     answered 429 with Retry-After, unread.
//
// A refusal is carried from HeaderReceived to the handler chain or to the
// error handler (which fasthttp calls when it refuses the body) by a gate
// keyed by the request's header, the one object both see.

// admission is what admit decided for one request.
type admission struct {
	reserved int64
	refusal  error     // non-nil: answer this, whatever the body
	busy     bool      // the refusal is the byte budget's
	expires  time.Time // a leftover past this is released by the next reserve
}

// bodyGate accounts request-body bytes in flight and carries admissions
// from a request's headers to its handlers.
type bodyGate struct {
	max int64
	ttl time.Duration

	mu      sync.Mutex
	used    int64
	pending map[*fasthttp.RequestHeader]admission
}

func newBodyGate(max int64, ttl time.Duration) *bodyGate {
	return &bodyGate{max: max, ttl: ttl, pending: map[*fasthttp.RequestHeader]admission{}}
}

// admit records a for h, reserving a.reserved bytes; false (and nothing
// recorded) when they do not fit in the budget. Admissions left behind by
// requests that never reached a handler (a client gone mid-body) are
// released once expired.
func (g *bodyGate) admit(h *fasthttp.RequestHeader, a admission) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if old, ok := g.pending[h]; ok {
		g.used -= old.reserved
		delete(g.pending, h)
	}
	if a.reserved > 0 && g.used+a.reserved > g.max {
		for k, old := range g.pending {
			if now.After(old.expires) {
				g.used -= old.reserved
				delete(g.pending, k)
			}
		}
		if g.used+a.reserved > g.max {
			return false
		}
	}
	a.expires = now.Add(g.ttl)
	g.used += a.reserved
	g.pending[h] = a
	return true
}

// take removes and returns h's admission, releasing its bytes.
func (g *bodyGate) take(h *fasthttp.RequestHeader) (admission, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.pending[h]
	if ok {
		g.used -= a.reserved
		delete(g.pending, h)
	}
	return a, ok
}

// peek returns h's admission, leaving it in place.
func (g *bodyGate) peek(h *fasthttp.RequestHeader) (admission, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.pending[h]
	return a, ok
}

// inUse returns the bytes reserved now.
func (g *bodyGate) inUse() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used
}

// admit is the server's fasthttp HeaderReceived hook: it sets the body
// limit of the request whose headers were just read, before its body is.
func (s *Server) admit(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	limit := s.cfg.SmallBodyLimit
	var a admission
	if isUpload(h) {
		if err := s.preAuthenticate(h); err != nil {
			a.refusal = err
		} else {
			limit = s.cfg.BodyLimit
		}
	}
	if a.refusal == nil {
		switch n := h.ContentLength(); {
		case n > limit:
			// Refused by fasthttp at once (413), before anything is read.
		case n > 0:
			a.reserved = int64(n)
		case n == -1: // chunked: as much as the limit allows
			a.reserved = int64(limit)
		}
	}
	if a.refusal == nil && a.reserved == 0 {
		_, _ = s.gate.take(h) // a leftover of this connection's last request
		return fasthttp.RequestConfig{MaxRequestBodySize: limit}
	}
	if !s.gate.admit(h, a) {
		a = admission{busy: true, refusal: consent.Errorf(consent.ETOOMANY,
			"the server is receiving too many request bodies at once; retry shortly")}
		s.gate.admit(h, a)
	}
	if a.refusal != nil {
		// Any body beyond one byte makes fasthttp refuse the request
		// unread; the error handler then answers with the refusal.
		return fasthttp.RequestConfig{MaxRequestBodySize: 1}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: limit}
}

// preAuthenticate verifies the bearer token of h: the upload route's large
// body limit is for callers whose token verified.
func (s *Server) preAuthenticate(h *fasthttp.RequestHeader) error {
	if s.cfg.Authenticate == nil {
		return consent.Errorf(consent.EUNAUTHORIZED, "no authenticator configured")
	}
	token, err := bearer(string(h.Peek(fiber.HeaderAuthorization)))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), preAuthTimeout)
	defer cancel()
	_, err = s.cfg.Authenticate(ctx, token)
	return err
}

// isUpload reports whether h is POST /v1/records as Fiber routes it: case
// insensitive, with or without a trailing slash, origin or absolute form.
func isUpload(h *fasthttp.RequestHeader) bool {
	if !h.IsPost() {
		return false
	}
	var u fasthttp.URI
	if err := u.Parse(nil, h.RequestURI()); err != nil {
		return false
	}
	p := strings.TrimSuffix(string(u.PathOriginal()), "/")
	return strings.EqualFold(p, "/v1/records")
}

// gateBodies runs first in the handler chain: it answers a refusal decided
// from the headers (for bodies small enough that fasthttp read them),
// refuses encoded bodies, and releases the request's reserved bytes when
// the request ends.
func (s *Server) gateBodies(c *fiber.Ctx) error {
	h := &c.Context().Request.Header
	defer s.gate.take(h)
	if a, ok := s.gate.peek(h); ok && a.refusal != nil {
		if a.busy {
			c.Set(fiber.HeaderRetryAfter, "1")
		}
		return a.refusal
	}
	// Fiber decodes gzip, deflate and brotli bodies in full when a handler
	// reads them: a 64 KiB body could become gigabytes. Clients send plain
	// JSON.
	if enc := strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)); enc != "" && !strings.EqualFold(enc, "identity") {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "Content-Encoding is not supported: send the body unencoded")
	}
	return c.Next()
}

// handleError is the Fiber error handler: a body fasthttp refused because
// of a refusal decided from the headers is answered with that refusal.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	if c.Locals(ridKey) == nil { // refused by fasthttp, before the chain
		setSecurityHeaders(c)
	}
	if a, ok := s.gate.take(&c.Context().Request.Header); ok && a.refusal != nil {
		var fe *fiber.Error
		if errors.As(err, &fe) && fe.Code == fiber.StatusRequestEntityTooLarge {
			err = a.refusal
			if a.busy {
				c.Set(fiber.HeaderRetryAfter, "1")
			}
		}
	}
	return s.writeProblem(c, err)
}

// bearer extracts the token of an Authorization header.
func bearer(h string) (string, error) {
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", consent.Errorf(consent.EUNAUTHORIZED, "a bearer token is required")
	}
	return token, nil
}

// maxRefusing bounds the connections being answered 429 at once; beyond
// it, refused connections are closed without an answer.
const maxRefusing = 256

// ipLimitListener caps the open connections per client IP address. A
// connection over the cap is answered 429 problem+json (over TLS when the
// server terminates TLS) and closed, without reaching the HTTP server.
type ipLimitListener struct {
	net.Listener
	max      int
	tls      *tls.Config // nil: plain HTTP
	logger   *slog.Logger
	refusing atomic.Int64

	mu   sync.Mutex
	open map[string]int
}

func newIPLimitListener(ln net.Listener, max int, tlsCfg *tls.Config, logger *slog.Logger) *ipLimitListener {
	return &ipLimitListener{Listener: ln, max: max, tls: tlsCfg, logger: logger, open: map[string]int{}}
}

// Accept returns the next connection within its address's cap.
func (l *ipLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c.RemoteAddr())
		if l.acquire(ip) {
			return &ipConn{Conn: c, release: func() { l.release(ip) }}, nil
		}
		if l.refusing.Add(1) > maxRefusing {
			l.refusing.Add(-1)
			_ = c.Close()
			continue
		}
		go func() {
			defer l.refusing.Add(-1)
			l.refuse(c)
		}()
	}
}

func (l *ipLimitListener) acquire(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] >= l.max {
		return false
	}
	l.open[ip]++
	return true
}

func (l *ipLimitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// refuse answers c with 429 and closes it, reading what the client sent
// meanwhile so that the close does not reset the connection before the
// answer arrives.
func (l *ipLimitListener) refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var rw io.ReadWriter = c
	if l.tls != nil {
		tc := tls.Server(c, l.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		rw = tc
	}
	body, _ := json.Marshal(Problem{
		Type: "https://medshare.dev/problems/" + consent.ETOOMANY, Title: http.StatusText(http.StatusTooManyRequests),
		Status: http.StatusTooManyRequests, Detail: fmt.Sprintf("too many open connections from your address (limit %d)", l.max),
	})
	_, err := fmt.Fprintf(rw, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: %s\r\nContent-Length: %d\r\nRetry-After: 1\r\n"+
		"Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n%s", problemContentType, len(body), body)
	if err != nil {
		return
	}
	l.logger.Debug("connection refused: too many from one address", "remote", clientIP(c.RemoteAddr()), "limit", l.max)
	if cw, ok := rw.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(rw, 64<<10))
}

// clientIP is the IP address of a remote address, or the whole address
// when it has no port.
func clientIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// ipConn releases its address's slot once, when closed.
type ipConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and frees its slot.
func (c *ipConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
