//go:build fabric

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/fabric/network"
	"github.com/medshare/medshare/integrations/mongo/mongotest"
)

// fabricConfig is a node on the local Fabric network with a MongoDB-wire
// store (FerretDB in-process).
func fabricConfig(t *testing.T, env *network.Env) Config {
	cfg := fabricLedgerConfig(t.TempDir(), env)
	cfg.MongoURI = mongotest.StartFerretDB(t)
	return cfg
}

// fabricLedgerConfig is a node in dir on the local network, as the
// hospital org's client (bolt store unless MongoURI is set after).
func fabricLedgerConfig(dir string, env *network.Env) Config {
	cfg := testConfig(dir)
	cfg.Ledger = "fabric"
	cfg.FabricConf, cfg.FabricChannel, cfg.FabricChaincode = env.Profile, env.Channel, env.Chaincode
	cfg.FabricMSPID, cfg.FabricCert, cfg.FabricKey, cfg.FabricOrg = env.MSPID, env.CertPath, env.KeyPath, "hospital"
	return cfg
}

// runNS returns a fresh suffix for org and patient ids: the Fabric ledger
// outlives test runs.
func runNS() string { return fmt.Sprintf("-t%d", time.Now().UnixNano()%1_000_000_000) }

// waitAnchored polls the patient's access log until no entry is pending.
func waitAnchored(t *testing.T, j *journeys) []accessEntry {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := j.expect(context.Background(), 200, "GET", "/v1/access-log?limit=1000", patient7, nil)
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Entries []accessEntry }
		if err := r.JSON(&page); err != nil {
			t.Fatal(err)
		}
		pending := 0
		for _, e := range page.Entries {
			if e.Ledger.Status != "anchored" {
				pending++
			}
		}
		if pending == 0 && len(page.Entries) > 0 {
			return page.Entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d access entries still pending after 60 s", pending, len(page.Entries))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type accessEntry struct {
	ID, Decision string
	Ledger       struct {
		Status, Tx string
		Block      uint64
	}
}

// TestJourneysFabric walks the three journeys with Fabric as the ledger and
// checks the results on the peers with the peer CLI, not through medshare.
func TestJourneysFabric(t *testing.T) {
	env := network.Ensure(t)
	m := MustStart(t, fabricConfig(t, env))
	j := newJourneys(t, m)
	j.ns = runNS()
	if err := j.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	entries := waitAnchored(t, j)
	// Independent checks on the insurer's peer.
	var c struct{ Status string }
	if err := json.Unmarshal(env.PeerQuery(t, "insurer", "GetConsent", `{"id":"`+j.consentB+`"}`), &c); err != nil || c.Status != "revoked" {
		t.Fatalf("peer sees consent %s as %q (%v)", j.consentB, c.Status, err)
	}
	// The peers hold each entry sealed: nothing but its id, time and
	// pairwise reference in clear; the node's pepper opens it to what the
	// node logged.
	for _, e := range entries[:min(len(entries), 10)] {
		out := env.PeerQuery(t, "hospital", "GetAccess", `{"id":"`+e.ID+`"}`)
		var onPeer consent.AccessEntry
		if err := json.Unmarshal(out, &onPeer); err != nil || onPeer.ID != e.ID || onPeer.Sealed == "" || onPeer.Decision != "" || onPeer.Org != "" {
			t.Fatalf("peer copy of access entry %s is not sealed: %s (%v)", e.ID, out, err)
		}
		opened, err := m.Service.Refs.OpenEntry(onPeer)
		if err != nil || opened.Decision != e.Decision {
			t.Fatalf("peer copy of access entry %s opens to %+v (%v), want decision %s", e.ID, opened, err, e.Decision)
		}
	}
}

// TestPeerRestartLosesNothing stops the hospital peer while reads go on:
// reads keep being served (entries wait in the outbox) and every entry is
// anchored after the peer returns.
func TestPeerRestartLosesNothing(t *testing.T) {
	env := network.Ensure(t)
	m := MustStart(t, fabricConfig(t, env))
	j := setupOrgsNS(t, m, runNS())
	ctx := context.Background()
	content := `{"resourceType":"Observation","status":"final"}`
	r, err := j.expect(ctx, 201, "POST", "/v1/records", drAsh, map[string]any{"patient": j.n("p-7"), "category": "lab", "contentType": "application/fhir+json", "content": content})
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ ID string }
	if err := r.JSON(&rec); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	read := func(n int) {
		for range n {
			r, err := j.expect(ctx, 200, "GET", "/v1/records/"+rec.ID, drAsh, nil, treat...)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acked[r.Header.Get("X-Access-Id")] = true
			mu.Unlock()
		}
	}
	read(20)
	env.StopPeer(t, "hospital")
	read(20) // served while the peer is down: the author org reads from the store, logs to the outbox
	env.StartPeer(t, "hospital")
	read(20)
	entries := waitAnchored(t, j)
	found := 0
	for _, e := range entries {
		if acked[e.ID] {
			found++
		}
	}
	t.Logf("peer restart: %d reads acknowledged, %d anchored entries found", len(acked), found)
	if found != len(acked) {
		t.Fatalf("lost access entries: acknowledged %d, anchored %d", len(acked), found)
	}
}
