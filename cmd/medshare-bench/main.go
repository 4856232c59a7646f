// Command medshare-bench is medshare's benchmark harness (issue 5). It
// starts real medshare servers (the bin/medshare binary, as child processes
// on loopback with fresh data dirs), seeds them with ~4 KiB FHIR records
// built from the Synthea sample, drives them with a Go load generator, and
// measures every scenario against baselines served by the harness itself in
// the same run, phases interleaved. It prints one markdown table and writes
// it to docs/PERFORMANCE.md.
//
// Usage (from the repository root, after `make build`):
//
//	medshare-bench [-quick] [-gate] [-out docs/PERFORMANCE.md]
//
// With -gate it exits 1 when a c=1 ratio falls below its target by more
// than -margin (the noise margin); otherwise it exits 0 whatever it
// measured, and non-zero only when it could not measure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config is the run's configuration, from flags.
type config struct {
	quick, gate, keep bool
	bin, out, synthea string
	dir, seedRoot     string
	reps              int
	phase             time.Duration
	records, scale    int
	consentsSmall     int
	consentsLarge     int
	logEntries        int
	margin            float64
	command           string
	only              string
	candidate         string
	fabric            bool
	fabricNet         string
	fabricRecords     int
}

func parseFlags(args []string) (*config, error) {
	c := &config{command: "medshare-bench " + strings.Join(args, " ")}
	fs := flag.NewFlagSet("medshare-bench", flag.ContinueOnError)
	fs.BoolVar(&c.quick, "quick", false, "reduced set (fetch, upload, grant/revoke, policy, denied, claims) in under 2 minutes")
	fs.BoolVar(&c.gate, "gate", false, "exit 1 when a c=1 ratio falls below its target by more than -margin")
	fs.Float64Var(&c.margin, "margin", 0.15, "noise margin for -gate, relative to the target")
	fs.BoolVar(&c.keep, "keep", false, "keep the data dirs and node logs")
	fs.StringVar(&c.only, "only", "", "run only the scenarios whose key is in this comma list (fetch, denied, upload, grant, revoke, claims, log, policy, history, scale, memory, fabric, candidate)")
	fs.StringVar(&c.bin, "bin", "bin/medshare", "medshare binary")
	fs.StringVar(&c.candidate, "candidate", "", "a second medshare binary to compare with -bin (A/B test of a change)")
	fs.StringVar(&c.out, "out", "docs/PERFORMANCE.md", "markdown output; empty to print only")
	fs.StringVar(&c.synthea, "synthea", "testdata/synthea", "Synthea NDJSON sample")
	fs.StringVar(&c.dir, "dir", "", "work dir on the disk under test (default: a new temp dir)")
	fs.StringVar(&c.seedRoot, "seed-dir", "/dev/shm", "where nodes are seeded before being copied to -dir (a tmpfs makes seeding fast); empty seeds in place")
	fs.IntVar(&c.reps, "reps", 0, "repetitions per comparison (default 5 quick, 7 full; at least 5)")
	fs.DurationVar(&c.phase, "phase", 0, "length of one phase (default 600ms quick, 2s full)")
	fs.IntVar(&c.records, "records", 1000, "records of the main node")
	fs.IntVar(&c.scale, "scale", 200_000, "records of the scale node (full set only)")
	fs.IntVar(&c.consentsSmall, "consents-small", 1000, "consents on the small policy ledger")
	fs.IntVar(&c.consentsLarge, "consents-large", 100_000, "consents on the large policy ledger")
	fs.IntVar(&c.logEntries, "log-entries", 10_000, "access-log entries of the big-log patient (full set only)")
	fs.BoolVar(&c.fabric, "fabric", true, "run the Fabric scenarios (full set only) on the native network")
	fs.StringVar(&c.fabricNet, "fabric-net", "integrations/fabric/network/network.sh", "the native Fabric network script")
	fs.IntVar(&c.fabricRecords, "fabric-records", 1000, "records of the Fabric node")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.reps == 0 {
		c.reps = 7
		if c.quick {
			c.reps = 5
		}
	}
	if c.phase == 0 {
		c.phase = 2 * time.Second
		if c.quick {
			c.phase = 600 * time.Millisecond
		}
	}
	switch {
	case c.reps < 5:
		return nil, fmt.Errorf("-reps must be at least 5")
	case c.records < 100 || c.records%recordsPerPatient != 0:
		return nil, fmt.Errorf("-records must be a multiple of %d, at least 100", recordsPerPatient)
	case c.scale%recordsPerPatient != 0 || c.fabricRecords%recordsPerPatient != 0:
		return nil, fmt.Errorf("-scale and -fabric-records must be multiples of %d", recordsPerPatient)
	}
	return c, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	cfg, err := parseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "medshare-bench:", err)
		return 2
	}
	b, cleanup, err := setup(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "medshare-bench:", err)
		return 1
	}
	err = b.runAll(ctx)
	cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "medshare-bench:", err)
		return 1
	}
	b.rep.explain()
	var sb strings.Builder
	b.rep.write(&sb)
	fmt.Print(sb.String())
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(sb.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "medshare-bench:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "\nwrote %s\n", cfg.out)
	}
	if cfg.gate {
		if fails := b.rep.gateFailures(cfg.margin); len(fails) > 0 {
			fmt.Fprintf(os.Stderr, "\nbench gate FAILED (noise margin %.0f%%):\n  %s\n", 100*cfg.margin, strings.Join(fails, "\n  "))
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench gate passed: no c=1 ratio below its target by more than %.0f%%\n", 100*cfg.margin)
	}
	return 0
}

