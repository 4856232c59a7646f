package policy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// A provider at hospital-b reads a lab record of patient p7, who granted
// hospital-b access to her lab records for treatment.
func ExampleEngine_Decide() {
	ctx := context.Background()
	engine, err := policy.New(ctx, policy.Options{}) // embedded policies, default restricted set
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d, err := engine.Decide(ctx, policy.Input{
		Subject: policy.Subject{
			ID: "dr-b", Role: policy.RoleProvider, Org: "hospital-b", OrgType: consent.OrgHospital, Ref: "s-dr-b",
		},
		Action:   policy.ActionRead,
		Resource: policy.Resource{Type: "record", ID: "r-1", Patient: "p7", Category: "lab", Org: "hospital-a"},
		Purpose:  consent.PurposeTreat,
		Consents: []consent.Consent{{
			ID: "c-1", PatientRef: "p7", Grantee: consent.Grantee{Org: "hospital-b"},
			Categories: []string{"lab"}, Purposes: []string{consent.PurposeTreat},
			ValidFrom: now.AddDate(0, -1, 0), Status: consent.StatusActive, Version: 1,
		}},
		Time: now,
	})
	if err != nil {
		fmt.Println("deny:", err) // fail closed
		return
	}
	fmt.Println(d.Allow, d.ConsentID, d.ConsentVersion)
	fmt.Println(d.Reasons[0])
	fmt.Println(len(d.PolicyDigest) == 64)
	// Output:
	// true c-1 1
	// consent c-1 (version 1) grants hospital-b access to this record for purpose TREAT
	// true
}
