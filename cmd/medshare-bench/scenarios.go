package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/medshare/medshare/policy"
)

// bench is one run: the corpus, the baseline server, the seeded nodes and
// the report the scenarios fill in.
type bench struct {
	cfg  *config
	corp *corpus
	base *baseline
	node *seeded // cfg.records records: the scenarios on one node
	rep  *report
	tg   *targets

	// nodes are all the nodes started, for cleanup.
	nodes []*seeded
	// scaled are the scale scenario's nodes: cfg.records and cfg.scale records.
	scaled [2]*seeded
}

// build builds a node (see buildNode) and keeps it for cleanup. Scenarios
// that compare two medshare nodes build both fresh: a node's history (its
// ledger grows with every access entry) changes its speed.
func (b *bench) build(ctx context.Context, name string, n int, opts nodeOpts) (*seeded, error) {
	s, err := buildNode(ctx, b.cfg, b.corp, name, n, opts)
	if err != nil {
		return nil, err
	}
	b.nodes = append(b.nodes, s)
	return s, nil
}

// reservedPatients are the last patients of a seed, kept out of random
// reads: 0 takes the grant/revoke scenarios, 1 and 2 the access-log one,
// so their logs hold exactly what those scenarios put there.
const reservedPatients = 3

// reserved returns the patient index of reservation k.
func (s *seeded) reserved(k int) int { return len(s.ids)/recordsPerPatient - 1 - k }

// fetchable is how many records (from the start of ids) random reads pick.
func (s *seeded) fetchable() int { return len(s.ids) - reservedPatients*recordsPerPatient }

// readOp reads a random record as token's holder for TREAT, expecting want.
func readOp(s *seeded, token string, want int) op {
	n := s.fetchable()
	return func(ctx context.Context, _, _ int) error {
		_, err := s.get("/v1/records/"+s.ids[rand.IntN(n)], token, "X-Purpose-Of-Use", "TREAT").expect(ctx, want)
		return err
	}
}

// bareOp reads a random record from the baseline: kind "bare" (a) or "floor" (b).
func bareOp(b *baseline, kind string) op {
	return func(ctx context.Context, _, _ int) error {
		_, err := call{method: "GET", url: b.url + "/" + kind + "/" + b.ids[rand.IntN(len(b.ids))]}.expect(ctx, 200)
		return err
	}
}

// fetch measures authorized reads at c=1 and c=32 against (a) and (b).
func (b *bench) fetch(ctx context.Context) error {
	rd := b.node.reader()
	r, err := interleave(ctx, b.cfg,
		plain("bare c1", 1, bareOp(b.base, "bare")),
		plain("floor c1", 1, bareOp(b.base, "floor")),
		plain("fetch c1", 1, readOp(b.node, rd, 200)),
		plain("bare c32", 32, bareOp(b.base, "bare")),
		plain("floor c32", 32, bareOp(b.base, "floor")),
		plain("fetch c32", 32, readOp(b.node, rd, 200)),
	)
	if err != nil {
		return err
	}
	x := r.ratio("fetch c1", "floor c1")
	b.tg.fetchC1.set(x, fmtRatio(x)+" of (b)")
	b.rep.add("authorized fetch (consent), ~4 KiB, c=1", fmtRatio(x)+" of (b)",
		fmt.Sprintf("(b) %s, p50 %s; (a) %s", fmtRate(r.rate("floor c1")), fmtDur(r.p50("floor c1")), fmtRate(r.rate("bare c1"))),
		fmt.Sprintf("%s, p50 %s, p99 %s; %s of (a)", fmtRate(r.rate("fetch c1")), fmtDur(r.p50("fetch c1")),
			fmtDur(r.quantile("fetch c1", 0.99)), fmtRatio(r.ratio("fetch c1", "bare c1"))), b.tg.fetchC1)
	b.rep.note("Noise: the per-repetition fetch c=1 / (b) ratios spread ±%.0f%% around their median in this run.", 100*r.spread("fetch c1", "floor c1"))
	x = r.ratio("fetch c32", "bare c32")
	b.tg.fetchC32.set(x, fmtRatio(x)+" of (a)")
	b.rep.add("authorized fetch (consent), ~4 KiB, c=32", fmtRatio(x)+" of (a)",
		fmt.Sprintf("(a) %s; (b) %s", fmtRate(r.rate("bare c32")), fmtRate(r.rate("floor c32"))),
		fmt.Sprintf("%s, p50 %s, p99 %s", fmtRate(r.rate("fetch c32")), fmtDur(r.p50("fetch c32")), fmtDur(r.quantile("fetch c32", 0.99))), b.tg.fetchC32)
	x = r.ratio("fetch c32", "fetch c1")
	b.tg.fetchScaleUp.set(x, fmtRatio(x))
	b.rep.add("fetch c=32 / fetch c=1 (group commit)", fmtRatio(x), fmt.Sprintf("(a) c=32/c=1 %s", fmtRatio(r.ratio("bare c32", "bare c1"))),
		fmt.Sprintf("%s vs %s", fmtRate(r.rate("fetch c32")), fmtRate(r.rate("fetch c1"))), b.tg.fetchScaleUp)
	return nil
}

