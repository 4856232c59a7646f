# grant, revoke, read_consent, verify_claim, read_audit, manage_orgs,
# list_orgs, unknown actions and the shape of every decision.
package medshare.authz_test

consent_resource := {"type": "consent", "id": "c-1", "patient": "p7", "org": "hospital-b"}

log_resource := {"type": "access-log", "patient": "p7"}

org_resource := {"type": "org", "id": "hospital-z"}

pay_grant(over) := grant(object.union({"grantee": {"org": "insurer-x"}, "purposes": ["HPAYMT"]}, over))

claim(subject, purpose, consents) := decide(req(subject, "verify_claim", lab_record, purpose, consents))

# grant, revoke

test_grant_and_revoke_own if {
	plain_allow(decide(req(patient, "grant", consent_resource, "", [])))
	plain_allow(decide(req(patient, "revoke", consent_resource, "", [])))
}

test_grant_for_other_patient_denied if {
	denied_with(decide(req(other_patient, "grant", consent_resource, "", [])), "patients may grant only their own consents")
	denied_with(decide(req(other_patient, "revoke", consent_resource, "", [])), "patients may revoke only their own consents")
}

test_grant_by_provider_denied if {
	denied_with(decide(req(provider, "grant", consent_resource, "", [])), "only the patient may grant consent")
	denied_with(decide(req(admin, "revoke", consent_resource, "", [])), "only the patient may revoke consent")
}

test_grant_by_patient_without_ref_denied if {
	p := json.remove(patient, ["patientRef"])
	r := object.union(consent_resource, {"patient": ""})
	denied_with(decide(req(p, "grant", r, "", [])), "patients may grant only their own consents")
}

# read_consent

test_read_consent_patient_own if {
	plain_allow(decide(req(patient, "read_consent", consent_resource, "", [])))
}

test_read_consent_grantee_provider if {
	plain_allow(decide(req(provider, "read_consent", consent_resource, "", [])))
}

test_read_consent_grantee_insurer if {
	r := object.union(consent_resource, {"org": "insurer-x"})
	plain_allow(decide(req(insurer, "read_consent", r, "", [])))
}

test_read_consent_other_org_denied if {
	denied_with(decide(req(author, "read_consent", consent_resource, "", [])), "only the patient or the grantee organization")
}

test_read_consent_other_patient_and_admin_denied if {
	denied_with(decide(req(other_patient, "read_consent", consent_resource, "", [])), "only the patient")
	denied_with(decide(req(admin, "read_consent", consent_resource, "", [])), "only the patient")
}

# verify_claim

test_verify_claim_with_payment_consent if {
	d := claim(insurer, "HPAYMT", [pay_grant({"id": "c-7", "version": 2})])
	allowed_by(d, "c-7")
	d.consent.version == 2
	d.obligations == []
}

test_verify_claim_without_consent_denied if {
	d := claim(insurer, "HPAYMT", [])
	d.reasons == ["no active HPAYMT consent from the patient covers record r-1 (category lab) for insurer insurer-x"]
}

test_verify_claim_treat_only_consent_denied if {
	denied_with(claim(insurer, "HPAYMT", [pay_grant({"purposes": ["TREAT"]})]), "no active HPAYMT consent")
}

test_verify_claim_expired_or_revoked_consent_denied if {
	denied_with(claim(insurer, "HPAYMT", [pay_grant({"validUntil": ns("2026-02-01T00:00:00Z")})]), "no active HPAYMT consent")
	denied_with(claim(insurer, "HPAYMT", [pay_grant({"status": "revoked"})]), "no active HPAYMT consent")
}

test_verify_claim_wildcard_does_not_reach_restricted if {
	d := decide(req(insurer, "verify_claim", mh_record, "HPAYMT", [pay_grant({"categories": ["*"]})]))
	denied_with(d, "no active HPAYMT consent")
	contains(d.reasons[1], "restricted")
}

