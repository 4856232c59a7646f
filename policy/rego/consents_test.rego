# When a consent applies: status, validity, grantee, purpose, scope.
package medshare.authz_test

read_lab(consents) := decide(req(provider, "read", lab_record, "TREAT", consents))

read_mh(consents) := decide(req(provider, "read", mh_record, "TREAT", consents))

test_category_consent_allows_and_is_cited if {
	d := read_lab([grant({"version": 3})])
	allowed_by(d, "c-1")
	d.consent.version == 3
	d.obligations == []
}

test_wildcard_opens_unrestricted_category if {
	allowed_by(read_lab([grant({"categories": ["*"]})]), "c-1")
}

test_wildcard_does_not_open_restricted_category if {
	d := read_mh([grant({"categories": ["*"]})])
	denied_with(d, "no active consent for org hospital-b covers record r-2 (category mental-health) for purpose TREAT")
	contains(d.reasons[1], "category mental-health is restricted")
}

test_named_restricted_category_opens_it if {
	allowed_by(read_mh([grant({"categories": ["mental-health"]})]), "c-1")
}

test_record_scoped_consent_opens_that_record if {
	allowed_by(read_lab([grant({"categories": [], "records": ["r-1"]})]), "c-1")
}

test_record_scoped_consent_opens_restricted_record if {
	allowed_by(read_mh([grant({"categories": [], "records": ["r-2"]})]), "c-1")
}

test_record_scoped_consent_denies_other_record if {
	denied_with(read_lab([grant({"categories": [], "records": ["r-9"]})]), "no active consent")
}

test_wrong_category_denies if {
	denied_with(read_lab([grant({"categories": ["imaging"]})]), "no active consent")
}

test_wrong_purpose_denies if {
	denied_with(read_lab([grant({"purposes": ["HRESCH"]})]), "for purpose TREAT")
}

test_expired_denies if {
	denied_with(read_lab([grant({"validUntil": ns("2026-02-01T00:00:00Z")})]), "no active consent")
}

test_valid_until_is_exclusive if {
	denied_with(read_lab([grant({"validUntil": now})]), "no active consent")
}

test_valid_from_is_inclusive if {
	allowed_by(read_lab([grant({"validFrom": now})]), "c-1")
}

test_not_yet_valid_denies if {
	denied_with(read_lab([grant({"validFrom": ns("2026-03-01T12:00:01Z")})]), "no active consent")
}

test_future_valid_until_allows if {
	allowed_by(read_lab([grant({"validUntil": ns("2026-03-01T12:00:00.000000001Z")})]), "c-1")
}

test_null_valid_until_never_expires if {
	allowed_by(read_lab([grant({"validUntil": null})]), "c-1")
}

test_other_time_zone_compares_by_instant if {
	# 13:30+01:00 is 12:30Z, after now.
	denied_with(read_lab([grant({"validFrom": ns("2026-03-01T13:30:00+01:00")})]), "no active consent")
	allowed_by(read_lab([grant({"validUntil": ns("2026-03-01T13:30:00+01:00")})]), "c-1")
}

test_revoked_denies if {
	denied_with(read_lab([grant({"status": "revoked", "version": 2})]), "no active consent")
}

test_other_grantee_org_denies if {
	denied_with(read_lab([grant({"grantee": {"org": "clinic-c"}})]), "no active consent")
}

test_other_patients_consent_denies if {
	denied_with(read_lab([grant({"patientRef": "p8"})]), "no active consent")
}

test_subject_scoped_grantee_allows_that_subject if {
	allowed_by(read_lab([grant({"grantee": {"org": "hospital-b", "subjectRef": "s-dr-b"}})]), "c-1")
}

test_subject_scoped_grantee_denies_colleague if {
	denied_with(read_lab([grant({"grantee": {"org": "hospital-b", "subjectRef": "s-dr-z"}})]), "no active consent")
}

test_subject_scoped_grantee_denies_subject_without_ref if {
	p := object.union(provider, {"ref": ""})
	d := decide(req(p, "read", lab_record, "TREAT", [grant({"grantee": {"org": "hospital-b", "subjectRef": "s-dr-b"}})]))
	denied_with(d, "no active consent")
}

test_empty_or_null_subject_ref_is_org_wide if {
	allowed_by(read_lab([grant({"grantee": {"org": "hospital-b", "subjectRef": ""}})]), "c-1")
	allowed_by(read_lab([grant({"grantee": {"org": "hospital-b", "subjectRef": null}})]), "c-1")
}

