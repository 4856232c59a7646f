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
# consents[], emergency{declared, reason}, time. Times (input.time and a
# consent's validFrom and validUntil) are Unix nanoseconds; validUntil is
# null or missing when the consent has no end.
#
# Decide runs on every request, so the rules read input fields directly and
# test the cheapest, most selective conditions first. A missing field is
# undefined, which makes the rules that need it fail: the request is denied.
package medshare.authz

# ---------------------------------------------------------------------------
# Decision
#
# The decision is one else chain. For each action in turn come the branches
# that allow it, in order of preference, then the branch that denies it;
# after all actions, the denial of an unknown action and of a missing
# configuration. Every branch of an action starts with input.action ==
# <action> and, where it can, the subject's role and the purpose: rule
# indexing then evaluates only the branches that can apply, in their order,
# and an action's denial ends the chain before the unknown-action branch.
#
# Every rule or function a decision refers to costs an evaluation of its own
# (bindings, an index lookup, a copy of its value), more than any
# comparison. So the allowing branches, which run for every request, spell
# out the conditions the helper rules below name (own_patient,
# care_provider, authoring_org, insurer; marked in comments); the denials,
# which explain, use the helper rules and live with their explanations in
# records.rego and access.rego. Every branch but the last checks that the
# configuration is there ("# configured"), an allowing branch before
# anything that could fail evaluation.

# The default is a backstop: the chain denies every request with a reason.
default decision := {"allow": false, "reasons": ["denied: no policy rule allows this request"], "obligations": []}

