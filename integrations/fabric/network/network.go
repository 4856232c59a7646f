// Package network runs medshare's local Hyperledger Fabric network for tests:
// one etcdraft orderer, one peer each for HospitalMSP ("hospital") and
// InsurerMSP ("insurer"), channel "medshare" and the medshare chaincode as a
// service, all native processes on 127.0.0.1 (no docker).
//
// The work is done by network.sh beside this file (also behind `make
// fabric-up`); this package calls it and reads what it wrote. Go runs test
// packages in parallel processes, so several may call Ensure at once: the
// script serialises them with a file lock and the second one reuses the
// network the first started.
package network

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Env describes a running network. Paths are absolute.
type Env struct {
	Dir       string          `json:"dir"`       // state directory (.state)
	Profile   string          `json:"profile"`   // fabric-sdk-go connection profile (YAML)
	Channel   string          `json:"channel"`   // "medshare"
	Chaincode string          `json:"chaincode"` // "medshare"
	MSPID     string          `json:"mspid"`     // client org: "HospitalMSP"
	CertPath  string          `json:"certPath"`  // hospital User1 signing certificate (PEM)
	KeyPath   string          `json:"keyPath"`   // its private key (PEM)
	BinDir    string          `json:"binDir"`    // peer, orderer, configtxgen, cryptogen, osnadmin, medshare-chaincode
	Peers     map[string]Peer `json:"peers"`     // keyed "hospital", "insurer"

	script string // network.sh
}

// Peer is one org's peer and the admin identity that manages it.
type Peer struct {
	Address     string `json:"address"`     // host:port (TLS)
	MSPID       string `json:"mspid"`       // org MSP id
	MSPDir      string `json:"mspDir"`      // the org admin's MSP directory
	TLSRootCert string `json:"tlsRootCert"` // the org's TLS CA certificate (PEM)
	ConfigDir   string `json:"configDir"`   // FABRIC_CFG_PATH for the peer CLI (core.yaml)
}

// Timeouts for the script's commands. The first Ensure on a fresh machine
// builds the Fabric binaries (1-2 minutes on two cores) and may wait behind
// another process's bring-up.
const (
	upTimeout   = 20 * time.Minute
	peerTimeout = 3 * time.Minute
	cliTimeout  = time.Minute
)

// Ensure returns a ready network, starting it (and building what is
// missing) if it is not already healthy; it fails tb if it can't.
//
// The calling process holds the network while it runs. A network that was
// not healthy before some Ensure call started it is taken down about a
// second after the last process holding it exits, so every test package of
// one `go test ./...` shares one network and none is left behind. A network
// started outside tests (make fabric-up) stays up, and so does any network
// started with MEDSHARE_FABRIC_KEEP=1.
func Ensure(tb testing.TB) *Env {
	tb.Helper()
	script := scriptPath(tb)
	args := []string{"up"}
	if os.Getenv("MEDSHARE_FABRIC_KEEP") != "1" {
		args = append(args, "--lease", strconv.Itoa(os.Getpid()))
	}
	start := time.Now()
	out := run(tb, script, upTimeout, args...)
	tb.Logf("fabric network %s (%v):\n%s", result(out), time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	e, err := load(filepath.Join(filepath.Dir(script), ".state", "network.json"))
	if err != nil {
		tb.Fatalf("fabric network: %v", err)
	}
	e.script = script
	return e
}

// StopPeer stops org's peer ("hospital" or "insurer").
func (e *Env) StopPeer(tb testing.TB, org string) {
	tb.Helper()
	run(tb, e.script, peerTimeout, "stop-peer", org)
}

// StartPeer starts org's peer again and waits until it is healthy, knows the
// other org's peer and answers chaincode queries.
func (e *Env) StartPeer(tb testing.TB, org string) {
	tb.Helper()
	run(tb, e.script, peerTimeout, "start-peer", org)
}

// PeerQuery evaluates a chaincode query on org's peer with the peer CLI as
// that org's admin, bypassing medshare entirely, and returns the payload.
// args are the contract operation and its JSON argument, e.g.
// PeerQuery(tb, "insurer", "ListOrgs", "{}").
func (e *Env) PeerQuery(tb testing.TB, org string, args ...string) []byte {
	tb.Helper()
	ctor, err := json.Marshal(struct{ Args []string }{args})
	if err != nil {
		tb.Fatal(err)
	}
	out, err := e.peerCommand(org, "chaincode", "query", "-C", e.Channel, "-n", e.Chaincode, "-c", string(ctor))
	if err != nil {
		tb.Fatalf("peer chaincode query on %s %s: %v", org, ctor, err)
	}
	return bytes.TrimSuffix(out, []byte("\n"))
}

// peerCommand runs the peer CLI with args as org's admin against org's
// peer, with a one-minute limit, and returns its standard output. Errors
// include the CLI's standard error.
func (e *Env) peerCommand(org string, args ...string) ([]byte, error) {
	p, ok := e.Peers[org]
	if !ok {
		return nil, fmt.Errorf("unknown org %q (want hospital or insurer)", org)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(e.BinDir, "peer"), args...)
	cmd.Env = append(cleanEnv(),
		"FABRIC_CFG_PATH="+p.ConfigDir,
		"FABRIC_LOGGING_SPEC=WARNING",
		"CORE_PEER_LOCALMSPID="+p.MSPID,
		"CORE_PEER_MSPCONFIGPATH="+p.MSPDir,
		"CORE_PEER_ADDRESS="+p.Address,
		"CORE_PEER_TLS_ENABLED=true",
		"CORE_PEER_TLS_ROOTCERT_FILE="+p.TLSRootCert,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// scriptPath finds network.sh next to this source file.
func scriptPath(tb testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("fabric network: cannot locate network.sh")
	}
	return filepath.Join(filepath.Dir(file), "network.sh")
}

// run runs network.sh and fails tb with its output if it fails.
func run(tb testing.TB, script string, timeout time.Duration, args ...string) string {
	tb.Helper()
	out, err := command(script, timeout, args...)
	if err != nil {
		tb.Fatalf("network.sh %s: %v\n%s\n(logs: %s)", strings.Join(args, " "), err, out,
			filepath.Join(filepath.Dir(script), ".state", "logs"))
	}
	return out
}

// command runs network.sh with a time limit and returns its combined output.
func command(script string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return string(out), err
}

// cleanEnv is the process environment without variables Fabric would read
// as configuration (CORE_*, ORDERER_*, FABRIC_*).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CORE_") && !strings.HasPrefix(kv, "ORDERER_") && !strings.HasPrefix(kv, "FABRIC_") {
			env = append(env, kv)
		}
	}
	return env
}

// load reads the network description network.sh wrote.
func load(path string) (*Env, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read network description: %w", err)
	}
	var e Env
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &e, nil
}

// result returns the last line of up's output: "started" or "reused".
func result(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
