//go:build linux

package residency

import (
	"strings"
	"testing"
)

func TestParseFileRSS(t *testing.T) {
	const status = "Name:\tmedshare\nVmRSS:\t  1700000 kB\nRssAnon:\t   55296 kB\nRssFile:\t 1644544 kB\nRssShmem:\t       4 kB\n"
	got, err := parseFileRSS([]byte(status))
	if want := int64(1644544+4) << 10; err != nil || got != want {
		t.Errorf("parseFileRSS = %d, %v; want %d", got, err, want)
	}
	for name, bad := range map[string]string{
		"Missing":   "Name:\tx\nRssFile:\t1 kB\n",
		"NoUnit":    "RssFile:\t1\nRssShmem:\t0 kB\n",
		"NotNumber": "RssFile:\tx kB\nRssShmem:\t0 kB\n",
	} {
		if _, err := parseFileRSS([]byte(bad)); err == nil {
			t.Errorf("%s: parseFileRSS(%q) succeeded", name, bad)
		}
	}
}

func TestMappedExtent(t *testing.T) {
	const maps = `00400000-00c00000 r-xp 00000000 fd:01 100 /usr/bin/medshare
c000000000-c004000000 rw-p 00000000 00:00 0
7f0000000000-7f0000100000 r--s 00000000 fd:01 200 /data/records.db
7f0000100000-7f0000300000 r--s 00100000 fd:01 200 /data/records.db
7f0000300000-7f0000400000 r--s 00000000 fd:01 300 /data/ledger.db
7f0000400000-7f0000500000 rw-p 00000000 00:00 0
7f0000500000-7f0000600000 r--p 00000000 fd:01 400 /data/private.db
7f0000600000-7f0000700000 r--s 00001000 fd:01 500 /data/offset.db
`
	for _, tc := range []struct {
		name string
		addr uintptr
		want uintptr // 0: an error
	}{
		{"SplitArea", 0x7f0000000000, 0x300000},
		{"OwnFileOnly", 0x7f0000300000, 0x100000},
		{"Anonymous", 0x7f0000400000, 0},
		{"Private", 0x7f0000500000, 0},
		{"NonZeroOffset", 0x7f0000600000, 0},
		{"InsideArea", 0x7f0000001000, 0},
		{"Unmapped", 0x7f0000800000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mappedExtent(strings.NewReader(maps), tc.addr)
			switch {
			case tc.want == 0 && err == nil:
				t.Errorf("mappedExtent(%#x) = %#x, want an error", tc.addr, got)
			case tc.want != 0 && (err != nil || got != tc.want):
				t.Errorf("mappedExtent(%#x) = %#x, %v; want %#x", tc.addr, got, err, tc.want)
			}
		})
	}
}
