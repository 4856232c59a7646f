package policy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// BenchmarkDecide measures a consented read. With n consents, n-1 do not
// apply (other categories, purposes or statuses) and the applying one comes
// last, so every consent is examined.
//
// The other sub-benchmarks: harness decides the input cmd/medshare-bench
// measures ("policy decision (policy.Engine.Decide, in process)"); uncached
// gives each decision a consent the engine has not seen, so its input terms
// are built rather than reused; denied is a read without a consent.
func BenchmarkDecide(b *testing.B) {
	e := MustEngine(b, policy.Options{})
	for _, n := range []int{1, 1000} {
		consents := make([]consent.Consent, 0, n)
		for i := range n - 1 {
			consents = append(consents, grant(func(c *consent.Consent) {
				c.ID = fmt.Sprintf("c-%05d", i)
				switch i % 3 {
				case 0:
					c.Categories = []string{"imaging"}
				case 1:
					c.Purposes = []string{consent.PurposeResearch}
				default:
					c.Status = consent.StatusRevoked
				}
			}))
		}
		consents = append(consents, grant(func(c *consent.Consent) { c.ID = "c-99999" }))
		in := policy.Input{
			Subject: providerB(), Action: policy.ActionRead, Resource: record("r-1", "lab"),
			Purpose: consent.PurposeTreat, Consents: consents, Time: now(),
		}
		b.Run(fmt.Sprintf("consents=%d", n), func(b *testing.B) {
			benchDecide(b, e, func(int) policy.Input { return in }, true)
		})
	}
	b.Run("harness", func(b *testing.B) {
		in := harnessInput()
		benchDecide(b, e, func(int) policy.Input { return in }, true)
	})
	b.Run("uncached", func(b *testing.B) {
		// More consents than the engine keeps terms of, taken in turn.
		ins := make([]policy.Input, 10_000)
		for i := range ins {
			ins[i] = harnessInput()
			ins[i].Consents[0].ID = fmt.Sprintf("c-%d-hospital-b", i)
		}
		benchDecide(b, e, func(i int) policy.Input { return ins[i%len(ins)] }, true)
	})
	b.Run("denied", func(b *testing.B) {
		in := harnessInput()
		in.Consents = nil
		benchDecide(b, e, func(int) policy.Input { return in }, false)
	})
}

// benchDecide decides input(i) for i = 0, 1, ... and fails unless each
// decision allows as much as allow says.
func benchDecide(b *testing.B, e *policy.Engine, input func(int) policy.Input, allow bool) {
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d, err := e.Decide(ctx, input(i))
		if err != nil || d.Allow != allow {
			b.Fatalf("decision %+v, err %v", d, err)
		}
		i++
	}
}

// harnessInput is the input cmd/medshare-bench decides: a provider at
// hospital-b reads a "conditions" record of a patient known by pseudonym,
// who granted hospital-b one consent for TREAT naming every category of the
// corpus, with no end.
func harnessInput() policy.Input {
	ref := "Xq3v0c2l9dF1mUo7m2r8kV0nA5bTq4yWc1eRz6sJp0E"
	from := time.Now().Add(-time.Hour).Round(0)
	return policy.Input{
		Subject:  policy.Subject{ID: "dr-bo", Role: policy.RoleProvider, Org: "hospital-b", OrgType: consent.OrgHospital, Ref: "s-dr-bo"},
		Action:   policy.ActionRead,
		Purpose:  consent.PurposeTreat,
		Resource: policy.Resource{Type: "record", ID: "r-0", Patient: ref, Category: "conditions", Org: "hospital-a"},
		Consents: []consent.Consent{{
			ID: "c-0-hospital-b", PatientRef: ref, Grantee: consent.Grantee{Org: "hospital-b"},
			Categories: []string{"allergies", "conditions", "immunizations", "medications", "procedures"},
			Records:    []string{}, Purposes: []string{consent.PurposeTreat},
			ValidFrom: from, Status: consent.StatusActive, Version: 1, CreatedAt: from, UpdatedAt: from, Tx: "tx-1",
		}},
		Time: time.Now(),
	}
}
