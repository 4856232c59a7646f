# Shared fixtures for the medshare.authz tests. Patient p7 (pseudonym
# "p7"), records authored by hospital-a, requests made at now.
package medshare.authz_test

import data.medshare.authz

now := ns("2026-03-01T12:00:00Z")

# ns(t) is the RFC 3339 time t as the policy takes times: Unix nanoseconds.
ns(t) := time.parse_rfc3339_ns(t)

patient := {"id": "p-7", "role": "patient", "ref": "s-p7", "patientRef": "p7"}

other_patient := {"id": "p-8", "role": "patient", "ref": "s-p8", "patientRef": "p8"}

# A provider at hospital-b, which did not author the records.
provider := {"id": "dr-b", "role": "provider", "org": "hospital-b", "orgType": "hospital", "ref": "s-dr-b"}

# A provider at hospital-a, the authoring organization.
author := {"id": "dr-a", "role": "provider", "org": "hospital-a", "orgType": "hospital", "ref": "s-dr-a"}

insurer := {"id": "clerk-x", "role": "insurer", "org": "insurer-x", "orgType": "insurer", "ref": "s-clerk-x"}

admin := {"id": "root", "role": "admin", "ref": "s-root"}

auditor := {"id": "aud-1", "role": "auditor", "org": "audit-co", "orgType": "auditor", "ref": "s-aud-1"}

lab_record := {"type": "record", "id": "r-1", "patient": "p7", "category": "lab", "org": "hospital-a"}

mh_record := {"type": "record", "id": "r-2", "patient": "p7", "category": "mental-health", "org": "hospital-a"}

imaging_record := {"type": "record", "id": "r-3", "patient": "p7", "category": "imaging", "org": "hospital-a"}

# grant(over) is an active TREAT consent of p7 to hospital-b for lab,
# valid from January, with the fields of over replacing the defaults.
grant(over) := object.union(
	{
		"id": "c-1",
		"patientRef": "p7",
		"grantee": {"org": "hospital-b"},
		"categories": ["lab"],
		"records": [],
		"purposes": ["TREAT"],
		"validFrom": ns("2026-01-01T00:00:00Z"),
		"status": "active",
		"version": 1,
	},
	over,
)

# req is a request without emergency.
req(subject, action, resource, purpose, consents) := {
	"subject": subject,
	"action": action,
	"resource": resource,
	"purpose": purpose,
	"consents": consents,
	"emergency": {"declared": false},
	"time": now,
}

# glass is a break-glass read by provider.
glass(resource, reason) := object.union(
	req(provider, "read", resource, "ETREAT", []),
	{"emergency": {"declared": true, "reason": reason}},
)

decide(i) := d if {
	d := authz.decision with input as i
}

# allowed_by(d, id) holds when d is an allow that cites consent id.
allowed_by(d, id) if {
	d.allow == true
	d.consent.id == id
	count(d.reasons) > 0
}

# denied_with(d, text) holds when d is a deny whose first reason contains text.
denied_with(d, text) if {
	d.allow == false
	contains(d.reasons[0], text)
}

# plain_allow(d) holds when d allows without citing a consent or imposing
# obligations.
plain_allow(d) if {
	d.allow == true
	count(d.reasons) > 0
	d.obligations == []
	not d.consent
}
