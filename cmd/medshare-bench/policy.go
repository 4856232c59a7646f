package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/localledger"
	"github.com/medshare/medshare/policy"
)

// consentOrgs are the grantees of the policy scenario: every patient grants
// each of them one consent, so a patient's consents for hospital-b are the
// same few whatever the total.
var consentOrgs = []string{"hospital-a", "hospital-b", "clinic-c", "insurer-x", "lab-d"}

// consentLedger is an embedded ledger holding a given number of consents,
// with the lookup a read does before asking the policy.
type consentLedger struct {
	l        *localledger.Ledger
	svc      *consent.Service
	refs     *consent.Pseudonymizer
	patients int
}

// openConsentLedger creates a ledger under dir with n consents: n/5
// patients, each granting every org of consentOrgs.
func openConsentLedger(ctx context.Context, dir string, n int) (*consentLedger, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	l, err := localledger.Open(ctx, localledger.Options{Path: filepath.Join(dir, "ledger.db"), Key: key, NodeID: "bench"})
	if err != nil {
		return nil, err
	}
	pepper := make([]byte, 32)
	rand.Read(pepper)
	refs, _ := consent.NewPseudonymizer(pepper)
	cl := &consentLedger{l: l, svc: consent.NewService(l), refs: refs, patients: n / len(consentOrgs)}
	for _, o := range consentOrgs {
		typ := consent.OrgHospital
		switch o {
		case "clinic-c":
			typ = consent.OrgClinic
		case "insurer-x":
			typ = consent.OrgInsurer
		case "lab-d":
			typ = consent.OrgLab
		}
		if _, _, err := cl.svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: o, Name: o, Type: typ}); err != nil {
			l.Close()
			return nil, err
		}
	}
	// 256 submitters fill the committer's blocks (MaxBatch 256).
	err = parallel(ctx, 256, cl.patients*len(consentOrgs), func(ctx context.Context, i int) error {
		p, o := i/len(consentOrgs), consentOrgs[i%len(consentOrgs)]
		purpose := consent.PurposeTreat
		if o == "insurer-x" {
			purpose = consent.PurposePayment
		}
		_, _, err := cl.svc.Grant(ctx, consent.GrantConsentArgs{
			ID: fmt.Sprintf("c-%d-%s", p, o), PatientRef: cl.refs.PatientRef(patientID(p)),
			Grantee: consent.Grantee{Org: o}, Categories: categories(), Records: []string{}, Purposes: []string{purpose},
		})
		return err
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	return cl, nil
}

// input is what a read by hospital-b of patient p's record asks the policy,
// with p's consents for hospital-b loaded the way records.Service loads
// them (by patient, through the index, then kept for the caller's org).
func (cl *consentLedger) input(ctx context.Context, p int) (policy.Input, error) {
	ref := cl.refs.PatientRef(patientID(p))
	all, err := cl.svc.Consents(ctx, consent.ConsentFilter{PatientRef: ref})
	if err != nil {
		return policy.Input{}, err
	}
	mine := make([]consent.Consent, 0, len(all))
	for _, c := range all {
		if c.Grantee.Org == "hospital-b" {
			mine = append(mine, c)
		}
	}
	return policy.Input{
		Subject: policy.Subject{ID: "dr-bo", Role: policy.RoleProvider, Org: "hospital-b", OrgType: consent.OrgHospital, Ref: "s-dr-bo"},
		Action:  policy.ActionRead, Purpose: consent.PurposeTreat, Consents: mine, Time: time.Now(),
		Resource: policy.Resource{Type: "record", ID: fmt.Sprintf("r-%d", p), Patient: ref, Category: "conditions", Org: "hospital-a"},
	}, nil
}

// decideOp is one authorization of a read: consent lookup plus decision.
func decideOp(e *policy.Engine, cl *consentLedger) op {
	return func(ctx context.Context, w, i int) error {
		in, err := cl.input(ctx, (i*7919+w)%cl.patients)
		if err != nil {
			return err
		}
		return mustAllow(e.Decide(ctx, in))
	}
}

// engineOp decides a fixed input: the engine alone, no lookup.
func engineOp(e *policy.Engine, in policy.Input) op {
	return func(ctx context.Context, _, _ int) error { return mustAllow(e.Decide(ctx, in)) }
}

func mustAllow(d policy.Decision, err error) error {
	if err != nil {
		return err
	}
	if !d.Allow {
		return fmt.Errorf("policy denied: %v", d.Reasons)
	}
	return nil
}

// wideInput is in with k consents in the input: k-1 that do not apply
// (other categories, purposes or revoked) before the one that does, so the
// policy examines all of them. It shows how the engine scales with the
// size of its input, which the lookup keeps small.
func wideInput(in policy.Input, k int) policy.Input {
	cs := make([]consent.Consent, 0, k)
	base := in.Consents[0]
	for i := range k - 1 {
		c := base
		c.ID = fmt.Sprintf("c-wide-%d", i)
		switch i % 3 {
		case 0:
			c.Categories = []string{"imaging"}
		case 1:
			c.Purposes = []string{consent.PurposeResearch}
		default:
			c.Status = consent.StatusRevoked
		}
		cs = append(cs, c)
	}
	in.Consents = append(cs, base)
	return in
}