# read: record content. A read that needs no consent does not cite one, and
# a consented read is never recorded as break-glass.
decision := {"allow": true, "reasons": ["patient reads their own record"], "obligations": []} if {
	input.action == "read"
	input.subject.role == "patient" # own_patient
	input.subject.patientRef != ""
	input.subject.patientRef == input.resource.patient
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": [reason], "obligations": []} if {
	input.action == "read"
	input.purpose == "TREAT"
	input.subject.role == "provider"
	input.resource.org == input.subject.org # authoring_org
	input.subject.org != "" # care_provider
	input.subject.orgType in {"hospital", "clinic", "lab"}
	is_array(data.medshare.config.restricted) # configured
	reason := sprintf("authoring organization %s reads its own record for TREAT", [input.subject.org])
} else := {"allow": true, "reasons": [reason], "obligations": [], "consent": {"id": id, "version": version}} if {
	input.action == "read"
	input.subject.role == "provider" # care_provider
	org := input.subject.org
	org != ""
	input.subject.orgType in {"hospital", "clinic", "lab"}
	is_array(data.medshare.config.restricted) # configured
	purpose := input.purpose
	c := consent_for(purpose)
	id := c.id
	version := c.version
	reason := sprintf(
		"consent %s (version %v) grants %s access to this record for purpose %s",
		[id, version, org, purpose],
	)
} else := {"allow": true, "reasons": [reason], "obligations": ["notify-patient", "flag-audit"]} if {
	input.action == "read"
	input.purpose == "ETREAT" # break_glass_ok
	input.subject.role == "provider" # care_provider
	input.subject.org != ""
	input.subject.orgType in {"hospital", "clinic", "lab"}
	break_glass_ok
	is_array(data.medshare.config.restricted) # configured
	reason := sprintf(
		"break-glass: %s declared an emergency (%s) and reads category %s for ETREAT",
		[input.subject.org, break_glass_text, input.resource.category],
	)
} else := {"allow": false, "reasons": read_denial, "obligations": deny_obligations} if {
	input.action == "read"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": ["patient lists their own records"], "obligations": []} if {
	# list: record metadata (id, category, dates), never content.
	input.action == "list"
	input.subject.role == "patient" # own_patient
	input.subject.patientRef != ""
	input.subject.patientRef == input.resource.patient
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": [reason], "obligations": []} if {
	input.action == "list"
	input.subject.role == "provider"
	input.resource.org == input.subject.org # authoring_org
	input.subject.org != "" # care_provider
	input.subject.orgType in {"hospital", "clinic", "lab"}
	is_array(data.medshare.config.restricted) # configured
	reason := sprintf("authoring organization %s sees its own record", [input.subject.org])
} else := {"allow": true, "reasons": [reason], "obligations": [], "consent": {"id": id, "version": version}} if {
	input.action == "list"
	input.subject.role == "provider" # care_provider
	input.subject.org != ""
	input.subject.orgType in {"hospital", "clinic", "lab"}
	is_array(data.medshare.config.restricted) # configured
	c := any_consent
	id := c.id
	version := c.version
	reason := sprintf("consent %s (version %v) grants %s access to this record", [id, version, input.subject.org])
} else := {"allow": true, "reasons": [reason], "obligations": [], "consent": {"id": id, "version": version}} if {
	input.action == "list"
	input.subject.role == "insurer" # insurer
	input.subject.orgType == "insurer"
	input.subject.org != ""
	is_array(data.medshare.config.restricted) # configured
	c := consent_for("HPAYMT")
	id := c.id
	version := c.version
	reason := sprintf(
		"consent %s (version %v) grants insurer %s access to this record for HPAYMT",
		[id, version, input.subject.org],
	)
} else := {"allow": false, "reasons": list_denial, "obligations": []} if {
	input.action == "list"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": [reason], "obligations": []} if {
	# write: upload a record, as one's own organization, for a patient it
	# has a care relationship with.
	input.action == "write"
	input.subject.role == "provider"
	input.resource.org == input.subject.org # authoring_org
	input.subject.org != "" # care_provider
	input.subject.orgType in {"hospital", "clinic", "lab"}
	is_array(data.medshare.config.restricted) # configured
	c := care_relationship
	reason := sprintf(
		"provider at %s uploads a record for its own organization; the patient's consent %s names it",
		[input.subject.org, c.id],
	)
} else := {"allow": false, "reasons": write_denial, "obligations": []} if {
	input.action == "write"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": [reason], "obligations": []} if {
	# grant, revoke: only the patient, over their own consents.
	input.action in {"grant", "revoke"}
	input.subject.role == "patient" # own_patient
	input.subject.patientRef != ""
	input.subject.patientRef == input.resource.patient
	is_array(data.medshare.config.restricted) # configured
	reason := sprintf("patient may %s their own consents", [input.action])
} else := {"allow": false, "reasons": owner_denial, "obligations": []} if {
	input.action in {"grant", "revoke"}
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": ["patient reads their own consent"], "obligations": []} if {
	# read_consent: the patient, or the grantee organization.
	input.action == "read_consent"
	input.subject.role == "patient" # own_patient
	input.subject.patientRef != ""
	input.subject.patientRef == input.resource.patient
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": [reason], "obligations": []} if {
	input.action == "read_consent"
	input.subject.role in {"provider", "insurer"}
	input.subject.org != ""
	input.resource.org == input.subject.org
	is_array(data.medshare.config.restricted) # configured
	reason := sprintf("organization %s is the consent's grantee", [input.subject.org])
} else := {"allow": false, "reasons": read_consent_denial, "obligations": []} if {
	input.action == "read_consent"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": [reason], "obligations": [], "consent": {"id": id, "version": version}} if {
	# verify_claim: an insurer checks claim facts against one anchored record
	# (resource: that record), under the patient's HPAYMT consent. It learns
	# yes/no per fact, never content.
	input.action == "verify_claim"
	input.purpose == "HPAYMT"
	input.subject.role == "insurer" # insurer
	input.subject.orgType == "insurer"
	input.subject.org != ""
	is_array(data.medshare.config.restricted) # configured
	c := consent_for("HPAYMT")
	id := c.id
	version := c.version
	reason := sprintf(
		"consent %s (version %v) lets insurer %s verify claims against this record",
		[id, version, input.subject.org],
	)
} else := {"allow": false, "reasons": verify_claim_denial, "obligations": []} if {
	input.action == "verify_claim"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": ["auditors read the access log"], "obligations": []} if {
	# read_audit: auditors read the whole log, patients the entries about them.
	input.action == "read_audit"
	input.subject.role == "auditor"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": ["patient reads the access log of their own records"], "obligations": []} if {
	input.action == "read_audit"
	input.subject.role == "patient" # own_patient
	input.subject.patientRef != ""
	input.subject.patientRef == input.resource.patient
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": false, "reasons": read_audit_denial, "obligations": []} if {
	input.action == "read_audit"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": ["administrators manage organizations"], "obligations": []} if {
	# manage_orgs: administrators register and (de)activate organizations.
	input.action == "manage_orgs"
	input.subject.role == "admin"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": false, "reasons": manage_orgs_denial, "obligations": []} if {
	input.action == "manage_orgs"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": true, "reasons": [reason], "obligations": []} if {
	# list_orgs: every known role lists organizations.
	input.action == "list_orgs"
	input.subject.role in roles
	is_array(data.medshare.config.restricted) # configured
	reason := sprintf("role %s may list organizations", [input.subject.role])
} else := {"allow": false, "reasons": list_orgs_denial, "obligations": []} if {
	input.action == "list_orgs"
	is_array(data.medshare.config.restricted) # configured
} else := {"allow": false, "reasons": [sprintf("unknown action %q", [text(["action"])])], "obligations": []} if {
	# Any other action, and every action without the configuration, is
	# denied. (A known action with the configuration never gets here: its
	# denial above ends the chain.)
	is_array(data.medshare.config.restricted) # configured
} else := {
	"allow": false,
	"reasons": ["denied: the policy configuration (data.medshare.config.restricted) is missing"],
	"obligations": [],
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
#
# The decision chain's allowing branches spell these conditions out, marked
# with the rule's name; the denials refer to the rules. (No denial needs
# own_patient or authoring_org: they are here to name the condition.)

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
# resource.
#
# A consent naming no subject (subjectRef "", null or missing) is for the
# whole org; one naming a subject only for that subject. Without
# input.subject.ref no consent applies.
#
# Validity is checked positively, so a malformed time makes a consent not
# apply rather than never expire: validFrom must be a number at or before
# input.time (a number too), validUntil null, missing or a number after it.
#
# consent_for(p) is the applying consent for purpose p with the lowest id, so
# the basis of a decision does not depend on the order of input.consents;
# any_consent is the one with the lowest id among those applying for any
# purpose they name. Two different consents with that id make evaluation
# fail (conflicting values): callers deny.
#
# Both test the conditions in one comprehension, the most selective
# comparisons first because a patient may hold many consents, and spell them
# out rather than share a helper: a rule or function evaluated per consent
# costs more than the comparisons. The two comprehensions differ only in the
# purpose; keep them in step.
consent_for(p) := c if {
	now := input.time
	is_number(now)
	org := input.subject.org
	patient := input.resource.patient
	refs := {"", null, input.subject.ref}
	cs := [[x.id, x] |
		some x in input.consents
		x.grantee.org == org
		x.status == "active"
		x.patientRef == patient
		p in x.purposes
		object.get(x.grantee, "subjectRef", "") in refs
		scope_matches(x)
		from := x.validFrom
		is_number(from)
		from <= now
		until := object.get(x, "validUntil", null)
		until < "" # null, a boolean or a number: not text
		object.get({null: true}, until, now < until)
	]
	lowest := min(cs) # [id, consent] pairs: by id first
	some [id, c] in cs
	id == lowest[0]
}

any_consent := c if {
	now := input.time
	is_number(now)
	org := input.subject.org
	patient := input.resource.patient
	refs := {"", null, input.subject.ref}
	cs := [[x.id, x] |
		some x in input.consents
		x.grantee.org == org
		x.status == "active"
		x.patientRef == patient
		count(x.purposes) > 0
		object.get(x.grantee, "subjectRef", "") in refs
		scope_matches(x)
		from := x.validFrom
		is_number(from)
		from <= now
		until := object.get(x, "validUntil", null)
		until < "" # null, a boolean or a number: not text
		object.get({null: true}, until, now < until)
	]
	lowest := min(cs) # [id, consent] pairs: by id first
	some [id, c] in cs
	id == lowest[0]
}

# ---------------------------------------------------------------------------
# Care relationship
#
# A provider organization writes records only for a patient who has a
# care relationship with it: an active consent of that patient naming the
# organization as grantee, whatever its scope and purposes — a consent
# with an empty scope is exactly that, a registration that opens nothing
# to read. care_relationship is such a consent, the lowest id first.
care_relationship := c if {
	now := input.time
	is_number(now)
	org := input.subject.org
	patient := input.resource.patient
	cs := [[x.id, x] |
		some x in input.consents
		x.grantee.org == org
		x.status == "active"
		x.patientRef == patient
		from := x.validFrom
		is_number(from)
		from <= now
		until := object.get(x, "validUntil", null)
		until < "" # null, a boolean or a number: not text
		object.get({null: true}, until, now < until)
	]
	lowest := min(cs)
	some [id, c] in cs
	id == lowest[0]
}

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
