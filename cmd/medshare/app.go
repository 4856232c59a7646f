package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/bolt"
	mshttp "github.com/medshare/medshare/integrations/http"
	"github.com/medshare/medshare/integrations/jwt"
	"github.com/medshare/medshare/integrations/localledger"
	"github.com/medshare/medshare/integrations/mongo"
	"github.com/medshare/medshare/policy"
	"github.com/medshare/medshare/records"
)

// Main is a running medshare node: every dependency opened and wired. Tests
// and `medshare demo` run the same wiring on port 0 with a temp data dir.
type Main struct {
	Config Config
	Logger *slog.Logger

	Store   records.Store
	Ledger  consent.Ledger
	Consent *consent.Service
	Engine  *policy.Engine
	Issuer  *jwt.Issuer // nil when an external identity provider is used
	Service *records.Service
	HTTP    *mshttp.Server

	ln      net.Listener
	served  chan error
	closers []func() error
}

// keyPaths names the files under the data dir's keys/ folder.
type keyPaths struct{ dir string }

func (k keyPaths) kek(v int) string   { return filepath.Join(k.dir, fmt.Sprintf("kek-%d.key", v)) }
func (k keyPaths) pepper() string     { return filepath.Join(k.dir, "pepper.key") }
func (k keyPaths) devIssuer() string  { return filepath.Join(k.dir, "dev-issuer.pem") }
func (k keyPaths) receiptKey() string { return filepath.Join(k.dir, "receipt-signer.pem") }
func (k keyPaths) ledgerNode() string { return filepath.Join(k.dir, "ledger-node.pem") }
func keysOf(data string) keyPaths     { return keyPaths{dir: filepath.Join(data, "keys")} }
func ledgerPath(data string) string   { return filepath.Join(data, "ledger", "ledger.db") }
func storePath(data string) string    { return filepath.Join(data, "store", "records.db") }

// Open opens every dependency named by cfg and wires the API, without
// listening yet.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (m *Main, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m = &Main{Config: cfg, Logger: logger}
	opened := m // the error returns below set m to nil
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	keys := keysOf(cfg.Data)
	kek, err := loadOrCreateSecret(keys.kek(1), 32)
	if err != nil {
		return nil, err
	}
	pepper, err := loadOrCreateSecret(keys.pepper(), 32)
	if err != nil {
		return nil, err
	}
	refs, err := consent.NewPseudonymizer(pepper)
	if err != nil {
		return nil, err
	}
	ring, err := records.NewLocalKeyRing(map[int][]byte{1: kek}, 1)
	if err != nil {
		return nil, err
	}
	if cfg.Ledger == "fabric" {
		err = m.openFabric(ctx)
	} else {
		err = m.openLedger(ctx, keys)
	}
	if err != nil {
		return nil, err
	}
	if err := m.openStore(ctx); err != nil {
		return nil, err
	}
	if m.Engine, err = policy.New(ctx, policy.Options{Dir: cfg.PolicyDir, Restricted: cfg.restrictedList()}); err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	receiptKey, err := jwt.LoadOrCreateKey(keys.receiptKey())
	if err != nil {
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	signer, err := jwt.NewSigner(receiptKey)
	if err != nil {
		return nil, err
	}
	verify, jwksKeys, err := m.openAuth(ctx, keys)
	if err != nil {
		return nil, err
	}
	jwks, err := jwt.JWKS(append(jwksKeys, &receiptKey.PublicKey)...)
	if err != nil {
		return nil, err
	}
	m.Consent = consent.NewSealedService(m.Ledger, refs)
	m.Service = &records.Service{
		Store: m.Store, Keys: ring, Ledger: m.Consent, Consents: m.Consent,
		Access: records.LedgerAccessLog{Ledger: m.Consent}, Authz: m.Engine, Refs: refs,
		Receipts: signer, Logger: logger, Notices: m.Store,
		BreakGlassLimit:    records.NewLimiter(cfg.BreakGlassPerHour, time.Hour),
		DeniedLimit:        records.NewLimiter(cfg.RefusalsPerHour, time.Hour),
		MaxConsentValidity: cfg.MaxConsentValidity,
		ClaimQuota:         records.NewLimiter(cfg.ClaimAttempts, records.DefaultClaimWindow),
	}
	if cfg.Ledger == "fabric" {
		err = m.startFabricWorkers(m.Service)
	} else {
		err = m.startAccessJournal(m.Service)
	}
	if err != nil {
		return nil, err
	}
	if a, d, err := m.Service.RecoverPending(ctx); err != nil {
		return nil, fmt.Errorf("recover pending records: %w", err)
	} else if a+d > 0 {
		logger.Info("recovered pending records", "anchored", a, "deleted", d)
	}
	m.HTTP = mshttp.New(cfg.httpLimits(mshttp.Config{
		Service: m.Service, Orgs: m.Consent, Authz: m.Engine, JWKS: jwks, Logger: logger,
		Authenticate: authenticator(verify, newOrgCache(m.Consent, orgTTL(cfg)), refs),
		Ready:        m.ready,
		BodyLimit:    cfg.BodyLimitMB << 20,
	}))
	return m, nil
}

