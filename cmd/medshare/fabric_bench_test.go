//go:build fabric

package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/medshare/medshare/consent"
	"time"

	"github.com/medshare/medshare/integrations/fabric/network"
)

// fabricBenchNode is benchNode on the Fabric network.
func fabricBenchNode(b *testing.B) (*journeys, string) {
	b.Helper()
	env := network.Ensure(b)
	cfg := fabricLedgerConfig(b.TempDir(), env)
	m := MustStart(b, cfg)
	return seedBench(b, m, runNS())
}

// BenchmarkFabricFetch is BenchmarkFetch with Fabric as the ledger (bolt
// store): the access entry goes to the outbox, the read never waits for
// ordering.
func BenchmarkFabricFetch(b *testing.B) { benchFetch(b, fabricBenchNode) }

// BenchmarkFabricGrant is a consent grant committed on Fabric (endorse,
// order, validate, commit).
func BenchmarkFabricGrant(b *testing.B) { benchGrant(b, fabricBenchNode) }

// BenchmarkFabricRevocationLag revokes on node A and measures how long
// node B (its own store, same network) keeps allowing reads, i.e. the
// block-event lag of B's consent read model.
func BenchmarkFabricRevocationLag(b *testing.B) {
	env := network.Ensure(b)
	var first string
	mk := func() *Main {
		cfg := fabricLedgerConfig(b.TempDir(), env)
		if first == "" {
			first = cfg.Data
		} else {
			// Nodes of one deployment share the pseudonym pepper, or the
			// same patient would have a different ref on each node.
			copyKey(b, keysOf(first).pepper(), keysOf(cfg.Data).pepper())
		}
		return MustStart(b, cfg)
	}
	a, nodeB := mk(), mk()
	ja, _ := seedBench(b, a, runNS())
	// Each node has its own store: B learns A's grants and revokes only
	// from block events, which is what this measures (B's read model is
	// what B's policy decisions read).
	ctx := context.Background()
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := ja.expect(ctx, 201, "POST", "/v1/consents", patient7, map[string]any{
			"grantee": map[string]string{"org": ja.n("hospital-b")}, "categories": []string{"notes"}, "purposes": []string{"TREAT"}})
		if err != nil {
			b.Fatal(err)
		}
		var c struct{ ID string }
		if err := r.JSON(&c); err != nil {
			b.Fatal(err)
		}
		ref := nodeB.Service.Refs.PatientRef(ja.n("p-7"))
		waitStatus(b, nodeB, ref, c.ID, "active")
		if _, err := ja.expect(ctx, 200, "DELETE", "/v1/consents/"+c.ID, patient7, nil); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		waitStatus(b, nodeB, ref, c.ID, "revoked")
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-lag/op")
}

// waitStatus polls node's consent read model until consent id has status.
func waitStatus(b *testing.B, node *Main, patientRef, id, status string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cs, err := node.Service.Consents.Consents(context.Background(), consentFilter(patientRef))
		if err == nil {
			for _, c := range cs {
				if c.ID == id && c.Status == status {
					return
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("consent %s never became %s on the other node", id, status)
}

// copyKey copies a 0600 key file into a fresh keys dir.
func copyKey(b *testing.B, from, to string) {
	b.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		b.Fatal(err)
	}
}

// consentFilter selects one patient's consents.
func consentFilter(patientRef string) consent.ConsentFilter {
	return consent.ConsentFilter{PatientRef: patientRef}
}

// BenchmarkFabricAnchoringDelay reads with 32 clients at once and reports
// how long access entries waited in the outbox: for each entry, the time
// of its anchoring transaction minus the time of the access (both are on
// the ledger), as p50, p99 and max.
func BenchmarkFabricAnchoringDelay(b *testing.B) {
	env := network.Ensure(b)
	cfg := fabricLedgerConfig(b.TempDir(), env)
	m := MustStart(b, cfg)
	j, id := seedBench(b, m, runNS())
	ctx := context.Background()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := j.expect(ctx, 200, "GET", "/v1/records/"+id, drBo, nil, treat...); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	ob := m.Store.(consent.Outbox)
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := ob.PendingEntries(ctx, 1)
		if err == nil && len(p) == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("entries still pending after 60 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var delays []time.Duration
	ref := m.Service.Refs.PatientRef(j.n("p-7"))
	for after := ""; ; {
		page, err := m.Consent.AccessLog(ctx, consent.AccessFilter{PatientRef: ref, After: after, Limit: 1000})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range page.Entries {
			delays = append(delays, e.AnchoredAt.Sub(e.Time))
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	slices.Sort(delays)
	q := func(p float64) float64 { return float64(delays[int(p*float64(len(delays)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "ms-p50-delay")
	b.ReportMetric(q(0.99), "ms-p99-delay")
	b.ReportMetric(q(1), "ms-max-delay")
	b.ReportMetric(float64(len(delays)), "entries")
}
