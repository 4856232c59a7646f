package main

import (
	"context"
	"io"
	"testing"
	"time"
)

// benchNode starts a node with the demo orgs, one record of p-7 and a
// consent for hospital-b, and returns the journeys helper and record id.
func benchNode(b *testing.B) (*journeys, string) {
	b.Helper()
	return seedBench(b, MustStart(b, testConfig(b.TempDir())), "")
}

// seedBench registers the orgs (ids suffixed by ns), stores one record of
// p-7 and grants hospital-b access to it.
func seedBench(b *testing.B, m *Main, ns string) (*journeys, string) {
	b.Helper()
	j := setupOrgsNS(b, m, ns)
	j.out = io.Discard
	ctx := context.Background()
	content, _ := demoData.ReadFile("demodata/procedure.json")
	r, err := j.expect(ctx, 201, "POST", "/v1/records", drAsh, map[string]any{
		"patient": j.n("p-7"), "category": "procedures", "contentType": "application/fhir+json", "content": string(content)})
	if err != nil {
		b.Fatal(err)
	}
	var rec struct{ ID string }
	if err := r.JSON(&rec); err != nil {
		b.Fatal(err)
	}
	if _, err := j.expect(ctx, 201, "POST", "/v1/consents", patient7, map[string]any{
		"grantee": map[string]string{"org": j.n("hospital-b")}, "categories": []string{"procedures"}, "purposes": []string{"TREAT"}}); err != nil {
		b.Fatal(err)
	}
	return j, rec.ID
}

// BenchmarkFetch is an authorized fetch at concurrency 1: JWT, consent
// lookup, OPA, durable access entry, decrypt, respond.
func BenchmarkFetch(b *testing.B) { benchFetch(b, benchNode) }

// benchFetch times sequential authorized fetches on the node seed makes.
func benchFetch(b *testing.B, seed func(*testing.B) (*journeys, string)) {
	j, id := seed(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := j.expect(ctx, 200, "GET", "/v1/records/"+id, drBo, nil, treat...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGrant is a consent grant committed on the embedded ledger.
func BenchmarkGrant(b *testing.B) { benchGrant(b, benchNode) }

// benchGrant times sequential consent grants on the node seed makes.
func benchGrant(b *testing.B, seed func(*testing.B) (*journeys, string)) {
	j, _ := seed(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := j.expect(ctx, 201, "POST", "/v1/consents", patient7, map[string]any{
			"grantee": map[string]string{"org": j.n("clinic-c")}, "categories": []string{"lab"}, "purposes": []string{"TREAT"}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHealthz is the bare HTTP round trip, a baseline for the others.
func BenchmarkHealthz(b *testing.B) {
	j, _ := benchNode(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := j.c.do(ctx, "GET", "/healthz", "", nil)
		if err != nil || r.Status != 200 {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartup opens a node on an existing data dir and serves.
func BenchmarkStartup(b *testing.B) {
	dir := b.TempDir()
	m := MustStart(b, testConfig(dir))
	setupOrgs(b, m)
	m.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		m, err := Open(context.Background(), testConfig(dir), newLogger(io.Discard, "error"))
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Listen(); err != nil {
			b.Fatal(err)
		}
		_ = start
		m.Close()
	}
}