// denied measures reads refused by the policy (and still logged).
func (b *bench) denied(ctx context.Context) error {
	r, err := interleave(ctx, b.cfg,
		plain("floor c1", 1, bareOp(b.base, "floor")),
		plain("denied c1", 1, readOp(b.node, b.node.stranger(), 404)),
	)
	if err != nil {
		return err
	}
	b.rep.add("fetch denied (no consent; logged), c=1", fmtRatio(r.ratio("denied c1", "floor c1"))+" of (b)",
		fmt.Sprintf("(b) %s", fmtRate(r.rate("floor c1"))),
		fmt.Sprintf("%s, p50 %s", fmtRate(r.rate("denied c1")), fmtDur(r.p50("denied c1"))), nil)
	return nil
}

// uploadSeq numbers upload-scenario records apart from the seed.
var uploadSeq atomic.Int64

// uploadOp posts record contents to url as token's holder.
func uploadOp(b *bench, url, token string) op {
	return func(ctx context.Context, _, _ int) error {
		i := int(uploadSeq.Add(1)) + 10_000_000
		// For one of the first claimPatients patients, which every seed
		// registers with hospital-a.
		_, err := call{method: "POST", url: url, token: token, body: uploadJSONFor(b.corp, i, i%claimPatients)}.expect(ctx, 201)
		return err
	}
}

// upload compares encrypted and plaintext uploads on the bare server, and
// medshare's upload beside them.
func (b *bench) upload(ctx context.Context) error {
	r, err := interleave(ctx, b.cfg,
		plain("plain", 1, uploadOp(b, b.base.url+"/upload/plain", "")),
		plain("enc", 1, uploadOp(b, b.base.url+"/upload/enc", "")),
		plain("medshare", 1, uploadOp(b, b.node.url+"/v1/records", b.node.author())),
	)
	if err != nil {
		return err
	}
	x := r.ratio("enc", "plain")
	b.tg.upload.set(x, fmtRatio(x))
	b.rep.add("upload ~4 KiB, encrypted vs encryption off (bare server), c=1", fmtRatio(x),
		fmt.Sprintf("encryption off %s, p50 %s", fmtRate(r.rate("plain")), fmtDur(r.p50("plain"))),
		fmt.Sprintf("encrypted %s, p50 %s", fmtRate(r.rate("enc")), fmtDur(r.p50("enc"))), b.tg.upload)
	b.rep.add("medshare upload (encrypt, store, anchor), c=1", fmtRatio(r.ratio("medshare", "enc"))+" of bare encrypted upload",
		fmt.Sprintf("bare encrypted %s", fmtRate(r.rate("enc"))),
		fmt.Sprintf("%s, p50 %s", fmtRate(r.rate("medshare")), fmtDur(r.p50("medshare"))), nil)
	return nil
}

