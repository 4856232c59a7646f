# read, list and write.
package medshare.authz_test

# read

test_read_patient_own if {
	plain_allow(decide(req(patient, "read", lab_record, "PATRQT", [])))
}

test_read_patient_own_restricted if {
	plain_allow(decide(req(patient, "read", mh_record, "PATRQT", [])))
}

test_read_patient_other_denied if {
	denied_with(decide(req(other_patient, "read", lab_record, "PATRQT", [])), "patients may read only their own records")
}

test_read_authoring_org_treat if {
	d := decide(req(author, "read", lab_record, "TREAT", []))
	plain_allow(d)
	contains(d.reasons[0], "authoring organization hospital-a")
}

test_read_authoring_org_restricted_treat if {
	plain_allow(decide(req(author, "read", mh_record, "TREAT", [])))
}

test_read_authoring_org_other_purpose_denied if {
	denied_with(decide(req(author, "read", lab_record, "HRESCH", [])), "no active consent for org hospital-a")
}

test_read_authoring_org_wins_over_consent if {
	c := grant({"grantee": {"org": "hospital-a"}})
	d := decide(req(author, "read", lab_record, "TREAT", [c]))
	plain_allow(d)
}

test_read_provider_with_consent if {
	allowed_by(decide(req(provider, "read", lab_record, "TREAT", [grant({})])), "c-1")
}

test_read_provider_without_consent_denied if {
	d := decide(req(provider, "read", lab_record, "TREAT", []))
	d.reasons == ["no active consent for org hospital-b covers record r-1 (category lab) for purpose TREAT"]
	d.obligations == []
}

test_read_clinic_and_lab_providers_use_consents if {
	clinic := object.union(provider, {"orgType": "clinic"})
	allowed_by(decide(req(clinic, "read", lab_record, "TREAT", [grant({})])), "c-1")
	lab := object.union(provider, {"orgType": "lab"})
	allowed_by(decide(req(lab, "read", lab_record, "TREAT", [grant({})])), "c-1")
}

test_read_provider_at_insurer_org_denied if {
	p := object.union(provider, {"org": "insurer-x", "orgType": "insurer"})
	c := grant({"grantee": {"org": "insurer-x"}})
	denied_with(decide(req(p, "read", lab_record, "TREAT", [c])), "providers read records only as members of a hospital, clinic or lab (organization \"insurer-x\" of type \"insurer\")")
}

test_read_break_glass_allows_with_obligations if {
	d := decide(glass(lab_record, "unconscious in ER"))
	d.allow == true
	d.obligations == ["notify-patient", "flag-audit"]
	contains(d.reasons[0], "break-glass")
	contains(d.reasons[0], "unconscious in ER")
	not d.consent
}

test_read_break_glass_without_reason_denied if {
	d := decide(glass(lab_record, ""))
	denied_with(d, "requires a declared emergency and a non-empty break-glass reason")
	d.obligations == ["flag-audit"]
}

test_read_break_glass_blank_reason_denied if {
	denied_with(decide(glass(lab_record, "  \t ")), "non-empty break-glass reason")
}

test_read_break_glass_undeclared_denied if {
	i := object.union(glass(lab_record, "stroke"), {"emergency": {"declared": false, "reason": "stroke"}})
	denied_with(decide(i), "requires a declared emergency")
}

test_read_break_glass_restricted_denied if {
	d := decide(glass(mh_record, "overdose"))
	denied_with(d, "break-glass cannot open restricted category mental-health")
	d.obligations == ["flag-audit"]
}

test_read_break_glass_restricted_without_reason_denied if {
	denied_with(decide(glass(mh_record, "")), "break-glass cannot open restricted category")
}

test_read_break_glass_long_reason_is_cut if {
	d := decide(glass(lab_record, concat("", array.concat(["x" | numbers.range(1, 600)[_]], []))))
	d.allow == true
	count(d.reasons[0]) < 512
}

test_read_etreat_consent_is_not_break_glass if {
	c := grant({"purposes": ["ETREAT"]})
	d := decide(object.union(glass(lab_record, "stroke"), {"consents": [c]}))
	allowed_by(d, "c-1")
	d.obligations == []
}

test_read_etreat_consent_opens_restricted_category if {
	c := grant({"purposes": ["ETREAT"], "categories": ["mental-health"]})
	d := decide(object.union(glass(mh_record, "overdose"), {"consents": [c]}))
	allowed_by(d, "c-1")
}

test_read_insurer_denied_pointing_to_claims if {
	c := grant({"grantee": {"org": "insurer-x"}, "purposes": ["HPAYMT"]})
	d := decide(req(insurer, "read", lab_record, "HPAYMT", [c]))
	denied_with(d, "insurers never read record content")
	contains(d.reasons[0], "verify_claim")
}

test_read_admin_denied if {
	denied_with(decide(req(admin, "read", lab_record, "HOPERAT", [])), "administrators manage organizations and read no records")
}

