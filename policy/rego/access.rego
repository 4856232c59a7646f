# Consents, claims, the access log and the organization registry: why a
# request is denied. The decision chain that allows them is in authz.rego.
package medshare.authz

# ---------------------------------------------------------------------------
# grant, revoke: only the patient, over their own consents.

owner_denial := [sprintf("only the patient may %s consent", [input.action])] if {
	not input.subject.role == "patient"
} else := [sprintf("patients may %s only their own consents", [input.action])]

# ---------------------------------------------------------------------------
# read_consent: the patient, or the grantee organization.

read_consent_denial := ["only the patient or the grantee organization may read a consent"]

# ---------------------------------------------------------------------------
# verify_claim: an insurer checks claim facts against one anchored record
# (resource: that record), under the patient's HPAYMT consent. It learns
# yes/no per fact, never content.

verify_claim_denial := ["only insurers verify claims"] if {
	not input.subject.role == "insurer"
} else := [sprintf(
	"claim verification needs an insurer organization, not one of type %q",
	[text(["subject", "orgType"])],
)] if {
	not insurer
} else := [sprintf("claim verification requires purpose HPAYMT, not %s", [text(["purpose"])])] if {
	not input.purpose == "HPAYMT"
} else := array.concat(
	[sprintf(
		"no active HPAYMT consent from the patient covers record %s (category %s) for insurer %s",
		[text(["resource", "id"]), text(["resource", "category"]), input.subject.org],
	)],
	restricted_note,
)

# ---------------------------------------------------------------------------
# read_audit: auditors read the whole log, patients the entries about them.

read_audit_denial := ["only auditors, and patients for their own records, read the access log"]

# ---------------------------------------------------------------------------
# Organizations: admins manage them; every known role may list them.

manage_orgs_denial := ["only administrators manage organizations"]

list_orgs_denial := [sprintf("role %q may not list organizations", [text(["subject", "role"])])]