// grantRead times grant → first allowed read by clinic-c, then revokes and
// checks that the very next read is denied. It runs on a node of its own
// with ten times the main node's patients, and cycles go round them, so no
// patient's consent history grows long (the consent lookup reads a
// patient's whole history: see consentHistory).
func (b *bench) grantRead(ctx context.Context) error {
	s, err := b.build(ctx, "node-grants", 10*b.cfg.records, nodeOpts{})
	if err != nil {
		return err
	}
	patients := s.fetchable() / recordsPerPatient
	var deniedFirst, allowedAfterRevoke, cycles atomic.Int64
	var ackToRead atomic.Int64 // summed, for the mean
	cycle := func(ctx context.Context, _, _ int) (time.Duration, error) {
		p := int(cycles.Load()) % patients
		rec := s.ids[p*recordsPerPatient]
		t0 := time.Now()
		cid, err := s.grantID(ctx, p, "clinic-c", "TREAT")
		if err != nil {
			return 0, err
		}
		ack := time.Now()
		for tries := 0; ; tries++ {
			st, body, err := s.get("/v1/records/"+rec, s.stranger(), "X-Purpose-Of-Use", "TREAT").do(ctx)
			if err != nil || (st != 200 && st != 404) || tries > 10_000 {
				return 0, fmt.Errorf("read after grant: %d %v %.200s", st, err, body)
			}
			if st == 200 {
				break
			}
			deniedFirst.Add(1)
		}
		lat := time.Since(t0)
		ackToRead.Add(int64(time.Since(ack)))
		cycles.Add(1)
		if _, err := s.del("/v1/consents/"+cid, s.patient(p)).expect(ctx, 200); err != nil {
			return 0, err
		}
		st, _, err := s.get("/v1/records/"+rec, s.stranger(), "X-Purpose-Of-Use", "TREAT").do(ctx)
		switch {
		case err != nil:
			return 0, err
		case st == 200:
			allowedAfterRevoke.Add(1)
		case st != 404:
			return 0, fmt.Errorf("read after revoke: status %d", st)
		}
		return lat, nil
	}
	r, err := interleave(ctx, b.cfg,
		plain("floor c1", 1, bareOp(b.base, "floor")),
		phase{name: "grant→read", c: 1, fn: cycle},
	)
	if err != nil {
		return err
	}
	p50 := r.p50("grant→read")
	ms := float64(p50) / float64(time.Millisecond)
	b.tg.grantRead.set(ms, fmtDur(p50))
	n := max(cycles.Load(), 1)
	b.rep.add("consent grant → first allowed read (embedded), c=1", fmt.Sprintf("%.1f × (b) latency", float64(p50)/float64(r.p50("floor c1"))),
		fmt.Sprintf("(b) p50 %s", fmtDur(r.p50("floor c1"))),
		fmt.Sprintf("p50 %s, p99 %s (grant ack → allowed read mean %s; %d reads denied after a grant ack in %d cycles)",
			fmtDur(p50), fmtDur(r.quantile("grant→read", 0.99)), fmtDur(time.Duration(ackToRead.Load()/n)), deniedFirst.Load(), n), b.tg.grantRead)
	b.rep.add("revoke → the first read after the acknowledged revoke, c=1", fmt.Sprintf("%d allowed of %d", allowedAfterRevoke.Load(), n),
		"—", "must be 0: every first read after a revoke was denied", nil)
	if allowedAfterRevoke.Load() > 0 {
		b.tg.revoke.set(float64(allowedAfterRevoke.Load()), fmt.Sprintf("%d allowed (c=1)", allowedAfterRevoke.Load()))
	}
	return nil
}

// revokeUnderLoad grants clinic-c access, reads at c=32, revokes mid-load,
// and counts allowed reads that were sent after the revoke was
// acknowledged: there must be none.
func (b *bench) revokeUnderLoad(ctx context.Context) error {
	s := b.node
	p := s.reserved(0)
	recs := s.ids[p*recordsPerPatient : (p+1)*recordsPerPatient]
	type obs struct {
		sent time.Duration
		ok   bool
	}
	var allowedAfter, sentAfter, inFlight, firstAfterAllowed int
	cycles := max(5, b.cfg.reps)
	for range cycles {
		cid, err := s.grantID(ctx, p, "clinic-c", "TREAT")
		if err != nil {
			return err
		}
		base := time.Now()
		results := make(chan []obs, 32)
		stop := make(chan struct{})
		errs := make(chan error, 32)
		for range 32 {
			go func() {
				var mine []obs
				defer func() { results <- mine }()
				for {
					select {
					case <-stop:
						return
					default:
					}
					sent := time.Since(base)
					st, _, err := s.get("/v1/records/"+recs[rand.IntN(len(recs))], s.stranger(), "X-Purpose-Of-Use", "TREAT").do(ctx)
					if err != nil || (st != 200 && st != 404) {
						errs <- fmt.Errorf("read under revoke: status %d, %v", st, err)
						return
					}
					mine = append(mine, obs{sent: sent, ok: st == 200})
				}
			}()
		}
		time.Sleep(b.cfg.phase / 2)
		if _, err := s.del("/v1/consents/"+cid, s.patient(p)).expect(ctx, 200); err != nil {
			close(stop)
			return err
		}
		ack := time.Since(base)
		time.Sleep(b.cfg.phase / 2)
		close(stop)
		first := obs{sent: time.Duration(1 << 62)}
		for range 32 {
			for _, o := range <-results {
				switch {
				case o.sent > ack:
					sentAfter++
					if o.ok {
						allowedAfter++
					}
					if o.sent < first.sent {
						first = o
					}
				case o.ok:
					inFlight++
				}
			}
		}
		select {
		case err := <-errs:
			return err
		default:
		}
		if first.ok {
			firstAfterAllowed++
		}
	}
	// A first read allowed after a revoke at c=1 (grantRead) counts too.
	prev := 0
	if b.tg.revoke.measured {
		prev = int(b.tg.revoke.value)
	}
	b.tg.revoke.set(float64(allowedAfter+prev), fmt.Sprintf("%d allowed of %d sent after ack", allowedAfter+prev, sentAfter))
	b.rep.add("revoke under c=32 read load: allowed reads sent after the revoke was acknowledged",
		fmt.Sprintf("%d of %d", allowedAfter, sentAfter), "— (a count, not a ratio)",
		fmt.Sprintf("%d cycles; first read after each ack allowed in %d; %d allowed reads were sent before the ack", cycles, firstAfterAllowed, inFlight), b.tg.revoke)
	return nil
}

