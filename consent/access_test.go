package consent_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

// anchor is a valid, not yet anchored record version.
var anchor = consent.Anchor{RecordID: "rec-1", Version: 1, PatientRef: patient1, Org: orgHosp, Category: "imaging", Hash: hash1}

func TestAnchorRecord(t *testing.T) {
	a := func(fn func(*consent.Anchor)) consent.Anchor { return with(anchor, fn) }
	stored := with(anchor, func(a *consent.Anchor) { a.AnchoredAt, a.Tx = tNow, txTest })
	runRows(t, consent.OpAnchorRecord, []row[consent.Anchor]{
		{
			name: "OK", note: "an anchor is stamped with tx time and id and readable by record and version",
			args: anchor, want: &stored,
			check: func(w *world, got consent.Anchor) {
				if diff := cmp.Diff(got, *mustQuery[*consent.Anchor](w, consent.QueryGetAnchor, consent.AnchorArgs{RecordID: "rec-1", Version: 1})); diff != "" {
					w.tb.Errorf("GetAnchor (-result +stored):\n%s", diff)
				}
			},
		},
		{
			name: "OK/CallerStampsIgnored", note: "anchoredAt and tx come from the transaction, not the caller",
			args: a(func(a *consent.Anchor) { a.AnchoredAt, a.Tx = tSeed.Add(-time.Hour), "forged" }), want: &stored,
		},
		{
			name: "OK/NextVersion", note: "each version of a record gets its own anchor",
			args: a(func(a *consent.Anchor) { a.RecordID = recordSeed; a.Version = 2 }),
			want: &consent.Anchor{RecordID: recordSeed, Version: 2, PatientRef: patient1, Org: orgHosp, Category: "imaging", Hash: hash1, AnchoredAt: tNow, Tx: txTest},
		},
		{name: "ErrConflict", note: "a record version is anchored once", args: a(func(a *consent.Anchor) { a.RecordID = recordSeed }), code: consent.ECONFLICT},
		{name: "ErrNotFound/UnknownOrg", note: "the authoring org must be registered", args: a(func(a *consent.Anchor) { a.Org = "nobody" }), code: consent.ENOTFOUND},
		{name: "ErrForbidden/InactiveOrg", note: "an inactive org cannot anchor", args: a(func(a *consent.Anchor) { a.Org = orgInactive }), code: consent.EFORBIDDEN},
		{name: "ErrInvalid/BadOrg", note: "a malformed org id is invalid", args: a(func(a *consent.Anchor) { a.Org = "" }), code: consent.EINVALID},
		{name: "ErrInvalid/HashShort", note: "the hash is base64url of 32 bytes: 43 chars", args: a(func(a *consent.Anchor) { a.Hash = hash1[:40] }), code: consent.EINVALID},
		{name: "ErrInvalid/HashPadded", note: "base64url without padding", args: a(func(a *consent.Anchor) { a.Hash = hash1 + "=" }), code: consent.EINVALID},
		{name: "ErrInvalid/HashHex", note: "a hex sha256 is not the agreed encoding", args: a(func(a *consent.Anchor) { a.Hash = long("ab", 64) }), code: consent.EINVALID},
		{name: "ErrInvalid/HashChars", note: "std base64 characters are rejected", args: a(func(a *consent.Anchor) { a.Hash = "/" + hash1[1:] }), code: consent.EINVALID},
		{name: "ErrInvalid/RecordID", note: "record ids must be valid ids", args: a(func(a *consent.Anchor) { a.RecordID = "rec 1" }), code: consent.EINVALID},
		{name: "ErrInvalid/VersionZero", note: "versions start at 1", args: a(func(a *consent.Anchor) { a.Version = 0 }), code: consent.EINVALID},
		{name: "ErrInvalid/PatientRef", note: "the patient must be a pseudonym", args: a(func(a *consent.Anchor) { a.PatientRef = "p-1" }), code: consent.EINVALID},
		{name: "ErrInvalid/Category", note: "the category must be a lowercase token", args: a(func(a *consent.Anchor) { a.Category = "Imaging" }), code: consent.EINVALID},
		{name: "ErrInvalid/WildcardCategory", note: "a record has one real category; * is only for consents", args: a(func(a *consent.Anchor) { a.Category = consent.WildcardCategory }), code: consent.EINVALID},
	})
}

