package consent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

// ops and queries list every operation the contract knows.
var (
	ops = []string{
		consent.OpRegisterOrg, consent.OpSetOrgStatus, consent.OpGrantConsent, consent.OpRevokeConsent,
		consent.OpAnchorRecord, consent.OpLogAccess, consent.OpLogAccessBatch,
	}
	queries = []string{
		consent.QueryGetOrg, consent.QueryListOrgs, consent.QueryGetConsent, consent.QueryListConsents,
		consent.QueryGetAnchor, consent.QueryGetAccess, consent.QueryListAccess,
	}
)

func TestUnknownOperation(t *testing.T) {
	tests := []struct {
		name string
		note string
		run  func(st consent.State) ([]byte, error)
	}{
		{"ErrInvalid/Apply", "Apply rejects an op it does not know", func(st consent.State) ([]byte, error) { return consent.Apply(st, "DeleteEverything", []byte(`{}`)) }},
		{"ErrInvalid/ApplyEmpty", "Apply rejects the empty op", func(st consent.State) ([]byte, error) { return consent.Apply(st, "", []byte(`{}`)) }},
		{"ErrInvalid/ApplyCase", "op names are case-sensitive", func(st consent.State) ([]byte, error) {
			return consent.Apply(st, "registerorg", []byte(`{"id":"x","name":"x","type":"lab"}`))
		}},
		{"ErrInvalid/Query", "Query rejects a query it does not know", func(st consent.State) ([]byte, error) { return consent.Query(st, "GetEverything", []byte(`{}`)) }},
	}
	for _, q := range queries {
		tests = append(tests, struct {
			name string
			note string
			run  func(st consent.State) ([]byte, error)
		}{"ErrInvalid/ApplyQuery" + q, "Apply refuses query " + q + ": queries are never ordered", func(st consent.State) ([]byte, error) { return consent.Apply(st, q, []byte(`{}`)) }})
	}
	for _, op := range ops {
		tests = append(tests, struct {
			name string
			note string
			run  func(st consent.State) ([]byte, error)
		}{"ErrInvalid/Query" + op, "Query refuses op " + op + ": evaluating must never write", func(st consent.State) ([]byte, error) { return consent.Query(st, op, []byte(`{}`)) }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Log(tt.note)
			w := seeded(t)
			before := maps.Clone(w.st.Data)
			out, err := tt.run(w.st)
			checkCode(t, err, consent.EINVALID)
			if out != nil {
				t.Errorf("result = %s, want nil", out)
			}
			if !maps.EqualFunc(before, w.st.Data, bytes.Equal) {
				t.Error("an unknown operation wrote state")
			}
		})
	}
}

func TestIsQuery(t *testing.T) {
	for _, q := range queries {
		if !consent.IsQuery(q) {
			t.Errorf("IsQuery(%q) = false", q)
		}
	}
	for _, op := range append(slices.Clone(ops), "", "Nope", "getorg") {
		if consent.IsQuery(op) {
			t.Errorf("IsQuery(%q) = true", op)
		}
	}
}

// validArgs holds arguments each operation accepts on a seeded world.
func validArgs() map[string]any {
	return map[string]any{
		consent.OpRegisterOrg:     consent.RegisterOrgArgs{ID: "o-new", Name: "New", Type: consent.OrgLab},
		consent.OpSetOrgStatus:    consent.SetOrgStatusArgs{ID: orgHosp, Status: consent.StatusInactive},
		consent.OpGrantConsent:    grant,
		consent.OpRevokeConsent:   consent.RevokeConsentArgs{ID: consentP1, By: patient1},
		consent.OpAnchorRecord:    anchor,
		consent.OpLogAccess:       entry("e-new", tNow),
		consent.OpLogAccessBatch:  consent.LogAccessBatchArgs{Entries: []consent.AccessEntry{entry("e-new", tNow)}},
		consent.QueryGetOrg:       consent.IDArgs{ID: orgHosp},
		consent.QueryListOrgs:     struct{}{},
		consent.QueryGetConsent:   consent.IDArgs{ID: consentP1},
		consent.QueryListConsents: consent.ConsentFilter{PatientRef: patient1},
		consent.QueryGetAnchor:    consent.AnchorArgs{RecordID: recordSeed, Version: 1},
		consent.QueryGetAccess:    consent.IDArgs{ID: entrySeed},
		consent.QueryListAccess:   consent.AccessFilter{Limit: 2},
	}
}

