// Package consenttest holds the conformance suite every consent.Ledger host
// must pass (Run), and MemLedger, an in-memory Ledger for unit tests of the
// layers above the ledger.
package consenttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/medshare/medshare/consent"
)

// eventTimeout bounds the wait for an event; generous because real hosts
// batch commits and deliver events asynchronously.
const eventTimeout = time.Minute

// concurrentSubmits is how many transactions the concurrency check submits
// at once.
const concurrentSubmits = 50

// Run checks, through consent.Service, that the ledgers open returns host
// the consent contract faithfully: commits, rejections, receipts, events
// and concurrency. open is called once per subtest and must return a ready
// Ledger; Run closes it when the subtest ends. The subtests run in parallel
// and Run returns once all are done. Ledgers may be shared and persistent:
// every id and pseudonym Run uses is unique to the run, and it never
// assumes the ledger starts empty.
func Run(t *testing.T, open func(t *testing.T) consent.Ledger) {
	t.Helper()
	run := runID(t)
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Orgs", testOrgs},
		{"Consents", testConsents},
		{"Anchors", testAnchors},
		{"AccessLog", testAccessLog},
		{"AccessLogPaging", testAccessLogPaging},
		{"RejectedTxLeavesNoTrace", testRejectedTx},
		{"WrongKindOfCall", testWrongKind},
		{"Receipts", testReceipts},
		{"Events", testEvents},
		{"ConcurrentSubmits", testConcurrent},
	}
	t.Run("Conformance", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				l := open(t)
				t.Cleanup(func() {
					if err := l.Close(); err != nil {
						t.Errorf("close ledger: %v", err)
					}
				})
				tt.fn(t, newFixture(t, l, run+"-"+strings.ToLower(tt.name)))
			})
		}
	})
}

// runID is a random prefix that keeps this run's ids apart from any other
// run's on a persistent ledger.
func runID(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "ct" + hex.EncodeToString(b)
}

// pz makes the suite's pseudonyms; its pepper is fixed so failures are
// reproducible from the run id alone.
var pz = func() *consent.Pseudonymizer {
	p, err := consent.NewPseudonymizer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		panic(err)
	}
	return p
}()

// cmpOpts compares domain values decoded from the ledger.
var cmpOpts = []cmp.Option{cmpopts.IgnoreUnexported(consent.AccessEntry{})}

// fixture is one subtest's view of the ledger under test.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	l       consent.Ledger
	svc     *consent.Service
	prefix  string
	patient string // this subtest's patient
	other   string // another patient
	actor   string
	t0      time.Time // base of access-entry times
}

func newFixture(t *testing.T, l consent.Ledger, prefix string) *fixture {
	return &fixture{
		t: t, ctx: t.Context(), l: l, svc: consent.NewService(l), prefix: prefix,
		patient: pz.PatientRef(prefix + "-patient"), other: pz.PatientRef(prefix + "-other"),
		actor: pz.SubjectRef(prefix + "-actor"),
		t0:    time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC),
	}
}

// id returns an id unique to this run and subtest.
func (f *fixture) id(name string) string { return f.prefix + "-" + name }

// checkReceipt fails unless rcpt names a transaction the ledger can find
// in the block it claims.
func (f *fixture) checkReceipt(what string, rcpt consent.Receipt) {
	f.t.Helper()
	if rcpt.TxID == "" {
		f.t.Fatalf("%s: receipt has no tx id", what)
	}
	block, err := f.l.TxBlock(f.ctx, rcpt.TxID)
	if err != nil {
		f.t.Fatalf("%s: TxBlock(%q): %v", what, rcpt.TxID, err)
	}
	if block != rcpt.Block {
		f.t.Fatalf("%s: TxBlock(%q) = %d, receipt says %d", what, rcpt.TxID, block, rcpt.Block)
	}
}

