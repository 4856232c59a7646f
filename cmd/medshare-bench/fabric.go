package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/fabric"
	"github.com/medshare/medshare/records"
)

// fabric runs the Fabric scenarios (target 7) against the native network of
// integrations/fabric/network, started (or reused) with a lease on this
// process: a network the lease started stops once the harness exits, one
// that was already up stays up. A failure to reach the network is reported
// as "not measured", not as a failed run.
func (b *bench) fabric(ctx context.Context) error {
	env, batch, err := fabricUp(ctx, b.cfg.fabricNet)
	if err != nil {
		b.rep.note("Fabric scenarios not measured: %v", err)
		return nil
	}
	b.tg.fabricGrant.text = fmt.Sprintf("Fabric grant p50 ≤ BatchTimeout (%v) + 150 ms", batch)
	ns := "-b" + strings.ToLower(rand.Text()[:6])
	fab, err := b.build(ctx, "node-fabric", b.cfg.fabricRecords, nodeOpts{env: env, ns: ns, inPlace: true})
	if err != nil {
		return fmt.Errorf("fabric node: %w", err)
	}
	emb, err := b.build(ctx, "node-fabric-ref", b.cfg.fabricRecords, nodeOpts{})
	if err != nil {
		return err
	}
	if err := b.fabricGrant(ctx, emb, fab, batch); err != nil {
		return err
	}
	if err := b.fabricFetch(ctx, emb, fab); err != nil {
		return err
	}
	return b.fabricAnchoring(ctx, env)
}

// fabricUp starts or reuses the network and returns its MEDSHARE_*
// environment and block-cutting BatchTimeout.
func fabricUp(ctx context.Context, script string) ([]string, time.Duration, error) {
	progress("fabric: network.sh up (builds the pinned binaries on first use)")
	up := exec.CommandContext(ctx, "bash", script, "up", "--lease", fmt.Sprint(os.Getpid()))
	up.Env = cleanEnv()
	if out, err := up.CombinedOutput(); err != nil {
		return nil, 0, fmt.Errorf("network.sh up: %v: %s", err, lastLines(out, 5))
	}
	envCmd := exec.CommandContext(ctx, "bash", script, "env")
	envCmd.Env = cleanEnv()
	out, err := envCmd.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("network.sh env: %w", err)
	}
	var env []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env = append(env, k+"="+strings.Trim(v, `'"`))
		}
	}
	batch := 100 * time.Millisecond // the network's default
	cfg, err := os.ReadFile(filepath.Join(filepath.Dir(script), ".state", "config", "configtx.yaml"))
	if err == nil {
		if m := regexp.MustCompile(`(?m)^\s*BatchTimeout:\s*(\S+)`).FindSubmatch(cfg); m != nil {
			if d, err := time.ParseDuration(string(m[1])); err == nil {
				batch = d
			}
		}
	}
	return env, batch, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// envValue returns name's value in env.
func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// grantOp grants clinic-c access on s, round the patients, and returns the
// grant's latency.
func grantOp(s *seeded) timedOp {
	patients := s.fetchable() / recordsPerPatient
	return func(ctx context.Context, w, i int) (time.Duration, error) {
		t := time.Now()
		_, err := s.grantID(ctx, (i*7+w)%patients, "clinic-c", "TREAT")
		return time.Since(t), err
	}
}

// fabricGrant compares grant latency on Fabric with the embedded ledger.
func (b *bench) fabricGrant(ctx context.Context, emb, fab *seeded, batch time.Duration) error {
	r, err := interleave(ctx, b.cfg,
		phase{name: "embedded grant", c: 1, fn: grantOp(emb)},
		phase{name: "fabric grant", c: 1, fn: grantOp(fab)},
	)
	if err != nil {
		return err
	}
	p50 := r.p50("fabric grant")
	limit := batch + 150*time.Millisecond
	b.tg.fabricGrant.goal = float64(limit) / float64(time.Millisecond)
	b.tg.fabricGrant.set(float64(p50)/float64(time.Millisecond), fmtDur(p50))
	b.rep.add(fmt.Sprintf("consent grant on Fabric (BatchTimeout %v), c=1", batch),
		fmt.Sprintf("%.0f × embedded grant latency", r.latencyRatio("fabric grant", "embedded grant")),
		fmt.Sprintf("embedded p50 %s", fmtDur(r.p50("embedded grant"))),
		fmt.Sprintf("p50 %s, p99 %s", fmtDur(p50), fmtDur(r.quantile("fabric grant", 0.99))), b.tg.fabricGrant)
	return nil
}