// setup loads the corpus, makes the work dirs, starts the baseline and
// builds the main node. cleanup stops everything and removes the dirs
// (unless -keep).
func setup(ctx context.Context, cfg *config) (*bench, func(), error) {
	var err error
	if cfg.bin, err = filepath.Abs(cfg.bin); err != nil {
		return nil, nil, err
	}
	if cfg.candidate != "" {
		if cfg.candidate, err = filepath.Abs(cfg.candidate); err != nil {
			return nil, nil, err
		}
	}
	if _, err := os.Stat(cfg.bin); err != nil {
		return nil, nil, fmt.Errorf("medshare binary: %w (run make build)", err)
	}
	b := &bench{cfg: cfg}
	b.rep = &report{cfg: cfg, started: time.Now()}
	b.tg = newTargets(b.rep)
	if b.corp, err = loadCorpus(cfg.synthea); err != nil {
		return nil, nil, err
	}
	b.rep.recordSize = b.corp.meanSize(1000)
	if cfg.dir == "" {
		if cfg.dir, err = os.MkdirTemp("", "medshare-bench-"); err != nil {
			return nil, nil, err
		}
	}
	seedOwned := false
	if fi, err := os.Stat(cfg.seedRoot); cfg.seedRoot == "" || err != nil || !fi.IsDir() {
		cfg.seedRoot = cfg.dir
	} else if cfg.seedRoot, err = os.MkdirTemp(cfg.seedRoot, "medshare-bench-seed-"); err != nil {
		return nil, nil, err
	} else {
		seedOwned = true
	}
	cleanup := func() {
		for _, s := range b.nodes {
			if s.running() {
				_ = s.stop()
			}
		}
		if b.base != nil {
			_ = b.base.close()
		}
		if seedOwned {
			os.RemoveAll(cfg.seedRoot)
		}
		if cfg.keep {
			fmt.Fprintf(os.Stderr, "kept %s\n", cfg.dir)
		} else {
			os.RemoveAll(cfg.dir)
		}
	}
	progress("baseline: seeding %d records in %s", cfg.records, cfg.dir)
	if b.base, err = startBaseline(ctx, filepath.Join(cfg.dir, "baseline"), b.corp, cfg.records); err != nil {
		cleanup()
		return nil, nil, err
	}
	progress("main node: seeding %d records", cfg.records)
	if b.node, err = b.build(ctx, "node-main", cfg.records, nodeOpts{}); err != nil {
		cleanup()
		return nil, nil, err
	}
	return b, cleanup, nil
}

// runAll runs the scenarios in the order of issue 5, the quick set
// leaving out those that need large seeds.
func (b *bench) runAll(ctx context.Context) error {
	type scenario struct {
		key, name string
		quick     bool
		fn        func(context.Context) error
	}
	all := []scenario{
		{"fetch", "fetch c=1 and c=32 vs baselines", true, b.fetch},
		{"denied", "fetch denied", true, b.denied},
		{"upload", "upload", true, b.upload},
		{"grant", "grant → first read; revoke → next read", true, b.grantRead},
		{"revoke", "revoke under load", true, b.revokeUnderLoad},
		{"claims", "claim verification", true, b.claims},
		{"log", "access-log listing", false, b.accessLog},
		{"policy", "policy decisions", true, b.policy},
		{"history", "fetch with a consent history vs without", false, b.consentHistory},
		{"scale", "fetch at scale", false, b.scale},
		{"memory", "memory and start-up", false, b.memory},
		{"fabric", "Fabric: grant, fetch, anchoring", false, b.fabric},
		{"candidate", "candidate binary", true, b.candidate},
	}
	for _, s := range all {
		if (b.cfg.quick && !s.quick) || (b.cfg.only != "" && !slices.Contains(strings.Split(b.cfg.only, ","), s.key)) || (s.key == "fabric" && !b.cfg.fabric) {
			continue
		}
		progress("scenario: %s", s.name)
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		progress("  done in %v", time.Since(start).Round(100*time.Millisecond))
	}
	if b.cfg.quick {
		b.rep.note("Quick set: access-log listing, fetch at %d records, RSS and start-up are measured by `make bench` only.", b.cfg.scale)
	}
	if b.cfg.quick || !b.cfg.fabric {
		b.rep.note("Fabric scenarios (target 7) run in the full set only, with -fabric (the default).")
	}
	return nil
}

// progress prints a timestamped line to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