func (m *Main) openLedger(ctx context.Context, keys keyPaths) error {
	nodeKey, err := jwt.LoadOrCreateKey(keys.ledgerNode())
	if err != nil {
		return fmt.Errorf("ledger node key: %w", err)
	}
	l, err := localledger.Open(ctx, localledger.Options{
		Path: ledgerPath(m.Config.Data), Key: nodeKey, NodeID: "medshare-embedded", Logger: m.Logger,
	})
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	m.Ledger = l
	m.closers = append(m.closers, l.Close)
	return nil
}

func (m *Main) openStore(ctx context.Context) error {
	if m.Config.MongoURI != "" {
		s, err := mongo.Open(ctx, m.Config.MongoURI, m.Config.MongoDB)
		if err != nil {
			return fmt.Errorf("open mongo store: %w", err)
		}
		m.Store = s
	} else {
		s, err := bolt.Open(storePath(m.Config.Data))
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		m.Store = s
	}
	m.closers = append(m.closers, m.Store.Close)
	return nil
}

// openAuth returns the token verifier and the public keys to publish: the
// dev issuer's in embedded mode, none with an external identity provider.
func (m *Main) openAuth(ctx context.Context, keys keyPaths) (*jwt.Verifier, []*ecdsa.PublicKey, error) {
	if m.Config.JWKSURL != "" {
		v, err := jwt.NewVerifier(ctx, jwt.VerifierConfig{Issuer: m.Config.JWTIssuer, Audience: audience, JWKSURL: m.Config.JWKSURL, CacheSize: jwt.DefaultCacheSize, MaxLifetime: m.Config.TokenMaxLifetime})
		if err != nil {
			return nil, nil, fmt.Errorf("token verifier: %w", err)
		}
		return v, nil, nil
	}
	key, err := jwt.LoadOrCreateKey(keys.devIssuer())
	if err != nil {
		return nil, nil, fmt.Errorf("dev issuer key: %w", err)
	}
	if m.Issuer, err = jwt.NewIssuer(key, devIssuer, audience); err != nil {
		return nil, nil, err
	}
	v, err := jwt.NewVerifier(ctx, jwt.VerifierConfig{Issuer: devIssuer, Audience: audience, Keys: []*ecdsa.PublicKey{&key.PublicKey}, CacheSize: jwt.DefaultCacheSize, MaxLifetime: m.Config.TokenMaxLifetime})
	if err != nil {
		return nil, nil, fmt.Errorf("token verifier: %w", err)
	}
	return v, []*ecdsa.PublicKey{&key.PublicKey}, nil
}

// ready reports whether the store and the ledger can serve.
func (m *Main) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := m.Store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := m.Ledger.Ping(ctx); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// Listen binds the configured address (":0" style ports allowed) and starts
// serving in the background.
func (m *Main) Listen() error {
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	m.ln, m.served = ln, make(chan error, 1)
	go func() { m.served <- m.HTTP.Serve(ln) }()
	return nil
}

// URL is the base URL the node serves on, after Listen.
func (m *Main) URL() string { return "http://" + m.ln.Addr().String() }

// Done delivers the serve loop's exit.
func (m *Main) Done() <-chan error { return m.served }

// Close stops serving and closes every dependency in reverse order.
func (m *Main) Close() error {
	var errs []error
	if m.HTTP != nil && m.ln != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, m.HTTP.Shutdown(ctx))
		cancel()
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	m.closers = nil
	return errors.Join(errs...)
}
