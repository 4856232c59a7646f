package records

import (
	"context"
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
	Ledger         struct {
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
	page, err := s.Ledger.AccessLog(ctx, consent.AccessFilter{PatientRef: ref, After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	refs := make([]string, 0, 2*len(page.Entries))
	for _, e := range page.Entries {
		refs = append(refs, e.ActorRef, e.PatientRef)
	}
	names, err := s.Store.Aliases(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := &AccessPage{Entries: make([]AccessView, 0, len(page.Entries)), Next: page.Next}
	for _, e := range page.Entries {
		v := AccessView{
			ID: e.ID, Time: e.Time, Action: e.Action, RecordID: e.RecordID, Patient: names[e.PatientRef],
			Actor: names[e.ActorRef], ActorRef: e.ActorRef, Role: e.Role, Org: e.Org, Purpose: e.Purpose,
			Decision: e.Decision, Reasons: e.Reasons, BreakGlass: e.BreakGlass, ConsentID: e.ConsentID,
			ConsentVersion: e.ConsentVersion, PolicyDigest: e.PolicyDigest,
		}
		v.Ledger.Status, v.Ledger.Tx = "anchored", e.Tx
		if b, err := s.Ledger.Ledger.TxBlock(ctx, e.Tx); err == nil {
			v.Ledger.Block = b
		}
		out.Entries = append(out.Entries, v)
	}
	return out, nil
}
