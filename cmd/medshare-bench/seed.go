package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medshare/medshare/integrations/jwt"
)

// recordsPerPatient is how many records each synthetic patient has.
const recordsPerPatient = 10

// patientID names synthetic patient p.
func patientID(p int) string { return fmt.Sprintf("pt-%06d", p) }

// Organizations every seeded node registers: hospital-a authors the
// records, hospital-b reads them under consent, clinic-c has no consent
// (denied reads, grant and revoke scenarios), insurer-x verifies claims.
var orgs = [][3]string{
	{"hospital-a", "Hospital A", "hospital"}, {"hospital-b", "Hospital B", "hospital"},
	{"clinic-c", "Clinic C", "clinic"}, {"insurer-x", "Insurer X", "insurer"},
	{"audit-office", "Audit Office", "auditor"},
}

// claimPatients is how many patients grant insurer-x an HPAYMT consent.
const claimPatients = 10

// tokenTTL outlives any bench run.
const tokenTTL = 12 * time.Hour

// seeded is a running node with its seed: the record ids in seed order
// (record i belongs to patient i/recordsPerPatient) and a token minter.
type seeded struct {
	*node
	name string
	ids  []string
	iss  *jwt.Issuer
	opts nodeOpts

	mu     sync.Mutex
	tokens map[string]string

	// SeedRate is uploads per second while seeding (c=16).
	SeedRate float64
}

// org is the id organization base has on this node.
func (s *seeded) org(base string) string { return base + s.opts.ns }

// token returns a cached token for sub; org is a base org id.
func (s *seeded) token(sub, role, org string) string {
	if org != "" {
		org = s.org(org)
	}
	k := sub + "|" + role + "|" + org
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[k]; ok {
		return t
	}
	t, err := s.iss.Mint(sub, role, org, tokenTTL)
	if err != nil {
		panic(err) // only with a bad constant role or org
	}
	s.tokens[k] = t
	return t
}

func (s *seeded) admin() string    { return s.token("admin-1", "admin", "") }
func (s *seeded) author() string   { return s.token("dr-ash", "provider", "hospital-a") }
func (s *seeded) reader() string   { return s.token("dr-bo", "provider", "hospital-b") }
func (s *seeded) stranger() string { return s.token("dr-cy", "provider", "clinic-c") }
func (s *seeded) insurer() string  { return s.token("claims-bot", "insurer", "insurer-x") }
func (s *seeded) patient(p int) string {
	return s.token(patientID(p), "patient", "")
}

// get, post and del build calls to the node.
func (s *seeded) get(path, token string, header ...string) call {
	return call{method: "GET", url: s.url + path, token: token, header: header}
}

func (s *seeded) post(path, token string, body []byte) call {
	return call{method: "POST", url: s.url + path, token: token, body: body}
}

func (s *seeded) del(path, token string) call {
	return call{method: "DELETE", url: s.url + path, token: token}
}

// nodeOpts vary how a node is built.
type nodeOpts struct {
	bin string   // binary; cfg.bin when empty
	env []string // extra environment (MEDSHARE_* for Fabric)
	ns  string   // suffix of every organization id, for ledgers that outlive a run
	// inPlace seeds in cfg.dir directly: for a node whose ledger lives
	// elsewhere (Fabric), copying its data dir would split it from its ledger.
	inPlace bool
}

// buildNode seeds a fresh node with n records and consents through the API,
// and returns it running from cfg.dir. Seeding runs under cfg.seedRoot (a
// tmpfs when available, where fsync is free); the stopped node's files are
// then copied to cfg.dir on disk and the node restarted there, so every
// measurement runs against the same disk as the baselines.
func buildNode(ctx context.Context, cfg *config, corp *corpus, name string, n int, opts nodeOpts) (*seeded, error) {
	if opts.bin == "" {
		opts.bin = cfg.bin
	}
	seedRoot := cfg.seedRoot
	if opts.inPlace {
		seedRoot = cfg.dir
	}
	seedDir := filepath.Join(seedRoot, name)
	nd, err := startNode(ctx, opts.bin, seedDir, opts.env)
	if err != nil {
		return nil, err
	}
	s := &seeded{node: nd, name: name, tokens: map[string]string{}, opts: opts}
	if s.iss, err = nd.issuer(); err != nil {
		nd.kill()
		return nil, err
	}
	if err := s.seed(ctx, corp, n); err != nil {
		nd.kill()
		return nil, fmt.Errorf("seed %s: %w", name, err)
	}
	if err := nd.stop(); err != nil {
		return nil, err
	}
	data := seedDir
	if seedRoot != cfg.dir {
		data = filepath.Join(cfg.dir, name)
		if err := copyTree(seedDir, data); err != nil {
			return nil, fmt.Errorf("copy %s to disk: %w", name, err)
		}
		if err := os.RemoveAll(seedDir); err != nil {
			return nil, err
		}
	}
	if s.node, err = startNode(ctx, opts.bin, data, opts.env); err != nil {
		return nil, err
	}
	return s, nil
}

