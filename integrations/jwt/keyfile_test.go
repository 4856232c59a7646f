package jwt

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/medshare/medshare/consent"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	path := filepath.Join(dir, "dev-issuer.pem")

	created, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		for _, c := range []struct {
			note string
			path string
			want os.FileMode
		}{
			{note: "the key file is private", path: path, want: 0o600},
			{note: "the key directory is private", path: dir, want: 0o700},
		} {
			fi, err := os.Stat(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != c.want {
				t.Errorf("%s: mode %04o, want %04o", c.note, got, c.want)
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----\n") {
			t.Errorf("the key file is not PKCS#8 PEM:\n%s", data)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("the key directory holds %d entries, want only the key (no temp files)", len(entries))
		}
	})
	t.Run("OK", func(t *testing.T) {
		again, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Equal(created) {
			t.Error("reloading returned a different key")
		}
	})
	t.Run("ErrGroupReadable", func(t *testing.T) {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(path, 0o600)
		_, err := LoadOrCreateKey(path)
		if code := consent.ErrorCode(err); code != consent.EINVALID || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("a 0644 key file: got %v, want %s telling to chmod 600", err, consent.EINVALID)
		}
	})
	t.Run("ErrNotAKey", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.pem")
		if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey(bad); consent.ErrorCode(err) != consent.EINVALID {
			t.Errorf("a file without a key: got %v, want %s", err, consent.EINVALID)
		}
	})
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "node.pem")
	const n = 8
	keys := make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k
		})
	}
	wg.Wait()
	first, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if k == nil || !first.Equal(k) {
			t.Errorf("caller %d got a different key than the one on disk", i)
		}
	}
}
