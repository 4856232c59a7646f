package fabric

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/logging"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/providers/fab"
	"github.com/hyperledger/fabric-sdk-go/pkg/core/config"
	fabimpl "github.com/hyperledger/fabric-sdk-go/pkg/fab"
	"go.yaml.in/yaml/v3"
)

// TestPatchProfileSDK checks the fixes as the SDK itself reads them from
// the patched profile.
func TestPatchProfileSDK(t *testing.T) {
	raw, err := os.ReadFile("testdata/profile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, info, err := patchProfile(raw, "medshare", "")
	if err != nil {
		t.Fatal(err)
	}
	if info != (profileInfo{org: "hospital", mspID: "HospitalMSP"}) {
		t.Errorf("info = %+v", info)
	}
	backends, err := config.FromRaw(out, "yaml")()
	if err != nil {
		t.Fatal(err)
	}
	if got := logging.GetLevel("fabsdk"); got != logging.WARNING {
		t.Errorf("SDK log level %v, want WARNING", got)
	}
	ec, err := fabimpl.ConfigFromBackend(backends...)
	if err != nil {
		t.Fatal(err)
	}
	ch := ec.ChannelConfig("medshare")
	if diff := cmp.Diff([]string{"orderer0.example", "orderer1.example"}, ch.Orderers); diff != "" {
		t.Errorf("channel orderers (-want +got):\n%s", diff)
	}
	if n := len(ec.ChannelOrderers("medshare")); n != 2 {
		t.Errorf("SDK resolves %d channel orderers, want 2", n)
	}
	d := ch.Policies.Discovery
	if d.MaxTargets != 1 || d.RetryOpts.Attempts != 4 || d.RetryOpts.InitialBackoff != 500*time.Millisecond {
		t.Errorf("discovery policy = %+v, want maxTargets 1 and 4 attempts from 500ms", d)
	}
	if q := ch.Policies.QueryChannelConfig.RetryOpts; q.Attempts != 4 {
		t.Errorf("queryChannelConfig retries = %+v, want 4 attempts", q)
	}
	if got := ec.Timeout(fab.PeerConnection); got != 3*time.Second {
		t.Errorf("peer connection timeout %v, want 3s", got)
	}
}

func TestPatchProfile(t *testing.T) {
	// Each row's profile is base plus its own lines; a row without a client
	// section gets a plain one.
	const base = `
organizations:
  hospital: {mspid: HospitalMSP, cryptoPath: "/c/{username}"}
  insurer: {mspid: InsurerMSP}
orderers: {o2: {url: "grpcs://b:1"}, o1: {url: "grpcs://a:1"}}
peers: {p1: {url: "grpcs://a:2"}, p2: {url: "grpcs://b:2"}}
`
	tests := []struct {
		note    string
		profile string
		org     string
		path    string // dotted path into the patched profile
		want    any
	}{
		{"lists every orderer, sorted, when the channel names none", base, "", "channels.ch.orderers", []any{"o1", "o2"}},
		{"keeps the orderers the channel names", base + "channels: {ch: {orderers: [o2]}}", "", "channels.ch.orderers", []any{"o2"}},
		{"treats an empty orderer list as none", base + "channels: {ch: {orderers: []}}", "", "channels.ch.orderers", []any{"o1", "o2"}},
		{"lists every peer when the channel names none", base, "", "channels.ch.peers.p2.endorsingPeer", true},
		{"keeps the peers the channel names", base + "channels: {ch: {peers: {p1: {}}}}", "", "channels.ch.peers.p2", nil},
		{"discovery asks one peer", base + "channels: {ch: {policies: {discovery: {maxTargets: 5}}}}", "", "channels.ch.policies.discovery.maxTargets", 1},
		{"discovery retries by default", base, "", "channels.ch.policies.discovery.retryOpts.attempts", 4},
		{"keeps the profile's discovery retries", base + "channels: {ch: {policies: {discovery: {retryOpts: {attempts: 9}}}}}", "", "channels.ch.policies.discovery.retryOpts.attempts", 9},
		{"peer dials time out after 3s", base + "client: {organization: hospital, peer: {timeout: {connection: 30s}}}", "", "client.peer.timeout.connection", "3s"},
		{"the SDK logs at WARNING", base + "client: {organization: hospital, logging: {level: debug}}", "", "client.logging.level", "WARNING"},
		{"a configured org wins", base, "insurer", "client.organization", "insurer"},
		{"an org without cryptoPath gets a placeholder", base, "", "organizations.insurer.cryptoPath", "/dev/null/{username}"},
		{"keeps an org's cryptoPath", base, "", "organizations.hospital.cryptoPath", "/c/{username}"},
		{"leaves other settings alone", base + "client: {organization: hospital, tlsCerts: {systemCertPool: false}}", "", "client.tlsCerts.systemCertPool", false},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.note, " ", "_"), func(t *testing.T) {
			profile := tt.profile
			if !strings.Contains(profile, "client:") {
				profile += "\nclient: {organization: hospital}\n"
			}
			out, _, err := patchProfile([]byte(profile), "ch", tt.org)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, lookup(doc, tt.path)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.path, diff)
			}
		})
	}
}

func TestPatchProfileErrors(t *testing.T) {
	tests := []struct {
		note    string
		profile string
		org     string
		want    string
	}{
		{"not YAML", "client: [", "", "parse"},
		{"empty", "", "", "empty"},
		{"no client org", "organizations: {hospital: {}}", "", "no client organization"},
		{"unknown org", "client: {organization: lab}\norganizations: {hospital: {}}", "", `no organization "lab"`},
		{"no orderer anywhere", "client: {organization: h}\norganizations: {h: {}}\npeers: {p: {}}", "", "no orderers"},
		{"no peer anywhere", "client: {organization: h}\norganizations: {h: {}}\norderers: {o: {}}", "", "no peers"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.note, " ", "_"), func(t *testing.T) {
			_, _, err := patchProfile([]byte(tt.profile), "ch", tt.org)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// lookup follows a dotted path through nested maps; nil when absent.
func lookup(doc map[string]any, path string) any {
	var cur any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}
