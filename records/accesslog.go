package records

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// AccessView is an access-log entry as the API shows it.
type AccessView struct {
	ID             string    `json:"id"`
	Time           time.Time `json:"time"`
	Action         string    `json:"action"`
	RecordID       string    `json:"recordId,omitempty"`
	Patient        string    `json:"patient,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	ActorRef       string    `json:"actorRef"`
	Role           string    `json:"role"`
	Org            string    `json:"org,omitempty"`
	Purpose        string    `json:"purpose"`
	Decision       string    `json:"decision"`
	Reasons        []string  `json:"reasons"`
	BreakGlass     bool      `json:"breakGlass"`
	ConsentID      string    `json:"consentId,omitempty"`
	ConsentVersion int       `json:"consentVersion,omitempty"`
	PolicyDigest   string    `json:"policyDigest"`
	// BreakGlassCode is an emergency read's coded reason; its free text is
	// in the patient's notice (GET /v1/notices).
	BreakGlassCode string `json:"breakGlassCode,omitempty"`
	// ClaimItems are the elements a claim check cited and their answers.
	ClaimItems []consent.ClaimItemLog `json:"claimItems,omitempty"`
	// Unreadable marks an entry on the ledger that this node cannot open:
	// sealed under another deployment's pepper, or damaged. Only its id and
	// time are known.
	Unreadable bool `json:"unreadable,omitempty"`
	Ledger     struct {
		Status string `json:"status"`
		Tx     string `json:"tx,omitempty"`
		Block  uint64 `json:"block,omitempty"`
	} `json:"ledger"`
}

// AccessPage is one page of the access log.
type AccessPage struct {
	Entries []AccessView `json:"entries"`
	Next    string       `json:"next,omitempty"`
}

// AccessLog returns a page of the access log: a patient sees entries about
// their own records; an auditor sees all, or one patient's when patient is
// set. Errors: EFORBIDDEN, EINVALID.
func (s *Service) AccessLog(ctx context.Context, sub policy.Subject, patient, after string, limit int) (*AccessPage, error) {
	ref := ""
	if patient != "" {
		if !consent.ValidID(patient) {
			return nil, consent.Errorf(consent.EINVALID, "patient %q is not a valid id", patient)
		}
		ref = s.Refs.PatientRef(patient)
	}
	if sub.Role == "patient" {
		if ref != "" && ref != sub.PatientRef {
			return nil, consent.Errorf(consent.EFORBIDDEN, "access denied: patients read only their own access log")
		}
		ref = sub.PatientRef
	}
	d := s.decide(ctx, policy.Input{Subject: sub, Action: "read_audit", Resource: policy.Resource{Type: "access-log", Patient: ref}})
	if !d.Allow {
		return nil, denied(d)
	}
	// Reading a patient's log is itself in that patient's log (their own
	// reads of it are not: they are no one else's business).
	if sub.Role != policy.RolePatient && ref != "" && after == "" {
		if err := s.logEvent(ctx, sub, policy.ActionReadAudit, ref, d, nil); err != nil {
			return nil, err
		}
	}
	f := consent.AccessFilter{After: after, Limit: limit}
	if ref != "" {
		// On the ledger a patient's entries are indexed under one pairwise
		// reference per organization that acted (and their own): their log
		// is the merge of those.
		rel, err := s.relationshipRefs(ctx, ref)
		if err != nil {
			return nil, err
		}
		f.PatientRefs = slices.Collect(maps.Keys(rel))
	}
	page, err := s.Ledger.AccessLog(ctx, f)
	if err != nil {
		return nil, err
	}
	pending, err := s.pendingEntries(ctx, ref, page)
	if err != nil {
		return nil, err
	}
	refs := make([]string, 0, 2*len(page.Entries))
	for _, e := range page.Entries {
		refs = append(refs, e.ActorRef, e.PatientRef)
	}
	for _, e := range pending {
		refs = append(refs, e.ActorRef, e.PatientRef)
	}
	names, err := s.Store.Aliases(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := &AccessPage{Entries: make([]AccessView, 0, len(page.Entries)), Next: page.Next}
	for i, e := range append(page.Entries, pending...) {
		v := AccessView{
			ID: e.ID, Time: e.Time, Action: e.Action, RecordID: e.RecordID, Patient: names[e.PatientRef],
			Actor: names[e.ActorRef], ActorRef: e.ActorRef, Role: e.Role, Org: e.Org, Purpose: e.Purpose,
			Decision: e.Decision, Reasons: e.Reasons, BreakGlass: e.BreakGlass, ConsentID: e.ConsentID,
			ConsentVersion: e.ConsentVersion, PolicyDigest: e.PolicyDigest,
			BreakGlassCode: e.BreakGlassCode, ClaimItems: e.ClaimItems, Unreadable: e.Sealed != "",
		}
		if v.Unreadable {
			v.ActorRef, v.Reasons = "", []string{"sealed: this node cannot open this entry"}
		}
		if i >= len(page.Entries) {
			v.Ledger.Status = consent.OutboxPending
			out.Entries = append(out.Entries, v)
			continue
		}
		v.Ledger.Status, v.Ledger.Tx = consent.OutboxAnchored, e.Tx
		if b, err := s.Ledger.Ledger.TxBlock(ctx, e.Tx); err == nil {
			v.Ledger.Block = b
		}
		out.Entries = append(out.Entries, v)
	}
	return out, nil
}

// pendingEntries returns this node's outbox entries not yet anchored, shown
// after the last ledger page so nothing durable is hidden from its patient.
// It reads the outbox's index of pending entries, so its cost follows what
// is pending, not the patient's history. The outbox may drop an anchored
// entry that a page's cursor names (the journal's compaction); the listing
// then starts again, skipping what it already has.
func (s *Service) pendingEntries(ctx context.Context, ref string, page *consent.AccessPage) ([]consent.AccessEntry, error) {
	if s.Outbox == nil || page.Next != "" {
		return nil, nil
	}
	seen := make(map[string]bool, len(page.Entries))
	for _, e := range page.Entries {
		seen[e.ID] = true
	}
	var out []consent.AccessEntry
	after, restarts := "", 0
	for {
		batch, err := s.Outbox.ListPending(ctx, ref, after, pendingPage)
		if consent.ErrorCode(err) == consent.EINVALID && after != "" && restarts < 3 {
			after, restarts = "", restarts+1
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, o := range batch {
			if !seen[o.Entry.ID] {
				seen[o.Entry.ID] = true
				out = append(out, o.Entry)
			}
		}
		if len(batch) < pendingPage {
			if restarts > 0 { // two passes: put them back in (time, id) order
				slices.SortFunc(out, func(a, b consent.AccessEntry) int {
					return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
				})
			}
			return out, nil
		}
		after = batch[len(batch)-1].Entry.ID
	}
}

// pendingPage is how many pending entries pendingEntries reads at a time.
const pendingPage = 1000