test_read_auditor_denied if {
	denied_with(decide(req(auditor, "read", lab_record, "HOPERAT", [])), "auditors read the access log, not records")
}

test_read_unknown_role_denied if {
	s := object.union(provider, {"role": "janitor"})
	denied_with(decide(req(s, "read", lab_record, "TREAT", [grant({})])), "role \"janitor\" may not read records")
}

# list

test_list_patient_own if {
	plain_allow(decide(req(patient, "list", mh_record, "", [])))
}

test_list_patient_other_denied if {
	denied_with(decide(req(other_patient, "list", lab_record, "", [])), "patients may see only their own records")
}

test_list_authoring_org if {
	plain_allow(decide(req(author, "list", mh_record, "", [])))
}

test_list_consent_for_any_purpose if {
	c := grant({"purposes": ["HRESCH"]})
	allowed_by(decide(req(provider, "list", lab_record, "TREAT", [c])), "c-1")
	allowed_by(decide(req(provider, "list", lab_record, "", [c])), "c-1")
}

test_list_without_consent_denied if {
	denied_with(decide(req(provider, "list", lab_record, "", [])), "for any purpose")
}

test_list_revoked_consent_denied if {
	denied_with(decide(req(provider, "list", lab_record, "", [grant({"status": "revoked"})])), "no active consent")
}

test_list_wildcard_hides_restricted if {
	c := grant({"categories": ["*"]})
	allowed_by(decide(req(provider, "list", imaging_record, "", [c])), "c-1")
	denied_with(decide(req(provider, "list", mh_record, "", [c])), "no active consent")
}

test_list_insurer_with_payment_consent if {
	c := grant({"grantee": {"org": "insurer-x"}, "purposes": ["HPAYMT"]})
	allowed_by(decide(req(insurer, "list", lab_record, "HPAYMT", [c])), "c-1")
}

test_list_insurer_without_payment_consent_denied if {
	c := grant({"grantee": {"org": "insurer-x"}, "purposes": ["TREAT"]})
	denied_with(decide(req(insurer, "list", lab_record, "HPAYMT", [c])), "no active HPAYMT consent")
}

test_list_admin_and_auditor_denied if {
	denied_with(decide(req(admin, "list", lab_record, "", [])), "administrators")
	denied_with(decide(req(auditor, "list", lab_record, "", [])), "auditors")
}

# write

# registration is p7's consent naming hospital-b with an empty scope: it
# opens nothing to read, and makes hospital-b one of her care providers.
registration := grant({"id": "c-reg", "categories": [], "records": []})

test_write_provider_own_org if {
	r := object.union(lab_record, {"org": "hospital-b"})
	d := decide(req(provider, "write", r, "TREAT", [registration]))
	plain_allow(d)
	contains(d.reasons[0], "consent c-reg names it")
}

test_write_lab_own_org if {
	lab := {"id": "tech", "role": "provider", "org": "lab-l", "orgType": "lab", "ref": "s-tech"}
	c := grant({"grantee": {"org": "lab-l"}})
	plain_allow(decide(req(lab, "write", object.union(lab_record, {"org": "lab-l"}), "", [c])))
}

test_write_without_care_relationship_denied if {
	r := object.union(lab_record, {"org": "hospital-b"})
	denied_with(decide(req(provider, "write", r, "TREAT", [])), "hospital-b has no care relationship with this patient")
}

test_write_care_relationship_must_be_in_force if {
	r := object.union(lab_record, {"org": "hospital-b"})
	for_other_patient := grant({"patientRef": "p8"})
	for_other_org := grant({"grantee": {"org": "hospital-c"}})
	revoked := grant({"status": "revoked"})
	expired := grant({"validUntil": ns("2026-02-01T00:00:00Z")})
	future := grant({"validFrom": ns("2026-06-01T00:00:00Z")})
	every c in [for_other_patient, for_other_org, revoked, expired, future] {
		denied_with(decide(req(provider, "write", r, "TREAT", [c])), "no care relationship")
	}
}

test_registration_opens_nothing_to_read if {
	denied_with(decide(req(provider, "read", lab_record, "TREAT", [registration])), "no active consent")
	denied_with(decide(req(provider, "list", lab_record, "", [registration])), "no active consent")
}

test_write_as_other_org_denied if {
	denied_with(decide(req(provider, "write", lab_record, "TREAT", [])), "only as their own organization (hospital-b), not as hospital-a")
}

test_write_insurer_denied if {
	r := object.union(lab_record, {"org": "insurer-x"})
	denied_with(decide(req(insurer, "write", r, "", [])), "only providers at a hospital, clinic or lab upload records")
}

test_write_patient_denied if {
	denied_with(decide(req(patient, "write", lab_record, "", [])), "only providers")
}

test_list_provider_at_non_care_org_denied if {
	p := object.union(provider, {"orgType": "auditor"})
	denied_with(decide(req(p, "list", lab_record, "", [grant({})])), "role \"provider\" with organization type \"auditor\" may not see records")
}
