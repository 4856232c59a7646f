package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
)

// Only an engine on the embedded policies caches decisions: a policy from
// a directory may read the time otherwise.
func TestDecisionCacheOnlyForEmbeddedPolicies(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Subject: Subject{ID: "p-7", Role: RolePatient, Ref: "s", PatientRef: "p7"}, Action: ActionRead,
		Resource: Resource{Type: "record", ID: "r-1", Patient: "p7", Category: "lab", Org: "h"}, Time: time.Now()}
	if _, err := e.Decide(ctx, in); err != nil {
		t.Fatal(err)
	}
	if e.decisions == nil || len(e.decisions.m) != 1 {
		t.Fatalf("embedded policies: decision cache %+v, want one entry", e.decisions)
	}
	if e, err = New(ctx, Options{NoDecisionCache: true}); err != nil || e.decisions != nil {
		t.Fatalf("NoDecisionCache: %v, cache %v", err, e.decisions)
	}
	dir := t.TempDir()
	srcs, err := loadSources("")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(s.text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if e, err = New(ctx, Options{Dir: dir}); err != nil || e.decisions != nil {
		t.Fatalf("policy dir: %v, cache %v", err, e.decisions)
	}
}

// A cached decision holds between the consents' bounds around its time.
func TestDecisionCacheSpan(t *testing.T) {
	c := newDecisionCache()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	until := t0.Add(time.Hour)
	in := Input{Time: t0, Consents: []consent.Consent{
		{ID: "a", ValidFrom: t0.Add(-time.Hour), ValidUntil: &until},
		{ID: "b", ValidFrom: t0.Add(time.Minute)},
		{ID: "c", ValidFrom: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}, // outside int64 nanoseconds: no bound
	}}
	key, now, ok := decisionKey(&in)
	if !ok {
		t.Fatal("input not cacheable")
	}
	c.put(key, &in, now, Decision{Allow: true, Reasons: []string{"r"}})
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{t0.Add(-time.Hour - 1), false},
		{t0.Add(-time.Hour), true},
		{t0, true},
		{t0.Add(time.Minute - 1), true},
		{t0.Add(time.Minute), false},
	} {
		if _, hit := c.get(key, tc.at.UnixNano()); hit != tc.want {
			t.Errorf("at %v: hit %v, want %v", tc.at, hit, tc.want)
		}
	}
	in.Time = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, ok := decisionKey(&in); ok {
		t.Error("a time outside int64 nanoseconds is cacheable")
	}
}