// claims verifies 5-item claims (5 records) as insurer-x, each item an
// element a claim may cite (docs/CLAIMS.md) with its true value. The node
// must run without the claim quota, which would refuse the sixth claim on
// an element (429).
func (b *bench) claims(ctx context.Context) error {
	s := b.node
	facts := make([]map[string]any, claimPatients*recordsPerPatient)
	for p := range claimPatients {
		for k := range 5 {
			i := p*recordsPerPatient + k
			path, value, err := claimFact(b.corp, i)
			if err != nil {
				return err
			}
			facts[i] = map[string]any{"recordId": s.ids[i], "path": path, "value": value}
		}
	}
	claim := func(ctx context.Context, _, i int) error {
		p := i % claimPatients
		items := make([]map[string]any, 5)
		for k := range items {
			items[k] = facts[p*recordsPerPatient+k]
		}
		body, _ := json.Marshal(map[string]any{"claimId": fmt.Sprintf("claim-%d", i), "patient": patientID(p), "items": items})
		out, err := s.post("/v1/claims/verify", s.insurer(), body).expect(ctx, 200)
		if err == nil && !bytes.Contains(out, []byte(`"verified":true`)) {
			err = fmt.Errorf("claim not verified: %.300s", out)
		}
		return err
	}
	r, err := interleave(ctx, b.cfg,
		plain("floor c1", 1, bareOp(b.base, "floor")),
		plain("claim c1", 1, claim),
	)
	if err != nil {
		return err
	}
	b.rep.add("claim verification, 5 items in 5 records, c=1", fmtRatio(r.ratio("claim c1", "floor c1"))+" of (b)",
		fmt.Sprintf("(b) %s", fmtRate(r.rate("floor c1"))),
		fmt.Sprintf("%s, p50 %s", fmtRate(r.rate("claim c1")), fmtDur(r.p50("claim c1"))), nil)
	return nil
}

// claimFact returns an element a claim may cite in corpus record i, a
// Bundle, and its value there: the status (or clinical status) of its
// first entry.
func claimFact(corp *corpus, i int) (path string, value string, err error) {
	_, content := corp.record(i)
	var doc struct {
		Entry []struct {
			Resource struct {
				Status         string
				ClinicalStatus struct{ Coding []struct{ Code string } }
			}
		}
	}
	if err := json.Unmarshal(content, &doc); err != nil || len(doc.Entry) == 0 {
		return "", "", fmt.Errorf("corpus record %d: no bundle entry (%v)", i, err)
	}
	switch r := doc.Entry[0].Resource; {
	case r.Status != "":
		return "/entry/0/resource/status", r.Status, nil
	case len(r.ClinicalStatus.Coding) > 0 && r.ClinicalStatus.Coding[0].Code != "":
		return "/entry/0/resource/clinicalStatus/coding/0/code", r.ClinicalStatus.Coding[0].Code, nil
	}
	return "", "", fmt.Errorf("corpus record %d: its first entry has no status to cite", i)
}

// accessLog lists the first page of two patients' access logs, one with
// cfg.logEntries entries and one with a tenth of that.
func (b *bench) accessLog(ctx context.Context) error {
	s := b.node
	big, small := s.reserved(1), s.reserved(2)
	fill := func(p, n int) error {
		return parallel(ctx, 32, n, func(ctx context.Context, i int) error {
			_, err := s.get("/v1/records/"+s.ids[p*recordsPerPatient+i%recordsPerPatient], s.reader(), "X-Purpose-Of-Use", "TREAT").expect(ctx, 200)
			return err
		})
	}
	if err := fill(big, b.cfg.logEntries); err != nil {
		return err
	}
	if err := fill(small, b.cfg.logEntries/10); err != nil {
		return err
	}
	list := func(p int) op {
		return func(ctx context.Context, _, _ int) error {
			_, err := s.get("/v1/access-log", s.patient(p)).expect(ctx, 200)
			return err
		}
	}
	r, err := interleave(ctx, b.cfg, plain("small", 1, list(small)), plain("big", 1, list(big)))
	if err != nil {
		return err
	}
	x := r.ratio("big", "small")
	b.tg.logScale.set(x, fmtRatio(x))
	b.rep.add(fmt.Sprintf("access-log listing (first page of 100), patient with %dk entries, c=1", b.cfg.logEntries/1000), fmtRatio(x),
		fmt.Sprintf("patient with %d entries: %s, p50 %s", b.cfg.logEntries/10, fmtRate(r.rate("small")), fmtDur(r.p50("small"))),
		fmt.Sprintf("%s, p50 %s", fmtRate(r.rate("big")), fmtDur(r.p50("big"))), b.tg.logScale)
	return nil
}