func TestGetAnchor(t *testing.T) {
	runRows(t, consent.QueryGetAnchor, []row[consent.Anchor]{
		{
			name: "OK", note: "the fixture anchor is returned as stored",
			args: consent.AnchorArgs{RecordID: recordSeed, Version: 1},
			want: &consent.Anchor{RecordID: recordSeed, Version: 1, PatientRef: patient1, Org: orgHosp, Category: "lab", Hash: hash1, AnchoredAt: tSeed, Tx: txSeed},
		},
		{name: "ErrNotFound/Version", note: "an unanchored version of a known record is not found", args: consent.AnchorArgs{RecordID: recordSeed, Version: 2}, code: consent.ENOTFOUND},
		{name: "ErrNotFound/Record", note: "an unknown record is not found", args: consent.AnchorArgs{RecordID: "rec-none", Version: 1}, code: consent.ENOTFOUND},
		{name: "ErrInvalid/Version", note: "version 0 is invalid", args: consent.AnchorArgs{RecordID: recordSeed}, code: consent.EINVALID},
		{name: "ErrInvalid/RecordID", note: "a malformed record id is invalid", args: consent.AnchorArgs{RecordID: "", Version: 1}, code: consent.EINVALID},
	})
}

func TestLogAccess(t *testing.T) {
	e1 := entry("e-1", tNow.Add(-time.Minute))
	e := func(fn func(*consent.AccessEntry)) consent.AccessEntry { return with(e1, fn) }
	runRows(t, consent.OpLogAccess, []row[consent.AccessEntry]{
		{
			name: "OK", note: "an entry is stamped with tx time and id and readable by id",
			args: e1, want: ptr(logged(e1)),
			check: func(w *world, got consent.AccessEntry) {
				if diff := cmp.Diff(got, *mustQuery[*consent.AccessEntry](w, consent.QueryGetAccess, consent.IDArgs{ID: "e-1"}), cmpOpts...); diff != "" {
					w.tb.Errorf("GetAccess (-result +stored):\n%s", diff)
				}
			},
		},
		{
			name: "OK/Minimal", note: "a denied attempt with no record, org, purpose, consent or reasons is loggable; reasons become []",
			args: consent.AccessEntry{ID: "e-min", Time: tNow, Action: "read", PatientRef: patient2, ActorRef: actor1, Role: "unknown", Decision: consent.DecisionDeny},
			want: &consent.AccessEntry{ID: "e-min", Time: tNow, Action: "read", PatientRef: patient2, ActorRef: actor1, Role: "unknown", Decision: consent.DecisionDeny, Reasons: []string{}, AnchoredAt: tNow, Tx: txTest},
		},
		{
			name: "OK/TimeToUTC", note: "an entry time in another zone is stored in UTC, same instant",
			args: e(func(e *consent.AccessEntry) { e.Time = e.Time.In(time.FixedZone("X", 5*3600)) }), want: ptr(logged(e1)),
		},
		{
			name: "OK/CallerStampsIgnored", note: "anchoredAt and tx come from the transaction, not the caller",
			args: e(func(e *consent.AccessEntry) { e.AnchoredAt, e.Tx = tSeed, "forged" }), want: ptr(logged(e1)),
		},
		{
			name: "OK/BreakGlass", note: "break-glass reads are logged with their flag",
			args: e(func(e *consent.AccessEntry) { e.BreakGlass, e.Purpose = true, consent.PurposeEmergency }),
			check: func(w *world, got consent.AccessEntry) {
				if !got.BreakGlass {
					w.tb.Error("breakGlass lost")
				}
			},
		},
		{name: "ErrConflict", note: "an entry id is logged once", args: e(func(e *consent.AccessEntry) { e.ID = entrySeed }), code: consent.ECONFLICT},
		{name: "ErrInvalid/ID", note: "entry ids must be valid ids", args: e(func(e *consent.AccessEntry) { e.ID = "" }), code: consent.EINVALID},
		{name: "ErrInvalid/NoTime", note: "an entry needs its time", args: e(func(e *consent.AccessEntry) { e.Time = time.Time{} }), code: consent.EINVALID},
		{name: "ErrInvalid/TimeOutOfRange", note: "a time whose UTC year passes 9999 is invalid input, not an encode failure", args: []byte(`{"id":"e-1","time":"9999-12-31T23:30:00-01:00","action":"read","patientRef":"` + patient1 + `","actorRef":"` + actor1 + `","role":"x","decision":"allow"}`), code: consent.EINVALID},
		{name: "ErrInvalid/TimeBeforeYear0", note: "a time whose UTC year is -1 is invalid input, not an encode failure", args: []byte(`{"id":"e-1","time":"0000-01-01T00:30:00+01:00","action":"read","patientRef":"` + patient1 + `","actorRef":"` + actor1 + `","role":"x","decision":"allow"}`), code: consent.EINVALID},
		{name: "ErrInvalid/RecordID", note: "a record id, when given, must be valid", args: e(func(e *consent.AccessEntry) { e.RecordID = "r/1" }), code: consent.EINVALID},
		{name: "ErrInvalid/PatientRef", note: "the patient must be a pseudonym", args: e(func(e *consent.AccessEntry) { e.PatientRef = "" }), code: consent.EINVALID},
		{name: "ErrInvalid/ActorRef", note: "the actor must be a pseudonym, never a raw subject id", args: e(func(e *consent.AccessEntry) { e.ActorRef = "dr-1" }), code: consent.EINVALID},
		{name: "ErrInvalid/Decision", note: "decisions are allow or deny", args: e(func(e *consent.AccessEntry) { e.Decision = "maybe" }), code: consent.EINVALID},
		{name: "ErrInvalid/Purpose", note: "a purpose, when given, must be an accepted code", args: e(func(e *consent.AccessEntry) { e.Purpose = "FUN" }), code: consent.EINVALID},
		{name: "ErrInvalid/NoAction", note: "the action is required", args: e(func(e *consent.AccessEntry) { e.Action = "" }), code: consent.EINVALID},
		{name: "ErrInvalid/ActionTooLong", note: "actions are at most 32 bytes", args: e(func(e *consent.AccessEntry) { e.Action = long("a", 33) }), code: consent.EINVALID},
		{name: "ErrInvalid/NoRole", note: "the role is required", args: e(func(e *consent.AccessEntry) { e.Role = "" }), code: consent.EINVALID},
		{name: "ErrInvalid/RoleTooLong", note: "roles are at most 32 bytes", args: e(func(e *consent.AccessEntry) { e.Role = long("r", 33) }), code: consent.EINVALID},
		{name: "ErrInvalid/Org", note: "an org, when given, must be a valid id", args: e(func(e *consent.AccessEntry) { e.Org = "o/1" }), code: consent.EINVALID},
		{name: "ErrInvalid/ConsentID", note: "a consent id, when given, must be valid", args: e(func(e *consent.AccessEntry) { e.ConsentID = "c 1" }), code: consent.EINVALID},
		{name: "ErrInvalid/TooManyReasons", note: "at most 32 reasons", args: e(func(e *consent.AccessEntry) { e.Reasons = repeat("r", 33) }), code: consent.EINVALID},
		{name: "ErrInvalid/ReasonTooLong", note: "reasons are at most 512 bytes", args: e(func(e *consent.AccessEntry) { e.Reasons = []string{long("r", 513)} }), code: consent.EINVALID},
		{name: "ErrInvalid/ReasonNUL", note: "reasons may not hold NUL", args: e(func(e *consent.AccessEntry) { e.Reasons = []string{"a\x00b"} }), code: consent.EINVALID},
		{name: "ErrInvalid/PolicyDigestTooLong", note: "policy digests are at most 128 bytes", args: e(func(e *consent.AccessEntry) { e.PolicyDigest = long("d", 129) }), code: consent.EINVALID},
	})
}

