package localledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
)

// Environment of the helper process: its working directory (holding
// node.key; it creates ledger.db) and how many goroutines submit.
const (
	helperDirEnv     = "LOCALLEDGER_HELPER_DIR"
	helperWorkersEnv = "LOCALLEDGER_HELPER_WORKERS"
	helperPerWorker  = 5000 // far beyond any kill point, so the kill lands mid-burst
)

// TestHelperProcess is the child of TestKill9, not a test: it opens a ledger
// and registers organizations from several goroutines, printing each id only
// after Submit acknowledged it, until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	der, err := os.ReadFile(filepath.Join(dir, "node.key"))
	if err != nil {
		fail(err)
	}
	key, err := x509.ParseECPrivateKey(der)
	if err != nil {
		fail(err)
	}
	workers, err := strconv.Atoi(os.Getenv(helperWorkersEnv))
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	l, err := Open(ctx, Options{Path: filepath.Join(dir, "ledger.db"), Key: key})
	if err != nil {
		fail(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range helperPerWorker {
				id := fmt.Sprintf("org-%d-%d", w, i)
				args := fmt.Appendf(nil, `{"id":%q,"name":"Org","type":"clinic"}`, id)
				if _, _, err := l.Submit(ctx, consent.OpRegisterOrg, args); err != nil {
					fail(err)
				}
				fmt.Println(id) // one write per line: lines never interleave
			}
		})
	}
	wg.Wait()
	_ = l.Close()
	os.Exit(0)
}

// TestKill9 kills a process mid-burst with SIGKILL and checks that the
// ledger it leaves verifies and holds every acknowledged transaction.
func TestKill9(t *testing.T) {
	tests := []struct {
		note      string
		workers   int
		killAfter int
	}{
		{note: "early, few writers", workers: 4, killAfter: 50},
		{note: "later, more writers", workers: 8, killAfter: 150},
		{note: "late, many writers", workers: 16, killAfter: 400},
	}
	for _, tt := range tests {
		t.Run("OK", func(t *testing.T) {
			acked := runUntilKilled(t, tt.workers, tt.killAfter)
			rep, err := Verify(context.Background(), acked.path, &acked.key.PublicKey)
			if err != nil {
				t.Fatalf("%s: Verify after kill: %v", tt.note, err)
			}
			l := MustOpen(t, Options{Path: acked.path, Key: acked.key})
			orgs, err := consent.NewService(l).Orgs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			present := map[string]bool{}
			for _, o := range orgs {
				present[o.ID] = true
			}
			for _, id := range acked.ids {
				if !present[id] {
					t.Errorf("%s: acknowledged org %s lost", tt.note, id)
				}
			}
			t.Logf("%s: %d acknowledged, %d committed, %d blocks", tt.note, len(acked.ids), rep.Txs, rep.Blocks)
		})
	}
}

// killed is what a killed helper left behind.
type killed struct {
	path string
	key  *ecdsa.PrivateKey
	ids  []string // acknowledged org ids
}

// runUntilKilled runs the helper until it has acknowledged at least
// killAfter txs, kills it with SIGKILL and collects every id it printed.
func runUntilKilled(t *testing.T, workers, killAfter int) killed {
	t.Helper()
	dir := t.TempDir()
	key := MustKey(t)
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node.key"), der, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The deadline only bounds a hung child; nothing is timed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperWorkersEnv+"="+strconv.Itoa(workers))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	sent := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "org-") {
			ids = append(ids, line)
		}
		if !sent && len(ids) >= killAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			sent = true
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !sent || !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("helper was not killed mid-burst (acknowledged %d, err %v):\n%s", len(ids), err, stderr.String())
	}
	return killed{path: filepath.Join(dir, "ledger.db"), key: key, ids: ids}
}
