package main

import (
	"context"

	"github.com/medshare/medshare/consent"
	mshttp "github.com/medshare/medshare/integrations/http"
	"github.com/medshare/medshare/integrations/jwt"
	"github.com/medshare/medshare/policy"
)

// authenticator turns a verified token into a policy subject, refusing
// organizations that are not registered and active.
func authenticator(v *jwt.Verifier, orgs *orgCache, refs *consent.Pseudonymizer) mshttp.Authenticator {
	return func(ctx context.Context, token string) (policy.Subject, error) {
		cl, err := v.Verify(ctx, token)
		if err != nil {
			return policy.Subject{}, err
		}
		sub := policy.Subject{ID: cl.Subject, Role: cl.Role, Org: cl.Org, Ref: refs.SubjectRef(cl.Subject)}
		if cl.Role == "patient" {
			sub.PatientRef = refs.PatientRef(cl.Subject)
		}
		if cl.Org == "" {
			return sub, nil
		}
		o, err := orgs.get(ctx, cl.Org)
		switch {
		case consent.ErrorCode(err) == consent.ENOTFOUND:
			return policy.Subject{}, consent.Errorf(consent.EFORBIDDEN, "organization %q is not registered", cl.Org)
		case err != nil:
			return policy.Subject{}, err
		case o.Status != consent.StatusActive:
			return policy.Subject{}, consent.Errorf(consent.EFORBIDDEN, "organization %q is not active", cl.Org)
		}
		sub.OrgType = o.Type
		return sub, nil
	}
}
