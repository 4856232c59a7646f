package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	mshttp "github.com/medshare/medshare/integrations/http"
	"github.com/medshare/medshare/integrations/jwt"
)

// Config is medshare's configuration: flags with MEDSHARE_* environment
// equivalents. An empty value selects the embedded default.
type Config struct {
	Addr            string // MEDSHARE_ADDR
	Data            string // MEDSHARE_DATA
	MongoURI        string // MEDSHARE_MONGO_URI: unset → embedded bbolt store
	MongoDB         string // MEDSHARE_MONGO_DB
	Ledger          string // MEDSHARE_LEDGER: embedded | fabric
	FabricConf      string // MEDSHARE_FABRIC_CONFIG: connection profile
	FabricChannel   string // MEDSHARE_FABRIC_CHANNEL
	FabricChaincode string // MEDSHARE_FABRIC_CHAINCODE
	FabricMSPID     string // MEDSHARE_FABRIC_MSPID
	FabricCert      string // MEDSHARE_FABRIC_CERT: client signing cert (PEM)
	FabricKey       string // MEDSHARE_FABRIC_KEY: client private key (PEM, 0600)
	FabricOrg       string // MEDSHARE_FABRIC_ORG: org name in the profile
	JWKSURL         string // MEDSHARE_JWKS_URL: unset → dev issuer
	JWTIssuer       string // MEDSHARE_JWT_ISSUER
	PolicyDir       string // MEDSHARE_POLICY_DIR: unset → embedded policies
	Restricted      string // MEDSHARE_RESTRICTED_CATEGORIES: comma list
	LogLevel        string // MEDSHARE_LOG_LEVEL
	BodyLimitMB     int    // MEDSHARE_BODY_LIMIT_MB: POST /v1/records body, once the token verified

	// Request limits that bound memory before a caller is authenticated.
	SmallBodyLimitKB int // MEDSHARE_SMALL_BODY_LIMIT_KB: body of every other request; 0 → 64
	InflightBodyMB   int // MEDSHARE_INFLIGHT_BODY_MB: request bodies held at once; 0 → 4 × BodyLimitMB
	MaxConnsPerIP    int // MEDSHARE_MAX_CONNS_PER_IP: open connections per client IP; 0 = no limit

	TokenMaxLifetime        time.Duration // MEDSHARE_TOKEN_MAX_LIFETIME: longest exp - iat accepted; 0 → 24h
	AllowDevIssuerOnNetwork bool          // MEDSHARE_ALLOW_DEV_ISSUER=1: dev issuer on a non-loopback address
	TLSCert                 string        // MEDSHARE_TLS_CERT: PEM certificate chain; with TLSKey, serve HTTPS
	TLSKey                  string        // MEDSHARE_TLS_KEY: PEM private key

	BreakGlassPerHour  int           // MEDSHARE_BREAK_GLASS_PER_HOUR: emergency reads per actor per hour; 0 = no limit
	RefusalsPerHour    int           // MEDSHARE_REFUSALS_PER_HOUR: denied or unknown reads per actor per hour; 0 = no limit
	MaxConsentValidity time.Duration // MEDSHARE_MAX_CONSENT_VALIDITY: longest consent
	ClaimAttempts      int           // MEDSHARE_CLAIM_ATTEMPTS: claim citations per insurer, record and element per day; 0 = no quota
}

// devIssuer is the issuer of tokens minted by `medshare token`.
const devIssuer = "medshare-dev"

// audience is the only audience medshare accepts.
const audience = "medshare"