// fabricFetch compares authorized reads with Fabric as the ledger (access
// entries to the outbox, anchored in batches) with the embedded ledger.
func (b *bench) fabricFetch(ctx context.Context, emb, fab *seeded) error {
	r, err := interleave(ctx, b.cfg,
		plain("embedded c1", 1, readOp(emb, emb.reader(), 200)),
		plain("fabric c1", 1, readOp(fab, fab.reader(), 200)),
		plain("embedded c32", 32, readOp(emb, emb.reader(), 200)),
		plain("fabric c32", 32, readOp(fab, fab.reader(), 200)),
	)
	if err != nil {
		return err
	}
	x := r.ratio("fabric c32", "embedded c32")
	b.tg.fabricFetch.set(x, fmtRatio(x)+" (c=32)")
	b.rep.add("authorized fetch with Fabric as the ledger, c=32", fmtRatio(x)+" of embedded",
		fmt.Sprintf("embedded %s", fmtRate(r.rate("embedded c32"))),
		fmt.Sprintf("%s, p50 %s", fmtRate(r.rate("fabric c32")), fmtDur(r.p50("fabric c32"))), b.tg.fabricFetch)
	b.rep.add("authorized fetch with Fabric as the ledger, c=1", fmtRatio(r.ratio("fabric c1", "embedded c1"))+" of embedded",
		fmt.Sprintf("embedded %s", fmtRate(r.rate("embedded c1"))),
		fmt.Sprintf("%s, p50 %s", fmtRate(r.rate("fabric c1")), fmtDur(r.p50("fabric c1"))), nil)
	return nil
}

// fabricAnchoring compares access-log anchoring on Fabric, in process: one
// submitter sending batches of anchorBatch entries per LogAccessBatch
// transaction, as the outbox worker does, against one LogAccess transaction
// per entry from 32 concurrent submitters (the common Fabric EHR design).
func (b *bench) fabricAnchoring(ctx context.Context, env []string) error {
	l, err := fabric.Open(ctx, fabric.Config{
		Profile: envValue(env, "MEDSHARE_FABRIC_CONFIG"), Channel: envValue(env, "MEDSHARE_FABRIC_CHANNEL"),
		Chaincode: envValue(env, "MEDSHARE_FABRIC_CHAINCODE"), MSPID: envValue(env, "MEDSHARE_FABRIC_MSPID"),
		CertPath: envValue(env, "MEDSHARE_FABRIC_CERT"), KeyPath: envValue(env, "MEDSHARE_FABRIC_KEY"),
		Org: envValue(env, "MEDSHARE_FABRIC_ORG"),
	})
	if err != nil {
		return fmt.Errorf("open fabric ledger: %w", err)
	}
	defer l.Close()
	svc := consent.NewService(l)
	pepper := make([]byte, 32)
	rand.Read(pepper)
	refs, _ := consent.NewPseudonymizer(pepper)
	entry := func(i int) consent.AccessEntry {
		return consent.AccessEntry{
			ID: records.NewID("a-"), Time: time.Now().UTC(), Action: "read", RecordID: records.NewID("r-"),
			PatientRef: refs.PatientRef(patientID(i % 1000)), ActorRef: refs.SubjectRef("dr-bo"), Role: "provider",
			Org: "hospital-b", Purpose: consent.PurposeTreat, Decision: consent.DecisionAllow,
			Reasons: []string{"consent grants hospital-b access to this record for purpose TREAT"}, PolicyDigest: "bench",
		}
	}
	single := func(ctx context.Context, w, i int) (time.Duration, error) {
		_, _, err := svc.LogAccess(ctx, entry(i))
		return 0, err
	}
	batched := func(ctx context.Context, w, i int) (time.Duration, error) {
		es := make([]consent.AccessEntry, anchorBatch)
		for k := range es {
			es[k] = entry(i*anchorBatch + k)
		}
		_, _, err := svc.LogAccessBatch(ctx, es)
		return 0, err
	}
	r, err := interleave(ctx, b.cfg,
		phase{name: "single", c: 32, fn: single},
		phase{name: "batched", c: 1, fn: batched},
		phase{name: "batched c4", c: 4, fn: batched},
	)
	if err != nil {
		return err
	}
	x := r.ratio("batched", "single") * anchorBatch
	b.tg.fabricAnchor.set(x, fmtRatio(x))
	b.rep.add(fmt.Sprintf("access-log anchoring on Fabric: batches of %d entries (1 submitter, as the outbox worker) vs one tx per entry (32 submitters)", anchorBatch),
		fmtRatio(x)+" entries/s", fmt.Sprintf("one tx per entry: %s entries", fmtRate(r.rate("single"))),
		fmt.Sprintf("%s entries, p50 %s per batch; with 4 batches in flight %s entries (%s)", fmtRate(r.rate("batched")*anchorBatch),
			fmtDur(r.p50("batched")), fmtRate(r.rate("batched c4")*anchorBatch), fmtRatio(r.ratio("batched c4", "single")*anchorBatch)), b.tg.fabricAnchor)
	return nil
}

// anchorBatch is the entries per LogAccessBatch in the anchoring scenario:
// the outbox worker's default batch (consent.OutboxWorker).
const anchorBatch = 500
