package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
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
	BodyLimitMB     int    // MEDSHARE_BODY_LIMIT_MB
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
	fs.IntVar(&c.BodyLimitMB, "body-limit-mb", 12, "request body limit in MiB")
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
