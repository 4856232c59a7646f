package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// The production topology in docker-compose.yml can't be started here (no
// docker engine), so this test holds it to its invariants instead: what runs,
// which images at which versions, health, isolation, secrets and wiring. It
// loads the file the way `docker compose` does (compose-go, the library behind
// it), so a file docker would reject fails here too.

// composeRoles maps every service to its role. A service added to the compose
// file must be added here too.
var composeRoles = map[string]string{
	"ca-orderer":         "ca",
	"ca-hospital":        "ca",
	"ca-insurer":         "ca",
	"orderer0":           "orderer",
	"orderer1":           "orderer",
	"orderer2":           "orderer",
	"peer0-hospital":     "peer",
	"peer1-hospital":     "peer",
	"peer0-insurer":      "peer",
	"peer1-insurer":      "peer",
	"chaincode-hospital": "chaincode",
	"chaincode-insurer":  "chaincode",
	"mongo1":             "mongo",
	"mongo2":             "mongo",
	"mongo3":             "mongo",
	"medshare-hospital":  "medshare", // the only custodian: insurers run no medshare node
	"mongo-init":         "job",
	"fabric-ccpackage":   "job",
	"fabric-channel":     "job",
}

// custodianPepper is the one pseudonym-pepper secret of the network,
// mounted by every custodian (hospital) node and by nothing else.
const custodianPepper = "medshare_custodian_pepper"

// pulledImages are the image families pulled from a registry and the tag each
// must carry: an exact version within the supported minor.
var pulledImages = map[string]*regexp.Regexp{
	"hyperledger/fabric-orderer": regexp.MustCompile(`^2\.5\.\d+$`),
	"hyperledger/fabric-peer":    regexp.MustCompile(`^2\.5\.\d+$`),
	"hyperledger/fabric-tools":   regexp.MustCompile(`^2\.5\.\d+$`),
	"hyperledger/fabric-ca":      regexp.MustCompile(`^1\.5\.\d+$`),
	"mongo":                      regexp.MustCompile(`^7\.0\.\d+$`),
}

// builtImages are the images built from this repository, by Dockerfile.
var builtImages = map[string]string{
	"medshare/medshare":           "integrations/fabric/network/production/medshare.Dockerfile",
	"medshare/medshare-chaincode": "integrations/fabric/network/production/chaincode.Dockerfile",
}

// roleImages says which image family each role runs.
var roleImages = map[string]string{
	"ca":        "hyperledger/fabric-ca",
	"orderer":   "hyperledger/fabric-orderer",
	"peer":      "hyperledger/fabric-peer",
	"mongo":     "mongo",
	"chaincode": "medshare/medshare-chaincode",
	"medshare":  "medshare/medshare",
}

// medshareEnv are the settings every medshare service sets explicitly.
var medshareEnv = []string{
	"MEDSHARE_ADDR", "MEDSHARE_DATA", "MEDSHARE_MONGO_URI", "MEDSHARE_MONGO_DB",
	"MEDSHARE_LEDGER", "MEDSHARE_FABRIC_CONFIG", "MEDSHARE_JWKS_URL",
	"MEDSHARE_JWT_ISSUER", "MEDSHARE_POLICY_DIR", "MEDSHARE_RESTRICTED_CATEGORIES",
	"MEDSHARE_LOG_LEVEL", "MEDSHARE_FABRIC_CHANNEL", "MEDSHARE_FABRIC_CHAINCODE",
	"MEDSHARE_FABRIC_MSPID", "MEDSHARE_FABRIC_CERT", "MEDSHARE_FABRIC_KEY",
	"MEDSHARE_FABRIC_ORG",
}

// composeFixture is the loaded project and where its inputs live.
type composeFixture struct {
	project *types.Project
	root    string // repository root
	secrets string // MEDSHARE_SECRETS_DIR given to the loader
}

