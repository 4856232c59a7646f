package consent

import "encoding/json"

const (
	consentPrefix    = "consent/"
	consentByPatient = "cidx/p/"
	consentByGrantee = "cidx/g/"
)

func grantConsent(st State, a GrantConsentArgs) (*Consent, error) {
	if err := validateGrant(st, &a); err != nil {
		return nil, err
	}
	var existing Consent
	if ok, err := getJSON(st, consentPrefix+a.ID, &existing); err != nil {
		return nil, err
	} else if ok {
		return nil, errf(ECONFLICT, "consent %q already exists", a.ID)
	}
	now := st.TxTime().UTC()
	c := &Consent{
		ID: a.ID, PatientRef: a.PatientRef, Grantee: a.Grantee,
		Categories: a.Categories, Records: a.Records, Purposes: a.Purposes,
		ValidFrom: now, ValidUntil: a.ValidUntil, Status: StatusActive, Version: 1,
		CreatedAt: now, UpdatedAt: now, Tx: st.TxID(),
	}
	if err := putJSON(st, consentPrefix+c.ID, c); err != nil {
		return nil, err
	}
	if err := st.Put(consentByPatient+c.PatientRef+"/"+c.ID, []byte(c.ID)); err != nil {
		return nil, WrapError(EINTERNAL, err, "write state")
	}
	if err := st.Put(consentByGrantee+c.Grantee.Org+"/"+c.ID, []byte(c.ID)); err != nil {
		return nil, WrapError(EINTERNAL, err, "write state")
	}
	return c, nil
}

// validateGrant checks and normalizes a grant's arguments.
func validateGrant(st State, a *GrantConsentArgs) error {
	if !validID(a.ID) {
		return errf(EINVALID, "consent id %q is invalid", a.ID)
	}
	if err := checkRef("patientRef", a.PatientRef); err != nil {
		return err
	}
	if a.Grantee.SubjectRef != "" {
		if err := checkRef("grantee.subjectRef", a.Grantee.SubjectRef); err != nil {
			return err
		}
	}
	org, err := getOrg(st, a.Grantee.Org)
	if code := ErrorCode(err); code == ENOTFOUND || code == EINVALID {
		return errf(EINVALID, "grantee organization %q is not registered", a.Grantee.Org)
	} else if err != nil {
		return err
	}
	if org.Status != StatusActive {
		return errf(EINVALID, "grantee organization %q is not active", a.Grantee.Org)
	}
	// An empty scope (no category, no record) is a registration: it opens
	// nothing to read and makes the grantee one of the patient's care
	// providers, which may then store records for the patient.
	if len(a.Categories) > maxScopeItems || len(a.Records) > maxScopeItems || len(a.Purposes) > maxScopeItems {
		return errf(EINVALID, "consent scope lists more than %d items", maxScopeItems)
	}
	for _, c := range a.Categories {
		if c != WildcardCategory && !validCategory(c) {
			return errf(EINVALID, "category %q is invalid: use a lowercase token or *", c)
		}
	}
	for _, r := range a.Records {
		if !validID(r) {
			return errf(EINVALID, "record id %q is invalid", r)
		}
	}
	if len(a.Purposes) == 0 {
		return errf(EINVALID, "consent names no purpose of use")
	}
	for _, p := range a.Purposes {
		if !ValidPurpose(p) {
			return errf(EINVALID, "unknown purpose of use %q", p)
		}
	}
	if a.ValidUntil != nil {
		if !validTime(*a.ValidUntil) {
			return errf(EINVALID, "validUntil is out of range")
		}
		if !a.ValidUntil.After(st.TxTime()) {
			return errf(EINVALID, "validUntil %s is not in the future", a.ValidUntil.UTC().Format("2006-01-02T15:04:05Z07:00"))
		}
		u := a.ValidUntil.UTC()
		a.ValidUntil = &u
	}
	a.Categories = normalizeSet(a.Categories)
	a.Records = normalizeSet(a.Records)
	a.Purposes = normalizeSet(a.Purposes)
	if a.Categories == nil {
		a.Categories = []string{}
	}
	if a.Records == nil {
		a.Records = []string{}
	}
	return nil
}

func revokeConsent(st State, a RevokeConsentArgs) (*Consent, error) {
	c, err := getConsent(st, a.ID)
	if err != nil {
		return nil, err
	}
	if a.By != c.PatientRef {
		return nil, errf(EFORBIDDEN, "only the patient who granted consent %q may revoke it", a.ID)
	}
	if c.Status == StatusRevoked {
		return nil, errf(ECONFLICT, "consent %q is already revoked", a.ID)
	}
	c.Status, c.UpdatedAt, c.Tx = StatusRevoked, st.TxTime().UTC(), st.TxID()
	c.Version++
	return c, putJSON(st, consentPrefix+c.ID, c)
}

func getConsent(st State, id string) (*Consent, error) {
	if !validID(id) {
		return nil, errf(EINVALID, "consent id %q is invalid", id)
	}
	var c Consent
	ok, err := getJSON(st, consentPrefix+id, &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound("consent", id)
	}
	return &c, nil
}

func listConsents(st State, f ConsentFilter) ([]Consent, error) {
	var prefix string
	switch {
	case f.PatientRef != "" && f.GranteeOrg == "":
		if err := checkRef("patientRef", f.PatientRef); err != nil {
			return nil, err
		}
		prefix = consentByPatient + f.PatientRef + "/"
	case f.GranteeOrg != "" && f.PatientRef == "":
		if !validID(f.GranteeOrg) {
			return nil, errf(EINVALID, "organization id %q is invalid", f.GranteeOrg)
		}
		prefix = consentByGrantee + f.GranteeOrg + "/"
	default:
		return nil, errf(EINVALID, "list consents by exactly one of patientRef or granteeOrg")
	}
	out := []Consent{}
	err := st.Range(prefix, prefixEnd(prefix), func(k string, _ []byte) error {
		c, err := getConsent(st, k[len(prefix):])
		if err != nil {
			return err
		}
		out = append(out, *c)
		return nil
	})
	return out, err
}

func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return WrapError(EINTERNAL, err, "decode state")
	}
	return nil
}