// must fails the test on err and checks the receipt of a submit.
func must[R any](f *fixture, what string) func(r *R, rcpt consent.Receipt, err error) (*R, consent.Receipt) {
	return func(r *R, rcpt consent.Receipt, err error) (*R, consent.Receipt) {
		f.t.Helper()
		if err != nil {
			f.t.Fatalf("%s: %v", what, err)
		}
		f.checkReceipt(what, rcpt)
		return r, rcpt
	}
}

// wantCode fails unless err carries code.
func (f *fixture) wantCode(what string, err error, code string) {
	f.t.Helper()
	if got := consent.ErrorCode(err); got != code {
		f.t.Fatalf("%s: error code %q, want %q (err: %v)", what, got, code, err)
	}
}

// org registers an active organization of type typ and returns its id.
func (f *fixture) org(name, typ string) string {
	f.t.Helper()
	id := f.id(name)
	must[consent.Org](f, "register "+id)(f.svc.RegisterOrg(f.ctx, consent.RegisterOrgArgs{ID: id, Name: "Org " + name, Type: typ}))
	return id
}

// entry returns a valid access entry for the fixture's patient at t0+min.
func (f *fixture) entry(name string, min int) consent.AccessEntry {
	return consent.AccessEntry{
		ID: f.id(name), Time: f.t0.Add(time.Duration(min) * time.Minute), Action: "read",
		RecordID: f.id("rec"), PatientRef: f.patient, ActorRef: f.actor, Role: "clinician",
		Purpose: consent.PurposeTreat, Decision: consent.DecisionAllow, Reasons: []string{"conformance"},
		PolicyDigest: "sha256:conformance",
	}
}

// stored is e as the ledger should keep it after logging by rcpt.
func stored(e consent.AccessEntry, rcpt consent.Receipt, anchoredAt time.Time) consent.AccessEntry {
	e.Time, e.Tx, e.AnchoredAt = e.Time.UTC(), rcpt.TxID, anchoredAt
	return e
}