func TestGetAccess(t *testing.T) {
	runRows(t, consent.QueryGetAccess, []row[consent.AccessEntry]{
		{
			name: "OK", note: "the fixture entry is returned as stored",
			args: consent.IDArgs{ID: entrySeed},
			want: ptr(with(entry(entrySeed, tSeed), func(e *consent.AccessEntry) { e.AnchoredAt, e.Tx = tSeed, txSeed })),
		},
		{name: "ErrNotFound", note: "an unknown id is not found", args: consent.IDArgs{ID: "e-none"}, code: consent.ENOTFOUND},
		{name: "ErrInvalid", note: "a malformed id is invalid", args: consent.IDArgs{ID: "-e"}, code: consent.EINVALID},
	})
}

func TestLogAccessBatch(t *testing.T) {
	e1, e2, e3 := entry("b-1", tNow), entry("b-2", tNow.Add(time.Second)), entry("b-3", tNow.Add(-time.Second))
	batch := func(es ...consent.AccessEntry) consent.LogAccessBatchArgs {
		return consent.LogAccessBatchArgs{Entries: es}
	}
	stored := func(w *world, want ...consent.AccessEntry) {
		w.tb.Helper()
		for _, e := range want {
			got := mustQuery[*consent.AccessEntry](w, consent.QueryGetAccess, consent.IDArgs{ID: e.ID})
			if diff := cmp.Diff(e, *got, cmpOpts...); diff != "" {
				w.tb.Errorf("stored %s (-want +got):\n%s", e.ID, diff)
			}
		}
	}
	runRows(t, consent.OpLogAccessBatch, []row[consent.BatchResult]{
		{
			name: "OK", note: "every new entry is logged, in batch order, stamped by the tx",
			args:  batch(e1, e2, e3),
			want:  &consent.BatchResult{Logged: []string{"b-1", "b-2", "b-3"}, Skipped: []string{}},
			check: func(w *world, _ consent.BatchResult) { stored(w, logged(e1), logged(e2), logged(e3)) },
		},
		{
			name: "OK/SkipsLogged", note: "ids already on the ledger are skipped, new ones logged",
			args: batch(entry(entrySeed, tNow), e1),
			want: &consent.BatchResult{Logged: []string{"b-1"}, Skipped: []string{entrySeed}},
			check: func(w *world, _ consent.BatchResult) {
				// The skipped entry keeps its original time and tx.
				stored(w, with(entry(entrySeed, tSeed), func(e *consent.AccessEntry) { e.AnchoredAt, e.Tx = tSeed, txSeed }))
			},
		},
		{
			name: "OK/DuplicateInBatch", note: "a repeated id inside one batch is logged once, first occurrence wins",
			args: batch(e1, with(e1, func(e *consent.AccessEntry) { e.Action = "export" }), e2),
			want: &consent.BatchResult{Logged: []string{"b-1", "b-2"}, Skipped: []string{"b-1"}},
			check: func(w *world, _ consent.BatchResult) {
				stored(w, logged(e1))
				page := mustQuery[*consent.AccessPage](w, consent.QueryListAccess, consent.AccessFilter{})
				if len(page.Entries) != 3 { // entrySeed, b-1, b-2
					w.tb.Errorf("log holds %d entries, want 3", len(page.Entries))
				}
			},
		},
		{
			name: "OK/MaxBatch", note: "1000 entries is the limit, inclusive",
			args: batch(entries("m", 1000, tNow)...),
			check: func(w *world, got consent.BatchResult) {
				if len(got.Logged) != 1000 || len(got.Skipped) != 0 {
					w.tb.Errorf("logged %d, skipped %d; want 1000, 0", len(got.Logged), len(got.Skipped))
				}
			},
		},
		{name: "ErrInvalid/Empty", note: "an empty batch is a caller bug", args: batch(), code: consent.EINVALID},
		{name: "ErrInvalid/NoEntries", note: "a batch without the entries field is empty", args: []byte(`{}`), code: consent.EINVALID},
		{name: "ErrInvalid/TooLarge", note: "more than 1000 entries is rejected", args: batch(entries("m", 1001, tNow)...), code: consent.EINVALID},
		{
			name: "ErrInvalid/OneBadEntry", note: "one invalid entry fails the whole batch (the host discards the earlier entries' writes)",
			args: batch(e1, e2, with(e3, func(e *consent.AccessEntry) { e.Decision = "" })), code: consent.EINVALID,
		},
		{
			name: "ErrInvalid/BadSkippedEntry", note: "a duplicate is still validated: retries cannot smuggle junk past the check",
			args: batch(with(entry(entrySeed, tNow), func(e *consent.AccessEntry) { e.ActorRef = "x" })), code: consent.EINVALID,
		},
	})

	t.Run("OK/Retry", func(t *testing.T) {
		// A retried batch skips every entry and writes nothing: the state
		// is byte-for-byte what the first attempt left.
		w := seeded(t)
		b := batch(e1, e2, e3)
		first := mustDecode[consent.BatchResult](t, w.mustApply(consent.OpLogAccessBatch, b))
		before := maps.Clone(w.st.Data)
		w.st.ID, w.st.Time = "tx-retry", tNow.Add(time.Hour)
		got := mustDecode[consent.BatchResult](t, w.mustApply(consent.OpLogAccessBatch, b))
		want := consent.BatchResult{Logged: []string{}, Skipped: first.Logged}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("retry result (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(before, w.st.Data); diff != "" {
			t.Errorf("retry changed state (-before +after):\n%s", diff)
		}
	})
	t.Run("OK/SingleThenBatch", func(t *testing.T) {
		// An entry logged alone (LogAccess) is skipped by a later batch:
		// the outbox worker may re-send what a direct log already holds.
		w := seeded(t)
		w.mustApply(consent.OpLogAccess, e1)
		got := mustDecode[consent.BatchResult](t, w.mustApply(consent.OpLogAccessBatch, batch(e1, e2)))
		if diff := cmp.Diff(consent.BatchResult{Logged: []string{"b-2"}, Skipped: []string{"b-1"}}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// entries returns n valid entries prefix-0000… at t, t+1ms, ...
func entries(prefix string, n int, t time.Time) []consent.AccessEntry {
	out := make([]consent.AccessEntry, n)
	for i, id := range seq(prefix, n) {
		out[i] = entry(id, t.Add(time.Duration(i)*time.Millisecond))
	}
	return out
}

// accessLog is a state whose log holds, besides entrySeed (patient1 at
// tSeed), entries logged out of time order over several transactions:
// patient1 a-0..a-4 and patient2 b-0..b-2, interleaved in time, plus two
// entries at the same instant whose ids break the tie.
func accessLog(tb testing.TB) *world {
	w := seeded(tb)
	at := func(min int) time.Time { return tNow.Add(time.Duration(min) * time.Minute) }
	p2 := func(e consent.AccessEntry) consent.AccessEntry { e.PatientRef = patient2; return e }
	for i, b := range [][]consent.AccessEntry{
		{entry("a-3", at(30)), p2(entry("b-1", at(25)))},
		{entry("a-0", at(5)), entry("a-4", at(40)), p2(entry("b-2", at(35)))},
		{p2(entry("b-0", at(1))), entry("a-2", at(20)), entry("a-1", at(20))},
	} {
		w.st.ID, w.st.Time = fmt.Sprintf("log-%d", i), tNow.Add(time.Hour)
		w.mustApply(consent.OpLogAccessBatch, consent.LogAccessBatchArgs{Entries: b})
	}
	return w
}

func TestListAccess(t *testing.T) {
	ids := func(want ...string) func(w *world, got consent.AccessPage) {
		return func(w *world, got consent.AccessPage) {
			var gotIDs []string
			for _, e := range got.Entries {
				gotIDs = append(gotIDs, e.ID)
			}
			if diff := cmp.Diff(want, gotIDs); diff != "" {
				w.tb.Errorf("ids (-want +got):\n%s", diff)
			}
			if got.Next != "" {
				w.tb.Errorf("next = %q on the last page", got.Next)
			}
		}
	}
	tests := []struct {
		name  string
		note  string
		args  any
		code  string
		check func(w *world, got consent.AccessPage)
	}{
		{"OK/All", "every entry oldest first, ties broken by id, whatever the logging order", consent.AccessFilter{}, "", ids(entrySeed, "b-0", "a-0", "a-1", "a-2", "b-1", "a-3", "b-2", "a-4")},
		{"OK/ByPatient", "one patient's entries only, oldest first", consent.AccessFilter{PatientRef: patient2}, "", ids("b-0", "b-1", "b-2")},
		{"OK/NoEntries", "a patient with no entries gets an empty page with no next", consent.AccessFilter{PatientRef: pz.PatientRef("p-none")}, "", ids()},
		{"OK/ExactLastPage", "a page that ends exactly at the last entry has no next", consent.AccessFilter{PatientRef: patient2, Limit: 3}, "", ids("b-0", "b-1", "b-2")},
		{"OK/MaxLimit", "limit 1000 is accepted", consent.AccessFilter{Limit: 1000}, "", nil},
		{"OK/UnknownCursor", "a cursor past the end gives an empty page", consent.AccessFilter{After: "~"}, "", ids()},
		{"ErrInvalid/LimitTooLarge", "limit above 1000 is rejected", consent.AccessFilter{Limit: 1001}, consent.EINVALID, nil},
		{"ErrInvalid/PatientRef", "the patient filter must be a pseudonym", consent.AccessFilter{PatientRef: "p-1"}, consent.EINVALID, nil},
		{"ErrInvalid/CursorNUL", "cursors never hold NUL", consent.AccessFilter{After: "a\x00"}, consent.EINVALID, nil},
		{"ErrInvalid/CursorDEL", "cursors never hold DEL, the range-end marker", consent.AccessFilter{After: "\x7f"}, consent.EINVALID, nil},
		{"ErrInvalid/CursorTooLong", "cursors are at most 256 bytes", consent.AccessFilter{After: long("c", 257)}, consent.EINVALID, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Log(tt.note)
			w := accessLog(t)
			out, err := w.apply(consent.QueryListAccess, tt.args)
			checkCode(t, err, tt.code)
			if tt.check != nil {
				tt.check(w, mustDecode[consent.AccessPage](t, out))
			}
		})
	}

	t.Run("OK/Paging", func(t *testing.T) {
		// Following Next page by page, for every page size and filter,
		// yields exactly the unpaged listing.
		w := accessLog(t)
		for _, f := range []consent.AccessFilter{{}, {PatientRef: patient1}, {PatientRef: patient2}} {
			all := mustQuery[consent.AccessPage](w, consent.QueryListAccess, f)
			for limit := 1; limit <= len(all.Entries)+1; limit++ {
				f := f
				f.Limit = limit
				var got []consent.AccessEntry
				for pages := 0; ; pages++ {
					if pages > len(all.Entries) {
						t.Fatalf("%+v: paging does not end", f)
					}
					page := mustQuery[consent.AccessPage](w, consent.QueryListAccess, f)
					if len(page.Entries) > limit {
						t.Fatalf("%+v: page of %d entries", f, len(page.Entries))
					}
					if page.Next != "" && len(page.Entries) != limit {
						t.Fatalf("%+v: short page of %d with next %q", f, len(page.Entries), page.Next)
					}
					got = append(got, page.Entries...)
					if page.Next == "" {
						break
					}
					f.After = page.Next
				}
				if diff := cmp.Diff(all.Entries, got, cmpOpts...); diff != "" {
					t.Errorf("patient %q limit %d: paged != unpaged (-want +got):\n%s", f.PatientRef, limit, diff)
				}
			}
		}
	})

	t.Run("OK/DefaultLimit", func(t *testing.T) {
		// Limit 0 or negative means 100: 101 entries give a full page and
		// a next cursor leading to the last one.
		w := seeded(t)
		w.mustApply(consent.OpLogAccessBatch, consent.LogAccessBatchArgs{Entries: entries("d", 100, tNow)})
		for _, limit := range []int{0, -5} {
			page := mustQuery[consent.AccessPage](w, consent.QueryListAccess, consent.AccessFilter{Limit: limit})
			if len(page.Entries) != 100 || page.Next == "" {
				t.Fatalf("limit %d: %d entries, next %q; want 100 and a cursor", limit, len(page.Entries), page.Next)
			}
			last := mustQuery[consent.AccessPage](w, consent.QueryListAccess, consent.AccessFilter{Limit: limit, After: page.Next})
			if len(last.Entries) != 1 || last.Entries[0].ID != "d-0099" || last.Next != "" {
				t.Errorf("limit %d: second page %+v, want just d-0099", limit, last)
			}
		}
	})
}