// mustLoadCompose loads docker-compose.yml from the repository root with a
// fixed environment (the operator's variables, never the test process's).
func mustLoadCompose(t *testing.T) composeFixture {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	secrets := t.TempDir()
	env := []string{
		"MEDSHARE_SECRETS_DIR=" + secrets,
		"MEDSHARE_JWKS_URL=https://idp.example/.well-known/jwks.json",
		"MEDSHARE_JWT_ISSUER=https://idp.example/",
		"MEDSHARE_HOSPITAL_MONGO_PASSWORD=hospital0secret",
		"MEDSHARE_INSURER_MONGO_PASSWORD=insurer0secret",
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(env),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return composeFixture{project: p, root: root, secrets: secrets}
}

// splitImage splits "repo:tag" (ignoring a registry port); tag is "" if absent.
func splitImage(image string) (repo, tag string) {
	image, _, _ = strings.Cut(image, "@")
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, ""
	}
	return image[:i], image[i+1:]
}

// envValue returns a service's environment value and whether it is set.
func envValue(s types.ServiceConfig, name string) (string, bool) {
	v, ok := s.Environment[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// inside reports whether path is dir or below it.
func inside(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func TestCompose(t *testing.T) {
	f := mustLoadCompose(t)
	p := f.project

	t.Run("ExpectedServices", func(t *testing.T) {
		for name := range composeRoles {
			if _, ok := p.Services[name]; !ok {
				t.Errorf("service %s missing", name)
			}
		}
		for name := range p.Services {
			if _, ok := composeRoles[name]; !ok {
				t.Errorf("service %s has no role in composeRoles: add it", name)
			}
		}
		count := map[string]int{}
		for name := range p.Services {
			count[composeRoles[name]]++
		}
		want := map[string]int{"ca": 3, "orderer": 3, "peer": 4, "mongo": 3, "chaincode": 2, "medshare": 1}
		for role, n := range want {
			if count[role] != n {
				t.Errorf("%d %s services, want %d", count[role], role, n)
			}
		}
	})

	t.Run("ImagesPinned", func(t *testing.T) {
		for name, s := range p.Services {
			repo, tag := splitImage(s.Image)
			switch {
			case s.Image == "":
				t.Errorf("%s: no image", name)
				continue
			case tag == "" || tag == "latest":
				t.Errorf("%s: image %q is not pinned to a version tag", name, s.Image)
				continue
			}
			if want, ok := roleImages[composeRoles[name]]; ok && repo != want {
				t.Errorf("%s: image %s, want the %s family", name, s.Image, want)
			}
			if s.Build != nil {
				if _, ok := builtImages[repo]; !ok {
					t.Errorf("%s: builds image %s, not one of ours", name, repo)
				}
				if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(tag) {
					t.Errorf("%s: built image tag %q is not a version", name, tag)
				}
				continue
			}
			re, ok := pulledImages[repo]
			if !ok {
				t.Errorf("%s: image %s is not an allowed official image", name, s.Image)
				continue
			}
			if !re.MatchString(tag) {
				t.Errorf("%s: image %s, want tag matching %s", name, s.Image, re)
			}
		}
	})

	t.Run("DockerfilesPinnedAndNonRoot", func(t *testing.T) {
		for _, path := range builtImages {
			b, err := os.ReadFile(filepath.Join(f.root, path))
			if err != nil {
				t.Fatal(err)
			}
			args := map[string]string{}
			var user string
			for _, line := range strings.Split(string(b), "\n") {
				fields := strings.Fields(line)
				if len(fields) < 2 {
					continue
				}
				switch strings.ToUpper(fields[0]) {
				case "ARG":
					if k, v, ok := strings.Cut(fields[1], "="); ok {
						args[k] = v
					}
				case "FROM":
					image := os.Expand(fields[1], func(k string) string { return args[k] })
					if _, tag := splitImage(image); tag == "" || strings.Contains(tag, "latest") ||
						!regexp.MustCompile(`\d+\.\d+\.\d+`).MatchString(tag) {
						t.Errorf("%s: base %s is not pinned to an exact version", path, image)
					}
				case "USER":
					user = fields[1]
				}
			}
			if user == "" || user == "root" || strings.HasPrefix(user, "0:") || user == "0" {
				t.Errorf("%s: final stage runs as %q, want a non-root USER", path, user)
			}
		}
	})

	t.Run("HealthchecksOnLongRunning", func(t *testing.T) {
		for name, s := range p.Services {
			if composeRoles[name] == "job" {
				if s.Restart != "no" {
					t.Errorf("%s: one-shot job has restart %q, want \"no\"", name, s.Restart)
				}
				continue
			}
			hc := s.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
				t.Errorf("%s: long-running service without a healthcheck", name)
			}
			if s.Restart == "" || s.Restart == "no" {
				t.Errorf("%s: long-running service without a restart policy", name)
			}
		}
	})

	t.Run("NoDockerSocket", func(t *testing.T) {
		for name, s := range p.Services {
			for _, v := range s.Volumes {
				if strings.Contains(v.Source, "docker.sock") || strings.Contains(v.Target, "docker.sock") {
					t.Errorf("%s: mounts the docker socket (%s:%s)", name, v.Source, v.Target)
				}
			}
			if s.Privileged {
				t.Errorf("%s: privileged", name)
			}
			if v, ok := envValue(s, "CORE_VM_ENDPOINT"); ok && v != "" {
				t.Errorf("%s: CORE_VM_ENDPOINT=%s, want no docker endpoint", name, v)
			}
		}
		// The peers' core.yaml must leave vm.endpoint empty, or the peer's Docker
		// health checker fails /healthz without a socket.
		b, err := os.ReadFile(filepath.Join(f.root, "integrations/fabric/network/production/peer/core.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^vm:\n(?:\s*#.*\n|\s*\n)*\s+endpoint: ""\s*$`).Match(b) {
			t.Error(`peer/core.yaml: vm.endpoint is not ""`)
		}
	})

	t.Run("OnlyMedsharePublishesPorts", func(t *testing.T) {
		for name, s := range p.Services {
			if s.NetworkMode == "host" {
				t.Errorf("%s: network_mode host", name)
			}
			if composeRoles[name] != "medshare" {
				if len(s.Ports) > 0 {
					t.Errorf("%s: publishes %v; only medshare services may", name, s.Ports)
				}
				continue
			}
			if len(s.Ports) != 1 || s.Ports[0].Target != 8080 {
				t.Errorf("%s: ports %+v, want exactly the API port 8080", name, s.Ports)
			}
		}
	})

	t.Run("NamedVolumesNetworksSecretsDeclared", func(t *testing.T) {
		for name, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeVolume {
					if _, ok := p.Volumes[v.Source]; !ok {
						t.Errorf("%s: volume %q is not declared", name, v.Source)
					}
				}
			}
			for n := range s.Networks {
				if _, ok := p.Networks[n]; !ok {
					t.Errorf("%s: network %q is not declared", name, n)
				}
			}
			for _, sec := range s.Secrets {
				if _, ok := p.Secrets[sec.Source]; !ok {
					t.Errorf("%s: secret %q is not declared", name, sec.Source)
				}
			}
		}
	})

	t.Run("StatefulServicesUseNamedVolumes", func(t *testing.T) {
		for name, s := range p.Services {
			switch composeRoles[name] {
			case "ca", "orderer", "peer", "mongo", "medshare":
			default:
				continue
			}
			if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
				return v.Type == types.VolumeTypeVolume && !v.ReadOnly
			}) {
				t.Errorf("%s: stateful service without a writable named volume", name)
			}
		}
	})

	t.Run("RepoFilesExist", func(t *testing.T) {
		for name, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind {
					continue
				}
				if !inside(f.root, v.Source) {
					t.Errorf("%s: bind mount %s is outside the repository", name, v.Source)
				} else if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount source: %v", name, err)
				}
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s is writable, want read-only", name, v.Source)
				}
			}
			if s.Build == nil {
				continue
			}
			if st, err := os.Stat(s.Build.Context); err != nil || !st.IsDir() {
				t.Errorf("%s: build context %s: not a directory (%v)", name, s.Build.Context, err)
			}
			df := s.Build.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(s.Build.Context, df)
			}
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: dockerfile: %v", name, err)
			}
			repo, _ := splitImage(s.Image)
			if want := filepath.Join(f.root, builtImages[repo]); df != want {
				t.Errorf("%s: builds %s from %s, want %s", name, repo, df, want)
			}
		}
	})

	t.Run("SecretsComeFromOutsideTheRepo", func(t *testing.T) {
		for name, sec := range p.Secrets {
			switch {
			case sec.Environment != "":
			case sec.File == "":
				t.Errorf("secret %s: neither file nor environment", name)
			case inside(f.root, sec.File):
				t.Errorf("secret %s: file %s is inside the repository", name, sec.File)
			case !inside(f.secrets, sec.File):
				t.Errorf("secret %s: file %s is not under MEDSHARE_SECRETS_DIR", name, sec.File)
			}
		}
	})

	t.Run("MedshareDependsOnHealthyMongoAndPeer", func(t *testing.T) {
		for name, s := range p.Services {
			if composeRoles[name] != "medshare" {
				continue
			}
			org := strings.TrimPrefix(name, "medshare-")
			var mongo, peer bool
			for dep, d := range s.DependsOn {
				healthy := d.Condition == types.ServiceConditionHealthy
				mongo = mongo || (healthy && composeRoles[dep] == "mongo")
				peer = peer || (healthy && composeRoles[dep] == "peer" && strings.HasSuffix(dep, "-"+org))
			}
			if !mongo {
				t.Errorf("%s: no depends_on a mongo member with condition service_healthy", name)
			}
			if !peer {
				t.Errorf("%s: no depends_on a %s peer with condition service_healthy", name, org)
			}
			for _, job := range []string{"mongo-init", "fabric-channel"} {
				if s.DependsOn[job].Condition != types.ServiceConditionCompletedSuccessfully {
					t.Errorf("%s: want depends_on %s with condition service_completed_successfully", name, job)
				}
			}
		}
	})

	t.Run("MedshareConfiguration", func(t *testing.T) {
		for name, s := range p.Services {
			if composeRoles[name] != "medshare" {
				continue
			}
			for _, k := range medshareEnv {
				if _, ok := envValue(s, k); !ok {
					t.Errorf("%s: %s not set", name, k)
				}
			}
			if v, _ := envValue(s, "MEDSHARE_LEDGER"); v != "fabric" {
				t.Errorf("%s: MEDSHARE_LEDGER=%q, want fabric", name, v)
			}
			uri, _ := envValue(s, "MEDSHARE_MONGO_URI")
			for _, want := range []string{"mongodb://", "mongo1:27017", "mongo2:27017", "mongo3:27017", "replicaSet=rs0"} {
				if !strings.Contains(uri, want) {
					t.Errorf("%s: MEDSHARE_MONGO_URI lacks %q", name, want)
				}
			}
			if !s.ReadOnly {
				t.Errorf("%s: root filesystem is writable, want read_only", name)
			}
			if u, _, _ := strings.Cut(s.User, ":"); u == "" || u == "0" || u == "root" {
				t.Errorf("%s: runs as user %q, want non-root", name, s.User)
			}
			profile, _ := envValue(s, "MEDSHARE_FABRIC_CONFIG")
			if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
				return v.Target == profile && v.Type == types.VolumeTypeBind
			}) {
				t.Errorf("%s: connection profile %s is not mounted", name, profile)
			}
			data, _ := envValue(s, "MEDSHARE_DATA")
			if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
				return v.Target == data && v.Type == types.VolumeTypeVolume
			}) {
				t.Errorf("%s: data dir %s is not a named volume", name, data)
			}
		}
	})

	t.Run("PepperOnlyWithCustodians", func(t *testing.T) {
		// The pseudonym pepper is held by data custodians only, one secret
		// for the whole network so a patient's pseudonyms agree between
		// custodian nodes; relying parties (insurers, auditors) hold none
		// and call a custodian's API instead.
		isPepper := func(sec types.ServiceSecretConfig) bool {
			return strings.Contains(sec.Source, "pepper") || strings.HasSuffix(sec.Target, "pepper.key")
		}
		for name, s := range p.Services {
			peppers := slices.Collect(func(yield func(types.ServiceSecretConfig) bool) {
				for _, sec := range s.Secrets {
					if isPepper(sec) && !yield(sec) {
						return
					}
				}
			})
			relyingParty := strings.Contains(name, "insurer") || strings.Contains(name, "auditor")
			if mspid, _ := envValue(s, "MEDSHARE_FABRIC_MSPID"); mspid == "InsurerMSP" {
				relyingParty = true
			}
			switch {
			case relyingParty && len(peppers) > 0:
				t.Errorf("%s: an insurer's or auditor's service mounts the pseudonym pepper %v", name, peppers)
			case composeRoles[name] == "medshare" && relyingParty:
				t.Errorf("%s: insurers are relying parties and run no medshare node: they call a custodian's API", name)
			case composeRoles[name] != "medshare" && len(peppers) > 0:
				t.Errorf("%s: mounts the pepper but is no medshare custodian node", name)
			case composeRoles[name] == "medshare":
				data, _ := envValue(s, "MEDSHARE_DATA")
				if len(peppers) != 1 || peppers[0].Source != custodianPepper || peppers[0].Target != data+"/keys/pepper.key" {
					t.Errorf("%s: pepper mounts %+v, want exactly %s at %s/keys/pepper.key (a node without it makes its own, and its pseudonyms disagree with the other custodians')",
						name, peppers, custodianPepper, data)
				}
			}
		}
		sec, ok := p.Secrets[custodianPepper]
		if !ok {
			t.Fatalf("secret %s is not declared", custodianPepper)
		}
		for _, org := range []string{"hospital", "insurer", "clinic"} {
			if strings.Contains(filepath.Base(filepath.Dir(sec.File)), org) {
				t.Errorf("secret %s comes from %s, an org's directory: it is network-wide", custodianPepper, sec.File)
			}
		}
		for name := range p.Secrets {
			if strings.Contains(name, "pepper") && name != custodianPepper {
				t.Errorf("secret %s: a second pepper; custodians share %s", name, custodianPepper)
			}
		}
	})

	t.Run("ChaincodeTLS", func(t *testing.T) {
		for name, s := range p.Services {
			if composeRoles[name] != "chaincode" {
				continue
			}
			if v, _ := envValue(s, "CHAINCODE_TLS_DISABLED"); v != "false" {
				t.Errorf("%s: CHAINCODE_TLS_DISABLED=%q, want false", name, v)
			}
			for _, k := range []string{"CHAINCODE_TLS_CERT", "CHAINCODE_TLS_KEY", "CHAINCODE_CLIENT_CA_CERT"} {
				path, _ := envValue(s, k)
				if !slices.ContainsFunc(s.Secrets, func(sec types.ServiceSecretConfig) bool {
					return path != "" && inside(sec.Target, path)
				}) {
					t.Errorf("%s: %s=%q is not inside a mounted secret", name, k, path)
				}
			}
			org := strings.TrimPrefix(name, "chaincode-")
			b, err := os.ReadFile(filepath.Join(f.root, "integrations/fabric/network/production/chaincode", org, "connection.json"))
			if err != nil {
				t.Fatal(err)
			}
			var conn struct {
				Address            string `json:"address"`
				TLSRequired        bool   `json:"tls_required"`
				ClientAuthRequired bool   `json:"client_auth_required"`
				ClientKey          string `json:"client_key"`
			}
			if err := json.Unmarshal(b, &conn); err != nil {
				t.Fatalf("%s connection.json: %v", org, err)
			}
			if conn.Address != name+":9999" || !conn.TLSRequired || !conn.ClientAuthRequired {
				t.Errorf("%s connection.json: %+v, want %s:9999 with TLS and client auth", org, conn, name)
			}
			if conn.ClientKey != "" {
				t.Errorf("%s connection.json: commits a client key; fabric-ccpackage fills it from secrets", org)
			}
		}
	})

	t.Run("NetworksSeparated", func(t *testing.T) {
		for _, n := range []string{"fabric", "data"} {
			if !p.Networks[n].Internal {
				t.Errorf("network %s is not internal", n)
			}
		}
		allowed := map[string][]string{
			"ca": {"fabric"}, "orderer": {"fabric"}, "peer": {"fabric"}, "chaincode": {"fabric"},
			"mongo": {"data"}, "medshare": {"edge", "fabric", "data"},
		}
		for name, s := range p.Services {
			want, ok := allowed[composeRoles[name]]
			if !ok {
				continue
			}
			for n := range s.Networks {
				if !slices.Contains(want, n) {
					t.Errorf("%s: on network %s, want only %v", name, n, want)
				}
			}
		}
	})
}