// policy measures decisions in process: the engine alone, and the consent
// lookup plus decision a read makes, on ledgers of cfg.consentsSmall and
// cfg.consentsLarge consents. Targets 3a and 3b are the policy's
// evaluation, so they use an engine without the decision cache (which
// would answer a repeated input from memory); the cached figure is printed
// beside them for context.
func (b *bench) policy(ctx context.Context) error {
	e, err := policy.New(ctx, policy.Options{NoDecisionCache: true})
	if err != nil {
		return err
	}
	cachedEngine, err := policy.New(ctx, policy.Options{})
	if err != nil {
		return err
	}
	start := time.Now()
	small, err := openConsentLedger(ctx, filepath.Join(b.cfg.dir, "policy-small"), b.cfg.consentsSmall)
	if err != nil {
		return err
	}
	defer small.l.Close()
	large, err := openConsentLedger(ctx, filepath.Join(b.cfg.dir, "policy-large"), b.cfg.consentsLarge)
	if err != nil {
		return err
	}
	defer large.l.Close()
	seeded := time.Since(start)
	in, err := small.input(ctx, 0)
	if err != nil {
		return err
	}
	r, err := interleave(ctx, b.cfg,
		plain("engine", 1, engineOp(e, in)),
		plain("cached", 1, engineOp(cachedEngine, in)),
		plain("small", 1, decideOp(e, small)),
		plain("large", 1, decideOp(e, large)),
		plain("wide", 1, engineOp(e, wideInput(in, 1000))),
	)
	if err != nil {
		return err
	}
	p50 := r.p50("engine")
	b.tg.policyP50.set(float64(p50)/float64(time.Microsecond), fmtDur(p50))
	b.rep.add("policy decision (policy.Engine.Decide, in process, decision cache off), 1 applicable consent in the input", fmtDur(p50)+" p50",
		"— (absolute target)", fmt.Sprintf("p99 %s", fmtDur(r.quantile("engine", 0.99))), b.tg.policyP50)
	b.rep.add("the same decision repeated, decision cache on (what a read of a recurring input costs), for context",
		fmt.Sprintf("%.2f × evaluated", float64(r.p50("cached"))/float64(p50)), fmt.Sprintf("evaluated: p50 %s", fmtDur(p50)),
		fmt.Sprintf("p50 %s", fmtDur(r.p50("cached"))), nil)
	x := r.latencyRatio("large", "small")
	k := func(n int) string { return fmt.Sprintf("%dk", n/1000) }
	b.tg.policyScale.set(x, fmtRatio(x))
	b.rep.add(fmt.Sprintf("consent lookup + decision, %s consents on the ledger (p50 latency ratio)", k(b.cfg.consentsLarge)), fmtRatio(x),
		fmt.Sprintf("%s consents: p50 %s", k(b.cfg.consentsSmall), fmtDur(r.p50("small"))),
		fmt.Sprintf("p50 %s (ledgers seeded in %v)", fmtDur(r.p50("large")), seeded.Round(time.Second)), b.tg.policyScale)
	b.rep.add("policy decision with 1000 consents in the input (999 not applying), for context", fmt.Sprintf("%.0f × one consent", float64(r.p50("wide"))/float64(p50)),
		fmt.Sprintf("1 consent: p50 %s", fmtDur(p50)), fmt.Sprintf("p50 %s", fmtDur(r.p50("wide"))), nil)
	return nil
}

// latencyRatio is the median over repetitions of a's p50 over b's.
func (r runs) latencyRatio(a, b string) float64 {
	as, bs := r[a], r[b]
	xs := make([]float64, 0, len(as))
	for i := range min(len(as), len(bs)) {
		xs = append(xs, float64(as[i].quantile(0.5))/float64(bs[i].quantile(0.5)))
	}
	return median(xs)
}