// wrongType returns valid with its first field's value replaced by one of
// another JSON type, or nil when valid has no fields.
func wrongType(t *testing.T, valid []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(valid, &m); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) == 0 {
		return nil
	}
	if _, ok := m[keys[0]].(string); ok {
		m[keys[0]] = 5
	} else {
		m[keys[0]] = "x"
	}
	return mustJSON(t, m)
}

func TestMalformedArgs(t *testing.T) {
	// Every operation decodes its arguments strictly. Each malformation is
	// built from arguments the operation accepts, so a rejection can only
	// come from the decoding.
	tests := []struct {
		name string
		note string
		args func(valid []byte) []byte
	}{
		{"ErrInvalid/Empty", "no bytes at all is not JSON", func([]byte) []byte { return nil }},
		{"ErrInvalid/NotJSON", "garbage is rejected", func([]byte) []byte { return []byte(`id=1`) }},
		{"ErrInvalid/Truncated", "a truncated object is rejected", func(v []byte) []byte { return v[:len(v)-1] }},
		{"ErrInvalid/Array", "args are an object, not an array of one", func(v []byte) []byte { return slices.Concat([]byte("["), v, []byte("]")) }},
		{"ErrInvalid/String", "args are an object, not a string", func([]byte) []byte { return []byte(`"x"`) }},
		{"ErrInvalid/UnknownField", "unknown fields are rejected, so typos are not silently ignored", func(v []byte) []byte {
			if string(v) == "{}" {
				return []byte(`{"nope":1}`)
			}
			return slices.Concat([]byte(`{"nope":1,`), v[1:])
		}},
		{"ErrInvalid/TrailingValue", "a second JSON value after the args is rejected", func(v []byte) []byte { return slices.Concat(v, []byte(" {}")) }},
		{"ErrInvalid/TrailingGarbage", "trailing garbage is rejected", func(v []byte) []byte { return slices.Concat(v, []byte("x")) }},
		{"ErrInvalid/TrailingBrace", "a stray closing brace is trailing data too", func(v []byte) []byte { return slices.Concat(v, []byte("}")) }},
		{"ErrInvalid/TrailingBracket", "a stray closing bracket is trailing data too", func(v []byte) []byte { return slices.Concat(v, []byte("]")) }},
	}
	valid := validArgs()
	for _, op := range append(slices.Clone(ops), queries...) {
		t.Run(op, func(t *testing.T) {
			args := mustJSON(t, valid[op])
			t.Run("OK", func(t *testing.T) {
				// The base arguments are accepted as they are...
				if _, err := seeded(t).apply(op, args); err != nil {
					t.Fatal(err)
				}
				// ...and with whitespace around them.
				if _, err := seeded(t).apply(op, slices.Concat([]byte(" \n"), args, []byte(" \n\t\r"))); err != nil {
					t.Fatal(err)
				}
			})
			cases := slices.Clone(tests)
			if wt := wrongType(t, args); wt != nil {
				cases = append(cases, struct {
					name string
					note string
					args func(valid []byte) []byte
				}{"ErrInvalid/WrongType", "a field of the wrong JSON type is rejected", func([]byte) []byte { return wt }})
			}
			for _, tt := range cases {
				t.Run(tt.name, func(t *testing.T) {
					t.Log(tt.note)
					w := seeded(t)
					before := maps.Clone(w.st.Data)
					out, err := w.apply(op, tt.args(slices.Clone(args)))
					checkCode(t, err, consent.EINVALID)
					if out != nil {
						t.Errorf("result = %s, want nil", out)
					}
					if !maps.EqualFunc(before, w.st.Data, bytes.Equal) {
						t.Error("malformed args wrote state")
					}
				})
			}
		})
	}
}