test_verify_claim_wrong_purpose_denied if {
	denied_with(claim(insurer, "TREAT", [pay_grant({})]), "claim verification requires purpose HPAYMT, not TREAT")
	denied_with(claim(insurer, "", [pay_grant({})]), "requires purpose HPAYMT, not (none)")
}

test_verify_claim_by_provider_denied if {
	denied_with(claim(provider, "HPAYMT", [grant({"purposes": ["HPAYMT"]})]), "only insurers verify claims")
}

test_verify_claim_insurer_role_at_hospital_denied if {
	s := object.union(insurer, {"orgType": "hospital"})
	denied_with(claim(s, "HPAYMT", [pay_grant({})]), "needs an insurer organization")
}

# read_audit

test_read_audit_auditor if {
	plain_allow(decide(req(auditor, "read_audit", {"type": "access-log"}, "", [])))
}

test_read_audit_patient_own if {
	plain_allow(decide(req(patient, "read_audit", log_resource, "", [])))
}

test_read_audit_patient_other_denied if {
	denied_with(decide(req(other_patient, "read_audit", log_resource, "", [])), "only auditors")
}

test_read_audit_provider_and_admin_denied if {
	denied_with(decide(req(provider, "read_audit", log_resource, "", [])), "only auditors")
	denied_with(decide(req(admin, "read_audit", log_resource, "", [])), "only auditors")
}

# manage_orgs, list_orgs

test_manage_orgs_admin if {
	plain_allow(decide(req(admin, "manage_orgs", org_resource, "", [])))
}

test_manage_orgs_others_denied if {
	every s in [patient, provider, insurer, auditor] {
		denied_with(decide(req(s, "manage_orgs", org_resource, "", [])), "only administrators manage organizations")
	}
}

test_list_orgs_every_role if {
	every s in [patient, provider, insurer, admin, auditor] {
		plain_allow(decide(req(s, "list_orgs", {"type": "org"}, "", [])))
	}
}

test_list_orgs_unknown_role_denied if {
	denied_with(decide(req({"role": "robot"}, "list_orgs", {"type": "org"}, "", [])), "role \"robot\" may not list organizations")
}

# unknown actions and malformed input

test_unknown_action_denied if {
	denied_with(decide(req(admin, "delete", lab_record, "", [])), "unknown action \"delete\"")
}

test_empty_input_denied if {
	denied_with(decide({}), "unknown action \"(none)\"")
}

test_malformed_fields_match_nothing if {
	i := object.union(req(patient, "read", lab_record, "PATRQT", []), {"subject": {"role": "patient", "patientRef": 7}})
	denied_with(decide(i), "patients may read only their own records")
}

# Every decision, allow or deny, has the documented shape and a reason.
test_every_decision_is_well_formed if {
	subjects := [patient, other_patient, provider, author, insurer, admin, auditor, {}, {"role": 7}]
	actions := [
		"read", "list", "write", "grant", "revoke", "read_consent",
		"verify_claim", "read_audit", "manage_orgs", "list_orgs", "bogus",
	]
	resources := [lab_record, mh_record, consent_resource, log_resource, {}]
	every s in subjects {
		every a in actions {
			every r in resources {
				every p in ["TREAT", "ETREAT", "HPAYMT", ""] {
					well_formed(decide(req(s, a, r, p, [grant({}), pay_grant({"id": "c-2"})])))
				}
			}
		}
	}
}

well_formed(d) if {
	is_boolean(d.allow)
	count(d.reasons) > 0
	every r in d.reasons {
		is_string(r)
		r != ""
	}
	is_array(d.obligations)
	object.keys(d) - {"allow", "reasons", "obligations", "consent"} == set()

	# a specific reason, never the backstop default
	d.reasons[0] != "denied: no policy rule allows this request"
}

test_verify_claim_consent_naming_restricted_category_allows if {
	d := decide(req(insurer, "verify_claim", mh_record, "HPAYMT", [pay_grant({"categories": ["mental-health"]})]))
	allowed_by(d, "c-1")
}