// env returns the environment value of name, or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// register defines the serve flags on fs, defaulting from the environment.
func (c *Config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", env("MEDSHARE_ADDR", "127.0.0.1:8080"), "listen address (MEDSHARE_ADDR)")
	fs.StringVar(&c.Data, "data", env("MEDSHARE_DATA", "./data"), "data directory (MEDSHARE_DATA)")
	fs.StringVar(&c.MongoURI, "mongo-uri", env("MEDSHARE_MONGO_URI", ""), "MongoDB URI; empty → embedded bbolt store (MEDSHARE_MONGO_URI)")
	fs.StringVar(&c.MongoDB, "mongo-db", env("MEDSHARE_MONGO_DB", "medshare"), "MongoDB database (MEDSHARE_MONGO_DB)")
	fs.StringVar(&c.Ledger, "ledger", env("MEDSHARE_LEDGER", "embedded"), "ledger: embedded | fabric (MEDSHARE_LEDGER)")
	fs.StringVar(&c.FabricConf, "fabric-config", env("MEDSHARE_FABRIC_CONFIG", ""), "Fabric connection profile (MEDSHARE_FABRIC_CONFIG)")
	fs.StringVar(&c.FabricChannel, "fabric-channel", env("MEDSHARE_FABRIC_CHANNEL", "medshare"), "Fabric channel (MEDSHARE_FABRIC_CHANNEL)")
	fs.StringVar(&c.FabricChaincode, "fabric-chaincode", env("MEDSHARE_FABRIC_CHAINCODE", "medshare"), "Fabric chaincode name (MEDSHARE_FABRIC_CHAINCODE)")
	fs.StringVar(&c.FabricMSPID, "fabric-mspid", env("MEDSHARE_FABRIC_MSPID", ""), "Fabric client MSP id (MEDSHARE_FABRIC_MSPID)")
	fs.StringVar(&c.FabricCert, "fabric-cert", env("MEDSHARE_FABRIC_CERT", ""), "Fabric client certificate PEM (MEDSHARE_FABRIC_CERT)")
	fs.StringVar(&c.FabricKey, "fabric-key", env("MEDSHARE_FABRIC_KEY", ""), "Fabric client private key PEM (MEDSHARE_FABRIC_KEY)")
	fs.StringVar(&c.FabricOrg, "fabric-org", env("MEDSHARE_FABRIC_ORG", ""), "organization in the connection profile (MEDSHARE_FABRIC_ORG)")
	fs.StringVar(&c.JWKSURL, "jwks-url", env("MEDSHARE_JWKS_URL", ""), "identity provider JWKS URL; empty → dev issuer (MEDSHARE_JWKS_URL)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", env("MEDSHARE_JWT_ISSUER", ""), "expected token issuer with --jwks-url (MEDSHARE_JWT_ISSUER)")
	fs.StringVar(&c.PolicyDir, "policy-dir", env("MEDSHARE_POLICY_DIR", ""), "directory of .rego policies; empty → embedded (MEDSHARE_POLICY_DIR)")
	fs.StringVar(&c.Restricted, "restricted", env("MEDSHARE_RESTRICTED_CATEGORIES", ""), "comma list of restricted categories; empty → default set (MEDSHARE_RESTRICTED_CATEGORIES)")
	fs.StringVar(&c.LogLevel, "log-level", env("MEDSHARE_LOG_LEVEL", "info"), "debug | info | warn | error (MEDSHARE_LOG_LEVEL)")
	fs.IntVar(&c.BodyLimitMB, "body-limit-mb", envInt("MEDSHARE_BODY_LIMIT_MB", 12), "upload (POST /v1/records) body limit in MiB, applied once the bearer token verified (MEDSHARE_BODY_LIMIT_MB)")
	fs.IntVar(&c.SmallBodyLimitKB, "small-body-limit-kb", envInt("MEDSHARE_SMALL_BODY_LIMIT_KB", 64), "body limit in KiB of every request but uploads, applied before authentication (MEDSHARE_SMALL_BODY_LIMIT_KB)")
	fs.IntVar(&c.InflightBodyMB, "inflight-body-mb", envInt("MEDSHARE_INFLIGHT_BODY_MB", 0), "MiB of request bodies held at once by all requests; 0 = four times --body-limit-mb (MEDSHARE_INFLIGHT_BODY_MB)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", envInt("MEDSHARE_MAX_CONNS_PER_IP", 64), "open connections per client IP address; 0 = no limit (MEDSHARE_MAX_CONNS_PER_IP)")
	fs.DurationVar(&c.TokenMaxLifetime, "token-max-lifetime", envDuration("MEDSHARE_TOKEN_MAX_LIFETIME", jwt.DefaultMaxLifetime), "longest token lifetime accepted, exp - iat (exp - now without iat) (MEDSHARE_TOKEN_MAX_LIFETIME)")
	fs.BoolVar(&c.AllowDevIssuerOnNetwork, "allow-dev-issuer-on-network", envBool("MEDSHARE_ALLOW_DEV_ISSUER"), "let the dev issuer (no --jwks-url) serve on a non-loopback address; development only (MEDSHARE_ALLOW_DEV_ISSUER=1)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("MEDSHARE_TLS_CERT", ""), "PEM certificate chain: serve HTTPS with --tls-key (MEDSHARE_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("MEDSHARE_TLS_KEY", ""), "PEM private key of --tls-cert (MEDSHARE_TLS_KEY)")
	fs.IntVar(&c.BreakGlassPerHour, "break-glass-per-hour", envInt("MEDSHARE_BREAK_GLASS_PER_HOUR", 20), "emergency (ETREAT) reads per actor per hour; 0 = no limit (MEDSHARE_BREAK_GLASS_PER_HOUR)")
	fs.IntVar(&c.RefusalsPerHour, "refusals-per-hour", envInt("MEDSHARE_REFUSALS_PER_HOUR", 300), "denied or unknown-record reads per actor per hour before 429; 0 = no limit (MEDSHARE_REFUSALS_PER_HOUR)")
	fs.IntVar(&c.ClaimAttempts, "claim-attempts", envInt("MEDSHARE_CLAIM_ATTEMPTS", 5), "times an insurer may cite one element of one record in claims per 24 h; 0 = no quota (MEDSHARE_CLAIM_ATTEMPTS)")
	fs.DurationVar(&c.MaxConsentValidity, "max-consent-validity", envDuration("MEDSHARE_MAX_CONSENT_VALIDITY", 5*365*24*time.Hour), "longest a consent may run; open-ended grants run this long (MEDSHARE_MAX_CONSENT_VALIDITY)")
}

// envInt returns the integer environment value of name, or def when unset
// or not an integer (validate reports nonsense values).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return def
}