// readOnly is a State whose Put fails, as hosts may pass to Query.
type readOnly struct{ *consent.MemState }

func (readOnly) Put(string, []byte) error { return errors.New("read-only state") }

func TestQueryNeverWrites(t *testing.T) {
	w := accessLog(t)
	args := validArgs()
	for _, q := range queries {
		t.Run(q+"/OK", func(t *testing.T) {
			// Every query succeeds on a State that refuses writes.
			if _, err := consent.Query(readOnly{w.st}, q, mustJSON(t, args[q])); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// failing is a State whose Get or Put fails.
type failing struct {
	*consent.MemState
	get, put bool
}

func (f failing) Get(k string) ([]byte, error) {
	if f.get {
		return nil, errors.New("disk on fire")
	}
	return f.MemState.Get(k)
}

func (f failing) Put(k string, v []byte) error {
	if f.put {
		return errors.New("disk full")
	}
	return f.MemState.Put(k, v)
}

func TestStateErrors(t *testing.T) {
	// A host's storage failure surfaces as EINTERNAL (with its cause kept
	// for the logs), never as a contract verdict like ENOTFOUND.
	tests := []struct {
		name     string
		note     string
		get, put bool
		op       string
		args     any
	}{
		{"ErrInternal/GetOnRegister", "a failed read is not 'org does not exist'", true, false, consent.OpRegisterOrg, consent.RegisterOrgArgs{ID: "o-9", Name: "x", Type: consent.OrgLab}},
		{"ErrInternal/PutOnRegister", "a failed write is reported", false, true, consent.OpRegisterOrg, consent.RegisterOrgArgs{ID: "o-9", Name: "x", Type: consent.OrgLab}},
		{"ErrInternal/GetOnGrant", "a failed read of the grantee is not 'grantee unknown'", true, false, consent.OpGrantConsent, grant},
		{"ErrInternal/PutOnGrant", "a failed write of a consent is reported", false, true, consent.OpGrantConsent, grant},
		{"ErrInternal/PutOnRevoke", "a failed write of a revocation is reported", false, true, consent.OpRevokeConsent, consent.RevokeConsentArgs{ID: consentP1, By: patient1}},
		{"ErrInternal/PutOnAnchor", "a failed write of an anchor is reported", false, true, consent.OpAnchorRecord, anchor},
		{"ErrInternal/GetOnLog", "a failed existence check is not 'new entry'", true, false, consent.OpLogAccess, entry("e-9", tNow)},
		{"ErrInternal/PutOnBatch", "a failed batch write is reported", false, true, consent.OpLogAccessBatch, consent.LogAccessBatchArgs{Entries: []consent.AccessEntry{entry("e-9", tNow)}}},
		{"ErrInternal/GetOnQuery", "a failed read in a query is not 'not found'", true, false, consent.QueryGetConsent, consent.IDArgs{ID: consentP1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Log(tt.note)
			st := failing{MemState: seeded(t).st, get: tt.get, put: tt.put}
			var err error
			if consent.IsQuery(tt.op) {
				_, err = consent.Query(st, tt.op, mustJSON(t, tt.args))
			} else {
				_, err = consent.Apply(st, tt.op, mustJSON(t, tt.args))
			}
			checkCode(t, err, consent.EINTERNAL)
			if consent.ErrorMessage(err) == "" || errors.Unwrap(err) == nil {
				t.Errorf("error %v lacks a message or cause", err)
			}
		})
	}
}

// command is one step of a deterministic script.
type command struct {
	id   string
	time time.Time
	op   string
	args any
}

// script exercises every operation, including rejected ones (whose partial
// writes, if any, must be deterministic too).
func script() []command {
	at := func(min int) time.Time { return tNow.Add(time.Duration(min) * time.Minute) }
	until := at(60 * 24)
	return []command{
		{"t1", at(0), consent.OpRegisterOrg, consent.RegisterOrgArgs{ID: "h", Name: "H", Type: consent.OrgHospital}},
		{"t2", at(1), consent.OpRegisterOrg, consent.RegisterOrgArgs{ID: "i", Name: "I", Type: consent.OrgInsurer}},
		{"t3", at(2), consent.OpGrantConsent, consent.GrantConsentArgs{ID: "c1", PatientRef: patient1, Grantee: consent.Grantee{Org: "h", SubjectRef: actor1}, Categories: []string{"lab", "*", "imaging", "lab"}, Records: []string{"r2", "r1"}, Purposes: []string{"TREAT", "ETREAT"}, ValidUntil: &until}},
		{"t4", at(3), consent.OpGrantConsent, consent.GrantConsentArgs{ID: "c2", PatientRef: patient2, Grantee: consent.Grantee{Org: "i"}, Categories: []string{"claims"}, Purposes: []string{"HPAYMT"}}},
		{"t5", at(4), consent.OpAnchorRecord, consent.Anchor{RecordID: "r1", Version: 1, PatientRef: patient1, Org: "h", Category: "lab", Hash: hash1}},
		{"t6", at(5), consent.OpLogAccess, entry("e1", at(5))},
		{"t7", at(6), consent.OpLogAccessBatch, consent.LogAccessBatchArgs{Entries: []consent.AccessEntry{entry("e3", at(2)), entry("e2", at(6)), entry("e3", at(7))}}},
		{"t8", at(7), consent.OpLogAccessBatch, consent.LogAccessBatchArgs{Entries: []consent.AccessEntry{entry("e4", at(8)), with(entry("e5", at(8)), func(e *consent.AccessEntry) { e.Role = "" })}}},
		{"t9", at(8), consent.OpRevokeConsent, consent.RevokeConsentArgs{ID: "c1", By: patient1}},
		{"t10", at(9), consent.OpRevokeConsent, consent.RevokeConsentArgs{ID: "c1", By: patient1}},
		{"t11", at(10), consent.OpSetOrgStatus, consent.SetOrgStatusArgs{ID: "i", Status: consent.StatusInactive}},
		{"t12", at(11), consent.OpGrantConsent, consent.GrantConsentArgs{ID: "c3", PatientRef: patient2, Grantee: consent.Grantee{Org: "i"}, Categories: []string{"lab"}, Purposes: []string{"HPAYMT"}}},
		{"t13", at(12), consent.OpLogAccessBatch, consent.LogAccessBatchArgs{Entries: []consent.AccessEntry{entry("e1", at(5)), entry("e6", at(1))}}},
	}
}

// outcome is what one command produced.
type outcome struct {
	Result []byte
	Code   string
}

// runScript applies cmds to a fresh MemState and returns its data and the
// per-command outcomes.
func runScript(t *testing.T, cmds []command) (map[string][]byte, []outcome) {
	t.Helper()
	st := consent.NewMemState()
	st.Submitter = submitter
	var outs []outcome
	for _, c := range cmds {
		st.ID, st.Time = c.id, c.time
		out, err := consent.Apply(st, c.op, mustJSON(t, c.args))
		outs = append(outs, outcome{out, consent.ErrorCode(err)})
	}
	return st.Data, outs
}

func TestDeterminism(t *testing.T) {
	t.Run("OK/SameScript", func(t *testing.T) {
		// The same commands with the same tx metadata give byte-identical
		// state and results on every run.
		data, outs := runScript(t, script())
		for run := 0; run < 5; run++ {
			data2, outs2 := runScript(t, script())
			if diff := cmp.Diff(data, data2); diff != "" {
				t.Fatalf("run %d: state differs (-first +this):\n%s", run, diff)
			}
			if diff := cmp.Diff(outs, outs2); diff != "" {
				t.Fatalf("run %d: outcomes differ (-first +this):\n%s", run, diff)
			}
		}
		// The script is only a good witness if it exercises rejections too.
		var codes []string
		for _, o := range outs {
			codes = append(codes, o.Code)
		}
		want := []string{"", "", "", "", "", "", "", consent.EINVALID, "", consent.ECONFLICT, "", consent.EINVALID, ""}
		if diff := cmp.Diff(want, codes); diff != "" {
			t.Errorf("script outcomes (-want +got):\n%s", diff)
		}
	})
	t.Run("OK/ScopeOrder", func(t *testing.T) {
		// Permuting or repeating scope items changes nothing stored.
		base := script()
		data, _ := runScript(t, base)
		perms := [][3][]string{
			{{"*", "imaging", "lab"}, {"r1", "r2"}, {"ETREAT", "TREAT"}},
			{{"lab", "imaging", "*"}, {"r2", "r1", "r2"}, {"TREAT", "ETREAT", "TREAT"}},
			{{"imaging", "lab", "lab", "*", "imaging"}, {"r1", "r2", "r1"}, {"ETREAT", "ETREAT", "TREAT"}},
		}
		for i, p := range perms {
			cmds := slices.Clone(base)
			g := cmds[2].args.(consent.GrantConsentArgs)
			g.Categories, g.Records, g.Purposes = p[0], p[1], p[2]
			cmds[2].args = g
			data2, _ := runScript(t, cmds)
			if diff := cmp.Diff(data, data2); diff != "" {
				t.Errorf("permutation %d: state differs (-base +perm):\n%s", i, diff)
			}
		}
	})
	t.Run("OK/TimeZone", func(t *testing.T) {
		// The zone a host or caller expresses an instant in changes nothing
		// stored: keys and values are UTC.
		base := script()
		data, _ := runScript(t, base)
		cmds := slices.Clone(base)
		zone := time.FixedZone("X", -7*3600)
		for i := range cmds {
			cmds[i].time = cmds[i].time.In(zone)
			if e, ok := cmds[i].args.(consent.AccessEntry); ok {
				e.Time = e.Time.In(zone)
				cmds[i].args = e
			}
		}
		data2, _ := runScript(t, cmds)
		if diff := cmp.Diff(data, data2); diff != "" {
			t.Errorf("state differs (-utc +zoned):\n%s", diff)
		}
	})
}

func TestFailedOpReportsError(t *testing.T) {
	// The contract may leave partial writes behind a failed op (here: the
	// batch's first entry); hosts discard a failed tx's writes. What the
	// contract owes them is the error.
	w := seeded(t)
	bad := with(entry("e-2", tNow), func(e *consent.AccessEntry) { e.Decision = "?" })
	out, err := w.apply(consent.OpLogAccessBatch, consent.LogAccessBatchArgs{Entries: []consent.AccessEntry{entry("e-1", tNow), bad}})
	checkCode(t, err, consent.EINVALID)
	if out != nil {
		t.Errorf("result = %s, want nil", out)
	}
}

func TestNewPseudonymizer(t *testing.T) {
	t.Run("ErrInvalid", func(t *testing.T) {
		// A short pepper would make pseudonyms guessable.
		_, err := consent.NewPseudonymizer(make([]byte, 31))
		checkCode(t, err, consent.EINVALID)
	})
	t.Run("OK", func(t *testing.T) {
		// Pseudonyms are stable, 43-char, and separate patients from
		// subjects with the same id.
		refs := []string{pz.PatientRef("x"), pz.PatientRef("x"), pz.SubjectRef("x"), pz.PatientRef("y")}
		for _, r := range refs {
			if len(r) != 43 {
				t.Errorf("ref %q has %d chars", r, len(r))
			}
		}
		if refs[0] != refs[1] || refs[0] == refs[2] || refs[0] == refs[3] {
			t.Errorf("refs = %q", refs)
		}
	})
}

func ExampleApply() {
	st := consent.NewMemState()
	st.ID, st.Time = "tx-1", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	out, err := consent.Apply(st, consent.OpRegisterOrg, []byte(`{"id":"h-1","name":"General","type":"hospital"}`))
	fmt.Println(string(out), err)
	_, err = consent.Apply(st, consent.OpRegisterOrg, []byte(`{"id":"h-1","name":"Again","type":"hospital"}`))
	fmt.Println(consent.ErrorCode(err))
	// Output:
	// {"id":"h-1","name":"General","type":"hospital","status":"active","createdAt":"2025-01-02T03:04:05Z","updatedAt":"2025-01-02T03:04:05Z"} <nil>
	// conflict
}
