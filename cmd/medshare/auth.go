package main

import (
	"context"
	"slices"
	"strings"

	"github.com/medshare/medshare/consent"
	mshttp "github.com/medshare/medshare/integrations/http"
	"github.com/medshare/medshare/integrations/jwt"
	"github.com/medshare/medshare/policy"
)

// roleOrgTypes lists, for each role that must belong to an organization,
// the organization types it may belong to: an auditor only to an auditor
// org, an insurer only to an insurer, a provider only to a hospital, clinic
// or lab. Admins may name an org of any type; patients name none.
func roleOrgTypes(role string) []string {
	switch role {
	case jwt.RoleAuditor:
		return []string{consent.OrgAuditor}
	case jwt.RoleInsurer:
		return []string{consent.OrgInsurer}
	case jwt.RoleProvider:
		return []string{consent.OrgHospital, consent.OrgClinic, consent.OrgLab}
	}
	return nil
}

// authenticator turns a verified token into a policy subject, refusing
// organizations that are not registered and active, and roles that do not
// fit their organization's type (roleOrgTypes): EFORBIDDEN, 403.
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
		if types := roleOrgTypes(cl.Role); types != nil && !slices.Contains(types, o.Type) {
			return policy.Subject{}, consent.Errorf(consent.EFORBIDDEN, "role %s requires an organization of type %s; %q is of type %s",
				cl.Role, strings.Join(types, ", "), cl.Org, o.Type)
		}
		sub.OrgType = o.Type
		return sub, nil
	}
}
