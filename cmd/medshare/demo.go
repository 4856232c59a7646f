package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/medshare/medshare/integrations/localledger"
	"github.com/medshare/medshare/records"
)

// demo starts a node on a fresh temp data dir and loopback port, walks the
// three journeys against it over HTTP, then verifies the ledger it wrote.
func demo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "keep the temp data dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "medshare-demo-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if *keep {
		fmt.Fprintf(stdout, "data dir: %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	cfg := Config{Addr: "127.0.0.1:0", Data: dir, Ledger: "embedded", MongoDB: "medshare", BodyLimitMB: 12,
		BreakGlassPerHour: 20, RefusalsPerHour: 300, ClaimAttempts: records.DefaultClaimAttempts}
	start := time.Now()
	m, err := Open(ctx, cfg, newLogger(io.Discard, "error"))
	if err != nil {
		return err
	}
	if err := m.Listen(); err != nil {
		m.Close()
		return err
	}
	fmt.Fprintf(stdout, "medshare demo: a node on %s (embedded store and ledger), up in %s\n\n", m.URL(), time.Since(start).Round(time.Millisecond))
	j := &journeys{c: newClient(m.URL()), out: stdout, mint: func(sub, role, org string) (string, error) {
		return m.Issuer.Mint(sub, role, org, 15*time.Minute)
	}}
	runErr := j.run(ctx)
	if err := m.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return runErr
	}
	key, err := readNodeKey(dir)
	if err != nil {
		return err
	}
	rep, err := localledger.Verify(ctx, ledgerPath(dir), &key.PublicKey)
	if err != nil {
		return fmt.Errorf("surprise: ledger does not verify: %w", err)
	}
	fmt.Fprintf(stdout, "Ledger verified from genesis: %d blocks, %d transactions, signatures, hash chain and state intact.\n", rep.Blocks, rep.Txs)
	return nil
}
