// Command medshare runs the medshare node and its tools: serve, token,
// demo and ledger verify. It only wires packages together.
package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/medshare/medshare/integrations/journal"
	"github.com/medshare/medshare/integrations/jwt"
	"github.com/medshare/medshare/integrations/localledger"
)

const usage = `medshare — patient-controlled medical records

usage:
  medshare serve [--addr 127.0.0.1:8080] [--data ./data] [flags]
  medshare token --data DIR --role ROLE --sub SUBJECT [--org ORG] [--ttl 1h]
  medshare demo  [--keep]
  medshare ledger verify --data DIR

Run "medshare serve -h" for every setting and its MEDSHARE_* variable.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "token":
		err = token(args[1:], stdout)
	case "demo":
		err = demo(ctx, args[1:], stdout)
	case "ledger":
		if len(args) < 2 || args[1] != "verify" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		err = ledgerVerify(ctx, args[2:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "medshare:", err)
		return 1
	}
	return 0
}

// newLogger returns a JSON logger at level on w.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg Config
	cfg.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel)
	tuneGC()
	start := time.Now()
	m, err := Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Listen(); err != nil {
		return err
	}
	url := m.URL()
	if m.Config.TLSCert != "" {
		url = "https://" + strings.TrimPrefix(url, "http://")
	}
	if m.Issuer != nil {
		logger.Warn("DEV ISSUER: tokens are minted locally by `medshare token` with the key in the data dir; "+
			"for development only: set MEDSHARE_JWKS_URL and MEDSHARE_JWT_ISSUER to use an identity provider",
			"key", keysOf(cfg.Data).devIssuer(), "addr", m.Config.Addr, "allowed_on_network", m.Config.AllowDevIssuerOnNetwork)
	}
	logger.Info("medshare serving", "url", url, "data", cfg.Data, "ledger", cfg.Ledger,
		"store", storeKind(cfg), "policy_digest", m.Engine.Digest(), "startup", time.Since(start).String())
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		return nil
	case err := <-m.Done():
		return err
	}
}

// serveGCPercent and serveMemoryLimit tune the collector for a server
// whose live heap is small (tens of MiB) and whose hot path allocates: a
// collection at every 100 % of growth (Go's default) runs several times a
// second under load. Collecting at 400 % halves GC's CPU on a fetch, and
// the soft limit keeps the heap bounded (anonymous RSS target: 150 MiB at
// 200k records). GOGC or GOMEMLIMIT in the environment take precedence.
const (
	serveGCPercent   = 400
	serveMemoryLimit = 100 << 20
)

// tuneGC applies serveGCPercent and serveMemoryLimit unless the
// environment sets GOGC or GOMEMLIMIT.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
}

func storeKind(cfg Config) string {
	if cfg.MongoURI != "" {
		return "mongo"
	}
	return "bolt"
}

func token(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	data := fs.String("data", env("MEDSHARE_DATA", "./data"), "data directory of the node whose dev issuer signs")
	role := fs.String("role", "", "patient | provider | insurer | admin | auditor")
	sub := fs.String("sub", "", "subject id")
	org := fs.String("org", "", "organization id (provider, insurer, auditor)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *role == "" || *sub == "" {
		return fmt.Errorf("token needs --role and --sub")
	}
	if *ttl <= 0 || *ttl > 24*time.Hour {
		return fmt.Errorf("--ttl must be between 1s and 24h")
	}
	key, err := readDevIssuerKey(*data)
	if err != nil {
		return err
	}
	iss, err := jwt.NewIssuer(key, devIssuer, audience)
	if err != nil {
		return err
	}
	tok, err := iss.Mint(*sub, *role, *org, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func ledgerVerify(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
	data := fs.String("data", env("MEDSHARE_DATA", "./data"), "data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := readNodeKey(*data)
	if err != nil {
		return err
	}
	rep, err := localledger.Verify(ctx, ledgerPath(*data), &key.PublicKey)
	if err != nil {
		var ve *localledger.VerifyError
		if errors.As(err, &ve) {
			return fmt.Errorf("ledger verification FAILED at block %d: %s", ve.Height, ve.Reason)
		}
		return fmt.Errorf("ledger verification failed: %w", err)
	}
	fmt.Fprintf(stdout, "ledger OK: %d blocks, %d transactions, height %d; hash chain, signatures and state verified\n", rep.Blocks, rep.Txs, rep.Height)
	jr, err := journal.Inspect(journalPath(*data))
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintln(stdout, "access-log journal: none")
	case err != nil:
		return fmt.Errorf("access-log journal verification FAILED: %w", err)
	default:
		torn := ""
		if jr.TornTail {
			torn = "; ends in a torn, unacknowledged write that the next start cuts off"
		}
		fmt.Fprintf(stdout, "access-log journal OK: %d entries waiting to be anchored%s\n", jr.Pending, torn)
	}
	return nil
}

// readDevIssuerKey loads the dev issuer key of the node at data without
// creating one: a fresh key would sign tokens that node refuses ("unknown
// signing key").
func readDevIssuerKey(data string) (*ecdsa.PrivateKey, error) {
	p := keysOf(data).devIssuer()
	if _, err := os.Stat(p); err != nil {
		dir := filepath.Join(strings.TrimSuffix(data, "/"), "keys")
		return nil, fmt.Errorf("no dev issuer key in %s: start `medshare serve --data %s` once first (%w)", dir, data, err)
	}
	key, err := jwt.LoadOrCreateKey(p)
	if err != nil {
		return nil, fmt.Errorf("dev issuer key: %w", err)
	}
	return key, nil
}

// readNodeKey loads the ledger node key without creating one: verifying a
// ledger with a fresh key would be meaningless.
func readNodeKey(data string) (*ecdsa.PrivateKey, error) {
	p := keysOf(data).ledgerNode()
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("no ledger node key at %s: is %s a medshare data dir?", p, strings.TrimSuffix(data, "/"))
	}
	return jwt.LoadOrCreateKey(p)
}