// seed registers the orgs, uploads n records (c=16) and has every patient
// grant hospital-b TREAT access to all categories; the first claimPatients
// also grant insurer-x HPAYMT.
func (s *seeded) seed(ctx context.Context, corp *corpus, n int) error {
	for _, o := range orgs {
		body, _ := json.Marshal(map[string]string{"id": s.org(o[0]), "name": o[1], "type": o[2]})
		if _, err := s.post("/v1/orgs", s.admin(), body).expect(ctx, 201); err != nil {
			return err
		}
	}
	// Every patient registers with hospital-a (a consent with an empty
	// scope), which may then store their records.
	patients := (n + recordsPerPatient - 1) / recordsPerPatient
	if err := parallel(ctx, 16, patients, func(ctx context.Context, p int) error {
		body, _ := json.Marshal(map[string]any{
			"grantee": map[string]string{"org": s.org("hospital-a")}, "categories": []string{}, "purposes": []string{"TREAT"},
		})
		_, err := s.post("/v1/consents", s.patient(p), body).expect(ctx, 201)
		return err
	}); err != nil {
		return err
	}
	s.ids = make([]string, n)
	start := time.Now()
	if err := parallel(ctx, 16, n, func(ctx context.Context, i int) error {
		id, err := s.upload(ctx, corp, i)
		s.ids[i] = id
		return err
	}); err != nil {
		return err
	}
	s.SeedRate = float64(n) / time.Since(start).Seconds()
	return parallel(ctx, 16, patients, func(ctx context.Context, p int) error {
		if err := s.grant(ctx, p, "hospital-b", "TREAT"); err != nil {
			return err
		}
		if p < claimPatients {
			return s.grant(ctx, p, "insurer-x", "HPAYMT")
		}
		return nil
	})
}

// upload stores record i of corp for its patient and returns its id.
func (s *seeded) upload(ctx context.Context, corp *corpus, i int) (string, error) {
	body, err := s.post("/v1/records", s.author(), uploadJSON(corp, i)).expect(ctx, 201)
	if err != nil {
		return "", err
	}
	var out struct{ ID string }
	if err := json.Unmarshal(body, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// uploadJSON is the upload body of record i: medshare's API format, the
// FHIR Bundle sent as a JSON object.
func uploadJSON(corp *corpus, i int) []byte { return uploadJSONFor(corp, i, i/recordsPerPatient) }

// uploadJSONFor is uploadJSON with the record stored for patient p.
func uploadJSONFor(corp *corpus, i, p int) []byte {
	cat, content := corp.record(i)
	b, _ := json.Marshal(uploadBody{
		Patient: patientID(p), Category: cat,
		ContentType: "application/fhir+json", Content: content,
	})
	return b
}

// grant has patient p grant org (a base id) access to every category for
// purpose.
func (s *seeded) grant(ctx context.Context, p int, org, purpose string) error {
	_, err := s.grantID(ctx, p, org, purpose)
	return err
}

// grantID is grant returning the consent id.
func (s *seeded) grantID(ctx context.Context, p int, org, purpose string) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"grantee": map[string]string{"org": s.org(org)}, "categories": categories(), "purposes": []string{purpose},
	})
	out, err := s.post("/v1/consents", s.patient(p), body).expect(ctx, 201)
	if err != nil {
		return "", err
	}
	var c struct{ ID string }
	if err := json.Unmarshal(out, &c); err != nil {
		return "", err
	}
	return c.ID, nil
}

// parallel runs fn(i) for i in [0, n) on c workers; the first error stops it.
func parallel(ctx context.Context, c, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}