// envBool reports whether the environment value of name is 1 or true.
func envBool(name string) bool {
	v, err := strconv.ParseBool(env(name, "false"))
	return err == nil && v
}

// envDuration returns the duration environment value of name, or def.
func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(env(name, "")); err == nil {
		return v
	}
	return def
}

// validate checks combinations.
func (c *Config) validate() error {
	switch c.Ledger {
	case "embedded", "":
		c.Ledger = "embedded"
	case "fabric":
		if c.FabricConf == "" || c.FabricCert == "" || c.FabricKey == "" {
			return fmt.Errorf("MEDSHARE_LEDGER=fabric needs MEDSHARE_FABRIC_CONFIG, MEDSHARE_FABRIC_CERT and MEDSHARE_FABRIC_KEY (eval \"$(make -s fabric-env)\" sets them for the local network)")
		}
	default:
		return fmt.Errorf("MEDSHARE_LEDGER must be embedded or fabric, not %q", c.Ledger)
	}
	if (c.JWKSURL == "") != (c.JWTIssuer == "") {
		return fmt.Errorf("set MEDSHARE_JWKS_URL and MEDSHARE_JWT_ISSUER together")
	}
	if c.BodyLimitMB < 1 || c.BodyLimitMB > 1024 {
		return fmt.Errorf("body limit must be 1-1024 MiB")
	}
	if err := c.validateLimits(); err != nil {
		return err
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if c.BreakGlassPerHour < 0 || c.RefusalsPerHour < 0 || c.ClaimAttempts < 0 {
		return fmt.Errorf("rate limits must be 0 (no limit) or more")
	}
	if c.MaxConsentValidity == 0 {
		c.MaxConsentValidity = 5 * 365 * 24 * time.Hour
	}
	if c.MaxConsentValidity < time.Hour {
		return fmt.Errorf("max consent validity must be at least 1h")
	}
	return nil
}

// restrictedList parses Restricted; nil means the policy's default set.
func (c *Config) restrictedList() []string {
	if strings.TrimSpace(c.Restricted) == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(c.Restricted, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// validateLimits checks the request limits and fills in their defaults.
func (c *Config) validateLimits() error {
	if c.SmallBodyLimitKB == 0 {
		c.SmallBodyLimitKB = mshttp.DefaultSmallBodyLimit >> 10
	}
	if c.SmallBodyLimitKB < 1 || c.SmallBodyLimitKB > c.BodyLimitMB<<10 {
		return fmt.Errorf("small body limit must be 1 KiB to the body limit (%d MiB)", c.BodyLimitMB)
	}
	if c.InflightBodyMB == 0 {
		c.InflightBodyMB = 4 * c.BodyLimitMB
	}
	if c.InflightBodyMB < c.BodyLimitMB || c.InflightBodyMB > 64<<10 {
		return fmt.Errorf("in-flight body budget must be from the body limit (%d MiB) to 65536 MiB, not %d MiB", c.BodyLimitMB, c.InflightBodyMB)
	}
	if c.MaxConnsPerIP < 0 {
		return fmt.Errorf("connections per IP must be 0 (no limit) or more")
	}
	return nil
}

// validateAuth checks token lifetime, TLS and the dev issuer's exposure.
func (c *Config) validateAuth() error {
	if c.TokenMaxLifetime == 0 {
		c.TokenMaxLifetime = jwt.DefaultMaxLifetime
	}
	if c.TokenMaxLifetime < time.Minute || c.TokenMaxLifetime > 30*24*time.Hour {
		return fmt.Errorf("token max lifetime must be from 1m to 720h, not %s", c.TokenMaxLifetime)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("set MEDSHARE_TLS_CERT and MEDSHARE_TLS_KEY (--tls-cert, --tls-key) together")
	}
	if c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return fmt.Errorf("TLS certificate %s and key %s: %w", c.TLSCert, c.TLSKey, err)
		}
	}
	if c.JWKSURL == "" && !c.AllowDevIssuerOnNetwork && !loopback(c.Addr) {
		return fmt.Errorf("without MEDSHARE_JWKS_URL the dev issuer mints tokens from a key in the data dir and is for development only: "+
			"it serves on loopback addresses only, not %q; configure an identity provider (MEDSHARE_JWKS_URL, MEDSHARE_JWT_ISSUER), "+
			"or pass --allow-dev-issuer-on-network (MEDSHARE_ALLOW_DEV_ISSUER=1) to expose it anyway", c.Addr)
	}
	return nil
}

// loopback reports whether addr (host:port) listens on loopback only:
// localhost or a loopback IP. An empty host means every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpLimits returns the request limits of c for the HTTP server, after
// validate.
func (c *Config) httpLimits(cfg mshttp.Config) mshttp.Config {
	cfg.BodyLimit = c.BodyLimitMB << 20
	cfg.SmallBodyLimit = c.SmallBodyLimitKB << 10
	cfg.MaxInflightBytes = int64(c.InflightBodyMB) << 20
	cfg.MaxConnsPerIP = c.MaxConnsPerIP
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = -1 // no limit
	}
	cfg.TLSCertFile, cfg.TLSKeyFile = c.TLSCert, c.TLSKey
	return cfg
}