test_lowest_applying_id_is_cited_whatever_the_order if {
	a := grant({"id": "c-2"})
	b := grant({"id": "c-10", "categories": ["*"]})
	allowed_by(read_lab([a, b]), "c-10")
	allowed_by(read_lab([b, a]), "c-10")
}

test_inapplicable_consents_are_skipped if {
	revoked := grant({"id": "c-0", "status": "revoked"})
	allowed_by(read_lab([revoked, grant({"id": "c-9", "version": 4})]), "c-9")
}

test_malformed_valid_from_does_not_apply if {
	denied_with(read_lab([grant({"validFrom": "yesterday"})]), "no active consent")
}

test_malformed_valid_until_does_not_apply if {
	denied_with(read_lab([grant({"validUntil": "never"})]), "no active consent")
}

test_missing_time_applies_no_consent if {
	i := json.remove(req(provider, "read", lab_record, "TREAT", [grant({})]), ["time"])
	denied_with(decide(i), "no active consent")
}

test_missing_category_is_not_opened_by_wildcard if {
	r := json.remove(lab_record, ["category"])
	denied_with(decide(req(provider, "read", r, "TREAT", [grant({"categories": ["*"]})])), "no active consent")
}

test_configured_restricted_set_closes_wildcard if {
	d := read_lab([grant({"categories": ["*"]})]) with data.medshare.config.restricted as ["lab"]
	denied_with(d, "no active consent")
	contains(d.reasons[1], "category lab is restricted")
}

test_empty_restricted_set_lets_wildcard_open_all if {
	d := read_mh([grant({"categories": ["*"]})]) with data.medshare.config.restricted as []
	allowed_by(d, "c-1")
}

test_missing_configuration_denies_everything if {
	d := decide(req(patient, "read", lab_record, "PATRQT", [])) with data.medshare.config as {}
	denied_with(d, "policy configuration (data.medshare.config.restricted) is missing")
}

test_malformed_configuration_denies_everything if {
	d := decide(req(patient, "read", lab_record, "PATRQT", [])) with data.medshare.config.restricted as "mental-health"
	denied_with(d, "is missing")
}

test_null_valid_from_does_not_apply if {
	denied_with(read_lab([grant({"validFrom": null})]), "no active consent")
}

test_boolean_valid_until_does_not_apply if {
	denied_with(read_lab([grant({"validUntil": true})]), "no active consent")
	denied_with(read_lab([grant({"validUntil": false})]), "no active consent")
}

test_time_as_text_applies_no_consent if {
	i := object.union(req(provider, "read", lab_record, "TREAT", [grant({})]), {"time": "2026-03-01T12:00:00Z"})
	denied_with(decide(i), "no active consent")
}

# list applies the same conditions as read, for any purpose.

test_list_expired_or_future_consent_denied if {
	denied_with(decide(req(provider, "list", lab_record, "", [grant({"validUntil": ns("2026-02-01T00:00:00Z")})])), "no active consent")
	denied_with(decide(req(provider, "list", lab_record, "", [grant({"validFrom": ns("2026-03-01T12:00:01Z")})])), "no active consent")
	denied_with(decide(req(provider, "list", lab_record, "", [grant({"validFrom": "yesterday"})])), "no active consent")
}

test_list_other_subject_or_patient_denied if {
	c := grant({"grantee": {"org": "hospital-b", "subjectRef": "s-dr-z"}})
	denied_with(decide(req(provider, "list", lab_record, "", [c])), "no active consent")
	denied_with(decide(req(provider, "list", lab_record, "", [grant({"patientRef": "p8"})])), "no active consent")
}

test_list_record_scoped_consent if {
	c := grant({"categories": [], "records": ["r-2"], "purposes": ["HRESCH"]})
	allowed_by(decide(req(provider, "list", mh_record, "", [c])), "c-1")
	denied_with(decide(req(provider, "list", lab_record, "", [c])), "no active consent")
}

test_list_consent_without_purpose_denied if {
	denied_with(decide(req(provider, "list", lab_record, "", [grant({"purposes": []})])), "no active consent")
}

test_list_lowest_applying_id_is_cited if {
	a := grant({"id": "c-2", "purposes": ["TREAT"]})
	b := grant({"id": "c-10", "purposes": ["HRESCH"], "categories": ["*"]})
	allowed_by(decide(req(provider, "list", lab_record, "", [a, b])), "c-10")
	allowed_by(decide(req(provider, "list", lab_record, "", [b, a])), "c-10")
}
