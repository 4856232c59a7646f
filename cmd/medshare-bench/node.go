package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/medshare/medshare/integrations/jwt"
)

// The dev issuer's name and the audience, as cmd/medshare defines them
// (package main cannot be imported; these are part of its documented CLI
// behaviour: `medshare token` mints exactly such tokens).
const (
	devIssuer = "medshare-dev"
	audience  = "medshare"
)

// node is a real medshare server: the bin/medshare binary serving a data
// dir on a loopback port, as a child process.
type node struct {
	bin, data string
	env       []string
	cmd       *exec.Cmd
	url       string
	log       *os.File
	exited    chan error
	stopped   bool

	// Startup is the time from exec to the first 200 from /readyz;
	// SelfStartup is what the node logs as its own start-up (Open+Listen).
	Startup, SelfStartup time.Duration
}

// startNode execs `bin serve` on 127.0.0.1:0 over data and waits until it
// is ready. MEDSHARE_* variables of the caller's environment are dropped,
// so the node runs the embedded defaults unless env sets them.
func startNode(ctx context.Context, bin, data string, env []string) (*node, error) {
	logf, err := os.OpenFile(data+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	n := &node{bin: bin, data: data, env: env, log: logf, exited: make(chan error, 1)}
	// The per-actor limits stay on, so their cost is measured, but so high
	// that no scenario meets them: a bench sends far more reads, denials
	// and claims per actor than anyone should.
	n.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", data, "--log-level", "info",
		"--break-glass-per-hour", "1000000000", "--refusals-per-hour", "1000000000", "--claim-attempts", "1000000000",
		"--max-conns-per-ip", "0") // the load generator is one IP with up to 256 connections
	n.cmd.Env = append(cleanEnv(), env...)
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	start := time.Now()
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	urls := make(chan serving, 1)
	go n.readLog(stderr, urls)
	go func() { n.exited <- n.cmd.Wait() }()
	select {
	case s := <-urls:
		n.url, n.SelfStartup = s.URL, s.startup
	case err := <-n.exited:
		logf.Close()
		return nil, fmt.Errorf("medshare exited before serving (%v): see %s", err, logf.Name())
	case <-time.After(5 * time.Minute):
		n.kill()
		return nil, fmt.Errorf("medshare did not serve within 5 minutes: see %s", logf.Name())
	}
	if err := n.waitReady(ctx); err != nil {
		n.kill()
		return nil, err
	}
	n.Startup = time.Since(start)
	return n, nil
}

// serving is the node's "medshare serving" log line.
type serving struct {
	Msg     string `json:"msg"`
	URL     string `json:"url"`
	Startup string `json:"startup"`
	startup time.Duration
}

// readLog copies the node's log to its file and reports the serving line.
func (n *node) readLog(r io.Reader, urls chan<- serving) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		n.log.Write(append(line, '\n'))
		if sent {
			continue
		}
		var s serving
		if json.Unmarshal(line, &s) == nil && s.Msg == "medshare serving" && s.URL != "" {
			s.startup, _ = time.ParseDuration(s.Startup)
			urls <- s
			sent = true
		}
	}
}

// waitReady polls /readyz until it answers 200.
func (n *node) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("medshare at %s not ready within a minute", n.url)
}

// running reports whether the node has been started and not stopped.
func (n *node) running() bool { return n != nil && !n.stopped }

// stop sends SIGTERM and waits for a clean exit (SIGKILL after 30 s).
func (n *node) stop() error {
	n.stopped = true
	defer n.log.Close()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.exited:
		return err
	case <-time.After(30 * time.Second):
		n.kill()
		return errors.New("medshare did not stop within 30 s; killed")
	}
}

func (n *node) kill() {
	n.stopped = true
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// issuer returns a token issuer over the node's dev key, as `medshare
// token --data` does.
func (n *node) issuer() (*jwt.Issuer, error) {
	key, err := jwt.LoadOrCreateKey(filepath.Join(n.data, "keys", "dev-issuer.pem"))
	if err != nil {
		return nil, err
	}
	return jwt.NewIssuer(key, devIssuer, audience)
}

// memory is a process's resident memory from /proc/<pid>/status, in KiB:
// RSS (VmRSS) is the sum of Anon (RssAnon: heap, stacks, other private
// memory), File (RssFile: file-backed pages mapped in, bbolt's mmap among
// them; page cache the kernel reclaims) and Shmem (RssShmem: mapped tmpfs
// or shared memory, nonzero when the data dir is on a tmpfs). HWM (VmHWM)
// is the peak RSS.
type memory struct {
	RSS, HWM, Anon, File, Shmem int64
}

// mem reads the node's memory figures.
func (n *node) mem() (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = kib
		case "VmHWM":
			m.HWM = kib
		case "RssAnon":
			m.Anon = kib
		case "RssFile":
			m.File = kib
		case "RssShmem":
			m.Shmem = kib
		}
	}
	return m, nil
}

// cleanEnv is the environment without MEDSHARE_* variables.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MEDSHARE_") {
			out = append(out, kv)
		}
	}
	return out
}

// copyTree copies the regular files and directories under src to dst,
// keeping their permission bits (key files stay 0600).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		return copyFile(p, to, info.Mode().Perm())
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
