package policy_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// BenchmarkDecide measures a consented read. With n consents, n-1 do not
// apply (other categories, purposes or statuses) and the applying one comes
// last, so every consent is examined.
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
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				d, err := e.Decide(ctx, in)
				if err != nil || !d.Allow {
					b.Fatalf("decision %+v, err %v", d, err)
				}
			}
		})
	}
}
