# medshare authorization policy.
#
# One entry point: data.medshare.authz.decision, an object
#   {"allow": bool, "reasons": [string], "obligations": [string],
#    "consent": {"id": string, "version": number}}   # consent: only when an allow relied on one
# Every decision, allow or deny, carries at least one human-readable reason.
#
# Configuration: data.medshare.config.restricted, the categories that neither
# the wildcard category "*" nor break-glass opens. Without it every request is
# denied, so a missing configuration can never widen access.
#
# Input (see package policy, type Input): subject{id, role, org, orgType, ref,
# patientRef}, action, resource{type, id, patient, category, org}, purpose,
# consents[], emergency{declared, reason}, time (RFC 3339).
#
# Decide runs on every request, so the rules read input fields directly and
# test the cheapest, most selective conditions first. A missing field is
# undefined, which makes the rules that need it fail: the request is denied.
package medshare.authz

# ---------------------------------------------------------------------------
# Decision

# The default is a backstop: denial is meant to explain every deny.
default decision := {"allow": false, "reasons": ["denied: no policy rule allows this request"], "obligations": []}

decision := a if {
	config_ok
	a := allowed
} else := {"allow": false, "reasons": denial, "obligations": deny_obligations} if {
	config_ok
} else := {
	"allow": false,
	"reasons": ["denied: the policy configuration (data.medshare.config.restricted) is missing"],
	"obligations": [],
} if {
	not config_ok
}

config_ok if is_array(data.medshare.config.restricted)

# allowed is the decision for an allowed request:
# {"allow": true, "reasons": [...], "obligations": [...], "consent"?: {...}}.
# One definition per action, so rule indexing picks the one that applies.
allowed := read_allowed if input.action == "read"

allowed := list_allowed if input.action == "list"

allowed := write_allowed if input.action == "write"

allowed := owner_allowed if input.action == "grant"

allowed := owner_allowed if input.action == "revoke"

allowed := read_consent_allowed if input.action == "read_consent"

allowed := verify_claim_allowed if input.action == "verify_claim"

allowed := read_audit_allowed if input.action == "read_audit"

allowed := manage_orgs_allowed if input.action == "manage_orgs"

allowed := list_orgs_allowed if input.action == "list_orgs"

# denial explains a deny; it is defined for every input.
denial := read_denial if input.action == "read"

denial := list_denial if input.action == "list"

denial := write_denial if input.action == "write"

denial := owner_denial if input.action in {"grant", "revoke"}

denial := read_consent_denial if input.action == "read_consent"

denial := verify_claim_denial if input.action == "verify_claim"

denial := read_audit_denial if input.action == "read_audit"

denial := manage_orgs_denial if input.action == "manage_orgs"

denial := list_orgs_denial if input.action == "list_orgs"

denial := [sprintf("unknown action %q", [text(["action"])])] if not known_action

known_action if input.action in actions

actions := {
	"read", "list", "write", "grant", "revoke", "read_consent",
	"verify_claim", "read_audit", "manage_orgs", "list_orgs",
}

# A refused break-glass attempt is still flagged for the auditors.
deny_obligations := ["flag-audit"] if {
	input.action == "read"
	input.purpose == "ETREAT"
} else := []

# text(path) renders the input field at path for a reason: "(none)" when
# missing or empty, "(malformed)" when not a string.
text(path) := s if {
	s := object.get(input, path, "")
	is_string(s)
	s != ""
} else := "(none)" if {
	object.get(input, path, "") == ""
} else := "(malformed)"

# ---------------------------------------------------------------------------
# Who is asking

roles := {"patient", "provider", "insurer", "admin", "auditor"}

care_org_types := {"hospital", "clinic", "lab"}

care_provider if {
	input.subject.role == "provider"
	input.subject.org != ""
	input.subject.orgType in care_org_types
}

insurer if {
	input.subject.role == "insurer"
	input.subject.orgType == "insurer"
	input.subject.org != ""
}

own_patient if {
	input.subject.role == "patient"
	input.subject.patientRef != ""
	input.subject.patientRef == input.resource.patient
}

authoring_org if {
	input.subject.org != ""
	input.resource.org == input.subject.org
}

category_restricted if input.resource.category in data.medshare.config.restricted

# ---------------------------------------------------------------------------
# Consents
#
# A consent applies iff it is active and in force at input.time, it is the
# resource patient's, its grantee is the subject's org (and, when it names a
# subject, that subject), it names the purpose, and its scope covers the
# resource. covering holds the consents that meet every condition but the
# purpose; it is computed once per decision, with the most selective
# comparisons first because a patient may hold many consents.

covering := [c |
	some c in input.consents
	c.grantee.org == input.subject.org
	c.status == "active"
	c.patientRef == input.resource.patient
	object.get(c.grantee, "subjectRef", "") in grantee_refs
	scope_matches(c)
	time.parse_rfc3339_ns(c.validFrom) <= now_ns
	not_expired(object.get(c, "validUntil", null))
]

# A consent naming no subject is for the whole org; one naming a subject
# only for that subject. (Without input.subject.ref no consent applies.)
grantee_refs := {"", null, input.subject.ref}

# A category named explicitly opens it, restricted or not; so does naming
# the record. The wildcard opens every category except the restricted ones.
# (An else chain stops at the first match.)
scope_matches(c) if {
	input.resource.category != ""
	input.resource.category in c.categories
} else if {
	input.resource.id != ""
	input.resource.id in c.records
} else if {
	"*" in c.categories
	wildcard_opens
}

wildcard_opens if {
	input.resource.category != ""
	not category_restricted
}

now_ns := time.parse_rfc3339_ns(input.time)

# not_expired(until) holds when a consent valid until until (null: no end)
# is still in force at input.time. Validity is checked positively, so a
# malformed time makes a consent not apply rather than never expire.
not_expired(until) if {
	until == null
} else if {
	now_ns < time.parse_rfc3339_ns(until)
}

# consent_for(p) is the applying consent for purpose p with the lowest id, so
# the basis of a decision does not depend on the order of input.consents.
# (Two different consents with one id make evaluation fail: callers deny.)
consent_for(p) := c if {
	id := min({x.id | some x in covering; p in x.purposes})
	some c in covering
	c.id == id
	p in c.purposes
}

# any_consent is the lowest-id covering consent for any purpose it names.
any_consent := c if {
	id := min({x.id | some x in covering; count(x.purposes) > 0})
	some c in covering
	c.id == id
	count(c.purposes) > 0
}

# ---------------------------------------------------------------------------
# Break-glass

break_glass_reason if {
	input.emergency.declared == true
	break_glass_text != ""
}

# break_glass_text is the caller's stated reason, trimmed and cut to 200
# bytes so the decision's reason fits an access-log entry.
break_glass_text := substring(trim_space(input.emergency.reason), 0, 200)

break_glass_ok if {
	input.purpose == "ETREAT"
	break_glass_reason
	input.resource.category != ""
	not category_restricted
}
