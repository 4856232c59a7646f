package policy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// The decision cache answers exactly as an evaluation would: over inputs
// that differ in subject, purpose, resource, break-glass and consents, at
// times on both sides of every consent's validFrom and validUntil (to the
// nanosecond), asked in random order and more than once each.
func TestDecisionCacheAgreesWithEvaluation(t *testing.T) {
	cached := MustEngine(t, policy.Options{})
	plain := MustEngine(t, policy.Options{NoDecisionCache: true})
	base := now()
	bounds := []time.Time{base.Add(-time.Hour), base, base.Add(time.Minute), base.Add(time.Hour)}
	var consentSets [][]consent.Consent
	for i, from := range bounds {
		for j, until := range append([]*time.Time{nil}, at(base.Add(30*time.Second)), at(base.Add(2*time.Hour))) {
			consentSets = append(consentSets, []consent.Consent{
				grant(func(c *consent.Consent) { c.ValidFrom, c.ValidUntil = from, until }),
				grant(func(c *consent.Consent) {
					c.ID, c.Categories, c.ValidFrom = "c-2", []string{"imaging"}, bounds[(i+j)%len(bounds)]
				}),
			})
		}
	}
	consentSets = append(consentSets, nil, []consent.Consent{grant(func(c *consent.Consent) { c.Status = consent.StatusRevoked; c.Version = 2 })})
	var inputs []policy.Input
	for _, cs := range consentSets {
		for _, sub := range []policy.Subject{providerB(), patientP7(), insurerX()} {
			for _, purpose := range []string{consent.PurposeTreat, consent.PurposeEmergency, consent.PurposePayment} {
				for _, res := range []policy.Resource{record("r-1", "lab"), record("r-2", "imaging"), record("r-3", "mental-health")} {
					in := policy.Input{Subject: sub, Action: policy.ActionRead, Resource: res, Purpose: purpose, Consents: cs}
					if purpose == consent.PurposeEmergency {
						in.Emergency = policy.Emergency{Declared: true, Reason: "unconscious on arrival"}
					}
					inputs = append(inputs, in)
				}
			}
		}
	}
	var times []time.Time
	for _, b := range append(bounds, base.Add(30*time.Second), base.Add(2*time.Hour)) {
		times = append(times, b.Add(-time.Nanosecond), b, b.Add(time.Nanosecond), b.Add(10*time.Second))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	checked, allowed := 0, 0
	for range 3 {
		for _, i := range rng.Perm(len(inputs)) {
			for _, k := range rng.Perm(len(times)) {
				in := inputs[i]
				in.Time = times[k]
				want, err := plain.Decide(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				got, err := cached.Decide(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("input %d at %v: cached %+v, evaluated %+v", i, in.Time, got, want)
				}
				checked++
				if want.Allow {
					allowed++
				}
			}
		}
	}
	if allowed == 0 || allowed == checked {
		t.Fatalf("%d of %d decisions allowed: the inputs do not exercise both answers", allowed, checked)
	}
	t.Logf("%d decisions agreed (%d allowed)", checked, allowed)
}

// A revoke makes a new consent version: the next decision is evaluated, not
// the cached allow.
func TestDecisionCacheFollowsRevocation(t *testing.T) {
	e := MustEngine(t, policy.Options{})
	in := policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"),
		Purpose: consent.PurposeTreat, Consents: []consent.Consent{grant(nil)}, Time: now()}
	for range 2 {
		if d := MustDecide(t, e, in); !d.Allow {
			t.Fatalf("active consent: %+v", d)
		}
	}
	in.Consents = []consent.Consent{grant(func(c *consent.Consent) { c.Status, c.Version = consent.StatusRevoked, 2 })}
	if d := MustDecide(t, e, in); d.Allow {
		t.Fatalf("after the revoke the cached allow came back: %+v", d)
	}
	in.Consents = nil
	if d := MustDecide(t, e, in); d.Allow {
		t.Fatalf("with no consent: %+v", d)
	}
}

// A caller changing a decision's slices does not change later answers.
func TestDecisionCacheReturnsCopies(t *testing.T) {
	e := MustEngine(t, policy.Options{})
	in := policy.Input{Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"),
		Purpose: consent.PurposeTreat, Consents: []consent.Consent{grant(nil)}, Time: now()}
	d := MustDecide(t, e, in)
	want := fmt.Sprint(d.Reasons)
	d.Reasons[0] = "tampered"
	again := MustDecide(t, e, in)
	again.Reasons[0] += "!"
	if got := fmt.Sprint(MustDecide(t, e, in).Reasons); got != want {
		t.Fatalf("reasons %s, want %s", got, want)
	}
}
