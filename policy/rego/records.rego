# Records: why a read (content), list (metadata) or write (upload) is
# denied. The decision chain that allows them is in authz.rego.
package medshare.authz

# ---------------------------------------------------------------------------
# read: record content.

read_denial := ["insurers never read record content: they verify claim facts (verify_claim) under an HPAYMT consent"] if {
	input.subject.role == "insurer"
} else := ["administrators manage organizations and read no records"] if {
	input.subject.role == "admin"
} else := ["auditors read the access log, not records"] if {
	input.subject.role == "auditor"
} else := ["patients may read only their own records"] if {
	input.subject.role == "patient"
} else := [sprintf("role %q may not read records", [text(["subject", "role"])])] if {
	not input.subject.role == "provider"
} else := [sprintf(
	"providers read records only as members of a hospital, clinic or lab (organization %q of type %q)",
	[text(["subject", "org"]), text(["subject", "orgType"])],
)] if {
	not care_provider
} else := [sprintf(
	"break-glass cannot open restricted category %s: only a consent naming that category or record opens it",
	[input.resource.category],
)] if {
	input.purpose == "ETREAT"
	category_restricted
} else := ["break-glass (ETREAT) requires a declared emergency and a non-empty break-glass reason"] if {
	input.purpose == "ETREAT"
	not break_glass_reason
} else := array.concat(
	[sprintf(
		"no active consent for org %s covers record %s (category %s) for purpose %s",
		[text(["subject", "org"]), text(["resource", "id"]), text(["resource", "category"]), text(["purpose"])],
	)],
	restricted_note,
)

# restricted_note explains why a wildcard consent did not help.
restricted_note := [sprintf(
	"category %s is restricted: the wildcard category does not open it; a consent must name it or the record",
	[input.resource.category],
)] if {
	category_restricted
} else := []

# ---------------------------------------------------------------------------
# list: record metadata (id, category, dates), never content.

list_denial := ["administrators manage organizations and see no records"] if {
	input.subject.role == "admin"
} else := ["auditors read the access log, not records"] if {
	input.subject.role == "auditor"
} else := ["patients may see only their own records"] if {
	input.subject.role == "patient"
} else := [sprintf(
	"no active HPAYMT consent from the patient covers record %s (category %s) for insurer %s",
	[text(["resource", "id"]), text(["resource", "category"]), input.subject.org],
)] if {
	insurer
} else := [sprintf(
	"role %q with organization type %q may not see records",
	[text(["subject", "role"]), text(["subject", "orgType"])],
)] if {
	not care_provider
} else := array.concat(
	[sprintf(
		"no active consent for org %s covers record %s (category %s) for any purpose",
		[input.subject.org, text(["resource", "id"]), text(["resource", "category"])],
	)],
	restricted_note,
)

# ---------------------------------------------------------------------------
# write: upload a record, as one's own organization.

write_denial := ["only providers at a hospital, clinic or lab upload records"] if {
	not care_provider
} else := [sprintf(
	"providers upload records only as their own organization (%s), not as %s",
	[input.subject.org, text(["resource", "org"])],
)] if {
	not authoring_org
} else := [sprintf(
	"%s has no care relationship with this patient: the patient registers with it (a consent naming it, any scope) before it stores records",
	[input.subject.org],
)]
