package consent

import "strings"

const orgPrefix = "org/"

func registerOrg(st State, a RegisterOrgArgs) (*Org, error) {
	if !validID(a.ID) {
		return nil, errf(EINVALID, "organization id %q is invalid: use 1-128 of [A-Za-z0-9._-]", a.ID)
	}
	if !ValidOrgType(a.Type) {
		return nil, errf(EINVALID, "organization type %q is invalid: use hospital, clinic, lab, insurer or auditor", a.Type)
	}
	a.Name = strings.TrimSpace(a.Name)
	if a.Name == "" || len(a.Name) > 256 {
		return nil, errf(EINVALID, "organization name must be 1-256 characters")
	}
	var existing Org
	if ok, err := getJSON(st, orgPrefix+a.ID, &existing); err != nil {
		return nil, err
	} else if ok {
		return nil, errf(ECONFLICT, "organization %q already exists", a.ID)
	}
	now := st.TxTime().UTC()
	o := &Org{ID: a.ID, Name: a.Name, Type: a.Type, Status: StatusActive, CreatedAt: now, UpdatedAt: now}
	return o, putJSON(st, orgPrefix+a.ID, o)
}

func setOrgStatus(st State, a SetOrgStatusArgs) (*Org, error) {
	if a.Status != StatusActive && a.Status != StatusInactive {
		return nil, errf(EINVALID, "organization status must be active or inactive")
	}
	o, err := getOrg(st, a.ID)
	if err != nil {
		return nil, err
	}
	if o.Status == a.Status {
		return nil, errf(ECONFLICT, "organization %q is already %s", a.ID, a.Status)
	}
	o.Status, o.UpdatedAt = a.Status, st.TxTime().UTC()
	return o, putJSON(st, orgPrefix+a.ID, o)
}

func getOrg(st State, id string) (*Org, error) {
	if !validID(id) {
		return nil, errf(EINVALID, "organization id %q is invalid", id)
	}
	var o Org
	ok, err := getJSON(st, orgPrefix+id, &o)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound("organization", id)
	}
	return &o, nil
}

func listOrgs(st State) ([]Org, error) {
	out := []Org{}
	err := st.Range(orgPrefix, prefixEnd(orgPrefix), func(_ string, v []byte) error {
		var o Org
		if err := jsonUnmarshal(v, &o); err != nil {
			return err
		}
		out = append(out, o)
		return nil
	})
	return out, err
}