func testOrgs(t *testing.T, f *fixture) {
	id := f.id("hosp")
	o, _ := must[consent.Org](f, "register")(f.svc.RegisterOrg(f.ctx, consent.RegisterOrgArgs{ID: id, Name: "General", Type: consent.OrgHospital}))
	if o.ID != id || o.Status != consent.StatusActive || o.Type != consent.OrgHospital || o.CreatedAt.IsZero() {
		t.Fatalf("registered org = %+v", o)
	}
	got, err := f.svc.Org(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(o, got); diff != "" {
		t.Errorf("Org (-registered +read):\n%s", diff)
	}
	_, _, err = f.svc.RegisterOrg(f.ctx, consent.RegisterOrgArgs{ID: id, Name: "Again", Type: consent.OrgClinic})
	f.wantCode("register twice", err, consent.ECONFLICT)

	all, err := f.svc.Orgs(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(all, func(x consent.Org) bool { return x.ID == id }) {
		t.Errorf("Orgs lacks %q", id)
	}

	off, _ := must[consent.Org](f, "deactivate")(f.svc.SetOrgStatus(f.ctx, consent.SetOrgStatusArgs{ID: id, Status: consent.StatusInactive}))
	if off.Status != consent.StatusInactive {
		t.Errorf("status after deactivate = %q", off.Status)
	}
	_, _, err = f.svc.SetOrgStatus(f.ctx, consent.SetOrgStatusArgs{ID: id, Status: consent.StatusInactive})
	f.wantCode("deactivate twice", err, consent.ECONFLICT)
	if got, err := f.svc.Org(f.ctx, id); err != nil || got.Status != consent.StatusInactive {
		t.Errorf("Org after deactivate = %+v, %v", got, err)
	}
	_, err = f.svc.Org(f.ctx, f.id("nobody"))
	f.wantCode("unknown org", err, consent.ENOTFOUND)
}

func testConsents(t *testing.T, f *fixture) {
	hosp, ins := f.org("hosp", consent.OrgHospital), f.org("ins", consent.OrgInsurer)
	until := time.Now().Add(365 * 24 * time.Hour).UTC().Truncate(time.Second)
	c1, r1 := must[consent.Consent](f, "grant c1")(f.svc.Grant(f.ctx, consent.GrantConsentArgs{
		ID: f.id("c1"), PatientRef: f.patient, Grantee: consent.Grantee{Org: hosp, SubjectRef: f.actor},
		Categories: []string{"lab", "imaging", "lab"}, Records: []string{f.id("r2"), f.id("r1")},
		Purposes: []string{consent.PurposeTreat, consent.PurposeEmergency}, ValidUntil: &until,
	}))
	want := consent.Consent{
		ID: f.id("c1"), PatientRef: f.patient, Grantee: consent.Grantee{Org: hosp, SubjectRef: f.actor},
		Categories: []string{"imaging", "lab"}, Records: []string{f.id("r1"), f.id("r2")},
		Purposes: []string{consent.PurposeEmergency, consent.PurposeTreat}, ValidUntil: &until,
		Status: consent.StatusActive, Version: 1, Tx: r1.TxID,
		ValidFrom: c1.ValidFrom, CreatedAt: c1.ValidFrom, UpdatedAt: c1.ValidFrom,
	}
	if c1.ValidFrom.IsZero() {
		t.Fatalf("granted consent has no validFrom: %+v", c1)
	}
	if diff := cmp.Diff(&want, c1); diff != "" {
		t.Fatalf("granted consent (-want +got):\n%s", diff)
	}
	if got, err := f.svc.Consent(f.ctx, c1.ID); err != nil {
		t.Fatal(err)
	} else if diff := cmp.Diff(c1, got); diff != "" {
		t.Errorf("Consent (-granted +read):\n%s", diff)
	}
	c2, _ := must[consent.Consent](f, "grant c2")(f.svc.Grant(f.ctx, consent.GrantConsentArgs{
		ID: f.id("c2"), PatientRef: f.patient, Grantee: consent.Grantee{Org: ins},
		Categories: []string{"claims"}, Purposes: []string{consent.PurposePayment},
	}))

	f.wantConsents(consent.ConsentFilter{PatientRef: f.patient}, *c1, *c2)
	f.wantConsents(consent.ConsentFilter{GranteeOrg: hosp}, *c1)
	f.wantConsents(consent.ConsentFilter{PatientRef: f.other})

	_, _, err := f.svc.Grant(f.ctx, consent.GrantConsentArgs{
		ID: f.id("c3"), PatientRef: f.patient, Grantee: consent.Grantee{Org: f.id("nobody")},
		Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat},
	})
	f.wantCode("grant to unknown org", err, consent.EINVALID)

	_, _, err = f.svc.Revoke(f.ctx, c1.ID, f.other)
	f.wantCode("revoke by another patient", err, consent.EFORBIDDEN)
	rev, rr := must[consent.Consent](f, "revoke")(f.svc.Revoke(f.ctx, c1.ID, f.patient))
	if rev.Status != consent.StatusRevoked || rev.Version != 2 || rev.Tx != rr.TxID || !rev.CreatedAt.Equal(c1.CreatedAt) {
		t.Errorf("revoked consent = %+v, want revoked, version 2, tx %q", rev, rr.TxID)
	}
	_, _, err = f.svc.Revoke(f.ctx, c1.ID, f.patient)
	f.wantCode("revoke twice", err, consent.ECONFLICT)
	_, _, err = f.svc.Revoke(f.ctx, f.id("c-none"), f.patient)
	f.wantCode("revoke unknown", err, consent.ENOTFOUND)
	f.wantConsents(consent.ConsentFilter{PatientRef: f.patient}, *rev, *c2)
	_, err = f.svc.Consent(f.ctx, f.id("c-none"))
	f.wantCode("unknown consent", err, consent.ENOTFOUND)
}

// wantConsents fails unless the listing under filter is exactly want.
func (f *fixture) wantConsents(filter consent.ConsentFilter, want ...consent.Consent) {
	f.t.Helper()
	got, err := f.svc.Consents(f.ctx, filter)
	if err != nil {
		f.t.Fatalf("Consents(%+v): %v", filter, err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		f.t.Errorf("Consents(%+v) (-want +got):\n%s", filter, diff)
	}
}

func testAnchors(t *testing.T, f *fixture) {
	hosp := f.org("hosp", consent.OrgHospital)
	a := consent.Anchor{RecordID: f.id("rec"), Version: 1, PatientRef: f.patient, Org: hosp, Category: "lab", Hash: pz.SubjectRef(f.prefix + "-hash")}
	got, rcpt := must[consent.Anchor](f, "anchor")(f.svc.Anchor(f.ctx, a))
	if got.Tx != rcpt.TxID || got.AnchoredAt.IsZero() {
		t.Errorf("anchor = %+v, want tx %q and a time", got, rcpt.TxID)
	}
	a.Tx, a.AnchoredAt = got.Tx, got.AnchoredAt
	if diff := cmp.Diff(&a, got); diff != "" {
		t.Errorf("anchor (-want +got):\n%s", diff)
	}
	read, err := f.svc.GetAnchor(f.ctx, a.RecordID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, read); diff != "" {
		t.Errorf("GetAnchor (-anchored +read):\n%s", diff)
	}
	_, _, err = f.svc.Anchor(f.ctx, a)
	f.wantCode("anchor twice", err, consent.ECONFLICT)
	_, err = f.svc.GetAnchor(f.ctx, a.RecordID, 2)
	f.wantCode("unanchored version", err, consent.ENOTFOUND)
	a.Version, a.Org = 2, f.id("nobody")
	_, _, err = f.svc.Anchor(f.ctx, a)
	f.wantCode("anchor by unknown org", err, consent.ENOTFOUND)
}

func testAccessLog(t *testing.T, f *fixture) {
	e1 := f.entry("e1", 10)
	got, rcpt := must[consent.AccessEntry](f, "log")(f.svc.LogAccess(f.ctx, e1))
	want := stored(e1, rcpt, got.AnchoredAt)
	if got.AnchoredAt.IsZero() {
		t.Errorf("logged entry has no anchoredAt: %+v", got)
	}
	if diff := cmp.Diff(&want, got, cmpOpts...); diff != "" {
		t.Errorf("logged entry (-want +got):\n%s", diff)
	}
	if read, err := f.svc.Access(f.ctx, e1.ID); err != nil {
		t.Fatal(err)
	} else if diff := cmp.Diff(got, read, cmpOpts...); diff != "" {
		t.Errorf("Access (-logged +read):\n%s", diff)
	}
	_, _, err := f.svc.LogAccess(f.ctx, e1)
	f.wantCode("log twice", err, consent.ECONFLICT)
	_, err = f.svc.Access(f.ctx, f.id("e-none"))
	f.wantCode("unknown entry", err, consent.ENOTFOUND)

	// A batch logs what is new and skips what is there, including a
	// duplicate inside the batch; a retry of the batch logs nothing.
	batch := []consent.AccessEntry{f.entry("b1", 1), e1, f.entry("b2", 2), f.entry("b1", 3)}
	res, _ := must[consent.BatchResult](f, "batch")(f.svc.LogAccessBatch(f.ctx, batch))
	wantRes := consent.BatchResult{Logged: []string{f.id("b1"), f.id("b2")}, Skipped: []string{e1.ID, f.id("b1")}}
	if diff := cmp.Diff(&wantRes, res); diff != "" {
		t.Errorf("batch result (-want +got):\n%s", diff)
	}
	b1, err := f.svc.Access(f.ctx, f.id("b1"))
	if err != nil {
		t.Fatal(err)
	}
	res, _ = must[consent.BatchResult](f, "retry")(f.svc.LogAccessBatch(f.ctx, batch))
	wantRes = consent.BatchResult{Logged: []string{}, Skipped: []string{f.id("b1"), e1.ID, f.id("b2"), f.id("b1")}}
	if diff := cmp.Diff(&wantRes, res); diff != "" {
		t.Errorf("retry result (-want +got):\n%s", diff)
	}
	if again, err := f.svc.Access(f.ctx, f.id("b1")); err != nil {
		t.Fatal(err)
	} else if diff := cmp.Diff(b1, again, cmpOpts...); diff != "" {
		t.Errorf("retry rewrote an entry (-first +after retry):\n%s", diff)
	}
	page, err := f.svc.AccessLog(f.ctx, consent.AccessFilter{PatientRef: f.patient})
	if err != nil {
		t.Fatal(err)
	}
	if ids := entryIDs(page.Entries); !cmp.Equal(ids, []string{f.id("b1"), f.id("b2"), e1.ID}) {
		t.Errorf("access log = %q, want b1, b2, e1 (oldest first, each once)", ids)
	}

	_, _, err = f.svc.LogAccessBatch(f.ctx, nil)
	f.wantCode("empty batch", err, consent.EINVALID)
}

func testAccessLogPaging(t *testing.T, f *fixture) {
	// Entries logged out of time order come back oldest first, and paging
	// through Next yields exactly the unpaged listing.
	var batch []consent.AccessEntry
	for i, min := range []int{50, 10, 40, 20, 30, 60, 0} {
		batch = append(batch, f.entry(fmt.Sprintf("p%d", i), min))
	}
	must[consent.BatchResult](f, "batch")(f.svc.LogAccessBatch(f.ctx, batch[:4]))
	must[consent.BatchResult](f, "batch")(f.svc.LogAccessBatch(f.ctx, batch[4:]))
	all, err := f.svc.AccessLog(f.ctx, consent.AccessFilter{PatientRef: f.patient})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{f.id("p6"), f.id("p1"), f.id("p3"), f.id("p4"), f.id("p2"), f.id("p0"), f.id("p5")}
	if diff := cmp.Diff(want, entryIDs(all.Entries)); diff != "" || all.Next != "" {
		t.Fatalf("access log (-want +got), next %q:\n%s", all.Next, diff)
	}
	for _, limit := range []int{1, 2, 3, 7} {
		filter := consent.AccessFilter{PatientRef: f.patient, Limit: limit}
		var got []consent.AccessEntry
		for pages := 0; ; pages++ {
			if pages > len(want) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := f.svc.AccessLog(f.ctx, filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) > limit || (page.Next != "" && len(page.Entries) != limit) {
				t.Fatalf("limit %d: page of %d entries, next %q", limit, len(page.Entries), page.Next)
			}
			got = append(got, page.Entries...)
			if page.Next == "" {
				break
			}
			filter.After = page.Next
		}
		if diff := cmp.Diff(all.Entries, got, cmpOpts...); diff != "" {
			t.Errorf("limit %d: paged != unpaged (-want +got):\n%s", limit, diff)
		}
	}
	_, err = f.svc.AccessLog(f.ctx, consent.AccessFilter{PatientRef: f.patient, Limit: 1001})
	f.wantCode("limit too large", err, consent.EINVALID)
}

func testRejectedTx(t *testing.T, f *fixture) {
	// A rejected transaction changes nothing, even where the contract had
	// already written part of it before failing.
	hosp := f.org("hosp", consent.OrgHospital)
	orig, _ := must[consent.Consent](f, "grant")(f.svc.Grant(f.ctx, consent.GrantConsentArgs{
		ID: f.id("c1"), PatientRef: f.patient, Grantee: consent.Grantee{Org: hosp},
		Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat},
	}))
	_, _, err := f.svc.Grant(f.ctx, consent.GrantConsentArgs{
		ID: f.id("c1"), PatientRef: f.other, Grantee: consent.Grantee{Org: hosp},
		Categories: []string{"*"}, Purposes: []string{consent.PurposeResearch},
	})
	f.wantCode("grant with a taken id", err, consent.ECONFLICT)
	if got, err := f.svc.Consent(f.ctx, orig.ID); err != nil {
		t.Fatal(err)
	} else if diff := cmp.Diff(orig, got); diff != "" {
		t.Errorf("failed grant altered the consent (-before +after):\n%s", diff)
	}
	f.wantConsents(consent.ConsentFilter{PatientRef: f.other})

	// The contract writes b-ok before it finds b-bad invalid; the host must
	// discard that write with the rest of the transaction.
	bad := f.entry("b-bad", 2)
	bad.Decision = "maybe"
	_, _, err = f.svc.LogAccessBatch(f.ctx, []consent.AccessEntry{f.entry("b-ok", 1), bad})
	f.wantCode("batch with an invalid entry", err, consent.EINVALID)
	_, err = f.svc.Access(f.ctx, f.id("b-ok"))
	f.wantCode("entry of a rejected batch", err, consent.ENOTFOUND)
	page, err := f.svc.AccessLog(f.ctx, consent.AccessFilter{PatientRef: f.patient})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 0 {
		t.Errorf("rejected batch left %d entries in the log", len(page.Entries))
	}
}

func testWrongKind(t *testing.T, f *fixture) {
	args, _ := json.Marshal(consent.IDArgs{ID: f.id("x")})
	_, _, err := f.l.Submit(f.ctx, consent.QueryGetOrg, args)
	f.wantCode("Submit of a query", err, consent.EINVALID)

	reg, _ := json.Marshal(consent.RegisterOrgArgs{ID: f.id("sneaky"), Name: "Sneaky", Type: consent.OrgLab})
	_, err = f.l.Evaluate(f.ctx, consent.OpRegisterOrg, reg)
	f.wantCode("Evaluate of a submit op", err, consent.EINVALID)
	_, err = f.svc.Org(f.ctx, f.id("sneaky"))
	f.wantCode("org registered by Evaluate", err, consent.ENOTFOUND)

	_, _, err = f.l.Submit(f.ctx, "DropTables", []byte(`{}`))
	f.wantCode("Submit of an unknown op", err, consent.EINVALID)
	_, err = f.l.Evaluate(f.ctx, "GetEverything", []byte(`{}`))
	f.wantCode("Evaluate of an unknown query", err, consent.EINVALID)
	_, _, err = f.l.Submit(f.ctx, consent.OpRegisterOrg, []byte(`{"id":`))
	f.wantCode("Submit of malformed args", err, consent.EINVALID)
}

func testReceipts(t *testing.T, f *fixture) {
	// Every receipt names a distinct transaction, found in the block it
	// claims, and sequential submits never go back in block order.
	if err := f.l.Ping(f.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	seen := map[string]bool{}
	var last uint64
	for i := range 3 {
		_, rcpt := must[consent.Org](f, "register")(f.svc.RegisterOrg(f.ctx, consent.RegisterOrgArgs{ID: f.id(fmt.Sprint("o", i)), Name: "O", Type: consent.OrgClinic}))
		if seen[rcpt.TxID] {
			t.Errorf("tx id %q reused", rcpt.TxID)
		}
		seen[rcpt.TxID] = true
		if rcpt.Block < last {
			t.Errorf("block %d after block %d", rcpt.Block, last)
		}
		last = rcpt.Block
	}
	_, err := f.l.TxBlock(f.ctx, f.id("no-such-tx"))
	f.wantCode("TxBlock of an unknown tx", err, consent.ENOTFOUND)
}

func testEvents(t *testing.T, f *fixture) {
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	events := f.l.Subscribe(ctx)

	type sent struct {
		op     string
		rcpt   consent.Receipt
		result any
	}
	var txs []sent
	hosp := f.id("hosp")
	o, rcpt := must[consent.Org](f, "register")(f.svc.RegisterOrg(f.ctx, consent.RegisterOrgArgs{ID: hosp, Name: "H", Type: consent.OrgHospital}))
	txs = append(txs, sent{consent.OpRegisterOrg, rcpt, o})
	c, rcpt := must[consent.Consent](f, "grant")(f.svc.Grant(f.ctx, consent.GrantConsentArgs{
		ID: f.id("c1"), PatientRef: f.patient, Grantee: consent.Grantee{Org: hosp},
		Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat},
	}))
	txs = append(txs, sent{consent.OpGrantConsent, rcpt, c})
	_, _, err := f.svc.Revoke(f.ctx, c.ID, f.other)
	f.wantCode("rejected revoke", err, consent.EFORBIDDEN)
	c, rcpt = must[consent.Consent](f, "revoke")(f.svc.Revoke(f.ctx, c.ID, f.patient))
	txs = append(txs, sent{consent.OpRevokeConsent, rcpt, c})
	e, rcpt := must[consent.AccessEntry](f, "log")(f.svc.LogAccess(f.ctx, f.entry("e1", 0)))
	txs = append(txs, sent{consent.OpLogAccess, rcpt, e})

	// Events may interleave with other runs' on a shared ledger: wait for
	// each of ours by tx id.
	got := map[string]consent.Event{}
	timeout := time.After(eventTimeout)
	for _, s := range txs {
		for _, ok := got[s.rcpt.TxID]; !ok; _, ok = got[s.rcpt.TxID] {
			select {
			case ev, open := <-events:
				if !open {
					t.Fatalf("event channel closed before tx %q (%s) arrived", s.rcpt.TxID, s.op)
				}
				got[ev.TxID] = ev
			case <-timeout:
				t.Fatalf("no event for tx %q (%s) within %v", s.rcpt.TxID, s.op, eventTimeout)
			}
		}
		ev := got[s.rcpt.TxID]
		if ev.Op != s.op || ev.Block != s.rcpt.Block || ev.Time.IsZero() {
			t.Errorf("event %+v, want op %s, block %d and a time", ev, s.op, s.rcpt.Block)
		}
		// The payload is the operation's result.
		want, _ := json.Marshal(s.result)
		if diff := cmp.Diff(decodeAny(t, want), decodeAny(t, ev.Payload)); diff != "" {
			t.Errorf("%s event payload (-result +payload):\n%s", s.op, diff)
		}
	}

	// Ending the context ends the subscription.
	cancel()
	deadline := time.After(eventTimeout)
	for {
		select {
		case _, open := <-events:
			if !open {
				return
			}
		case <-deadline:
			t.Fatalf("event channel still open %v after its context ended", eventTimeout)
		}
	}
}

func testConcurrent(t *testing.T, f *fixture) {
	// Many concurrent submits, of two kinds, all commit exactly once.
	type result struct {
		rcpt consent.Receipt
		err  error
	}
	results := make([]result, concurrentSubmits)
	var wg sync.WaitGroup
	for i := range concurrentSubmits {
		wg.Go(func() {
			var err error
			var rcpt consent.Receipt
			if i%2 == 0 {
				_, rcpt, err = f.svc.LogAccess(f.ctx, f.entry(fmt.Sprint("e", i), i))
			} else {
				_, rcpt, err = f.svc.RegisterOrg(f.ctx, consent.RegisterOrgArgs{ID: f.id(fmt.Sprint("o", i)), Name: "O", Type: consent.OrgLab})
			}
			results[i] = result{rcpt, err}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("submit %d: %v", i, r.err)
		}
		f.checkReceipt(fmt.Sprint("submit ", i), r.rcpt)
		if seen[r.rcpt.TxID] {
			t.Errorf("tx id %q returned twice", r.rcpt.TxID)
		}
		seen[r.rcpt.TxID] = true
	}
	page, err := f.svc.AccessLog(f.ctx, consent.AccessFilter{PatientRef: f.patient})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != concurrentSubmits/2 {
		t.Errorf("access log holds %d entries, want %d", len(page.Entries), concurrentSubmits/2)
	}
	orgs, err := f.svc.Orgs(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range orgs {
		if strings.HasPrefix(o.ID, f.prefix+"-") {
			n++
		}
	}
	if n != concurrentSubmits/2 {
		t.Errorf("%d orgs registered, want %d", n, concurrentSubmits/2)
	}
}

func entryIDs(es []consent.AccessEntry) []string {
	ids := []string{}
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}
