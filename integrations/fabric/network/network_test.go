//go:build fabric

package network

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNetwork checks the network end to end with the peer CLI only: both
// peers serve the chaincode, a RegisterOrg endorsed by both orgs commits, and
// both peers then return the new org.
func TestNetwork(t *testing.T) {
	e := Ensure(t)

	for _, org := range []string{"hospital", "insurer"} {
		var orgs []json.RawMessage
		if out := e.PeerQuery(t, org, "ListOrgs", "{}"); json.Unmarshal(out, &orgs) != nil {
			t.Fatalf("ListOrgs on %s = %q; want a JSON array", org, out)
		}
	}

	id := fmt.Sprintf("net-test-%d", time.Now().UnixNano())
	mustInvoke(t, e, "RegisterOrg", `{"id":"`+id+`","name":"Network Test","type":"clinic"}`)

	for _, org := range []string{"hospital", "insurer"} {
		var got struct{ ID, Type, Status string }
		out := e.PeerQuery(t, org, "GetOrg", `{"id":"`+id+`"}`)
		if err := json.Unmarshal(out, &got); err != nil || got.ID != id || got.Type != "clinic" || got.Status != "active" {
			t.Errorf("GetOrg on %s = %s; want %s, an active clinic", org, out, id)
		}
	}
}

// TestNetworkError checks that a contract error reaches the client as the
// chaincode's {"code","message"} payload.
func TestNetworkError(t *testing.T) {
	e := Ensure(t)
	_, err := e.peerCommand("insurer", "chaincode", "query", "-C", e.Channel, "-n", e.Chaincode,
		"-c", `{"Args":["GetOrg","{\"id\":\"no-such-org\"}"]}`)
	if err == nil || !strings.Contains(err.Error(), `\"code\":\"not_found\"`) {
		t.Errorf("GetOrg of an unknown org: err = %v; want a not_found error payload", err)
	}
}

// mustInvoke submits a transaction endorsed by both peers with the peer CLI
// as the hospital admin, and waits until it commits.
func mustInvoke(tb testing.TB, e *Env, op, arg string) {
	tb.Helper()
	ctor, err := json.Marshal(struct{ Args []string }{[]string{op, arg}})
	if err != nil {
		tb.Fatal(err)
	}
	ordererCA := filepath.Join(e.Dir, "crypto/ordererOrganizations/medshare.test/tlsca/tlsca.medshare.test-cert.pem")
	args := []string{"chaincode", "invoke", "-o", "127.0.0.1:7050", "--tls", "--cafile", ordererCA,
		"-C", e.Channel, "-n", e.Chaincode, "-c", string(ctor), "--waitForEvent", "--waitForEventTimeout", "30s"}
	for _, org := range []string{"hospital", "insurer"} {
		args = append(args, "--peerAddresses", e.Peers[org].Address, "--tlsRootCertFiles", e.Peers[org].TLSRootCert)
	}
	if out, err := e.peerCommand("hospital", args...); err != nil {
		tb.Fatalf("invoke %s: %v\n%s", op, err, out)
	}
}
