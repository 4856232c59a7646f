package records

import (
	"context"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// NoticeView is a notice as the API shows it to its patient or an auditor:
// the organization and the actor by name where known, the coded reason and
// the free text, decrypted.
type NoticeView struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"`
	AccessID   string    `json:"accessId"`
	RecordID   string    `json:"recordId,omitempty"`
	Org        string    `json:"org"`
	Actor      string    `json:"actor,omitempty"`
	ReasonCode string    `json:"reasonCode"`
	Reason     string    `json:"reason"`
}

// NoticePage is one page of a patient's notices.
type NoticePage struct {
	Notices []NoticeView `json:"notices"`
	Next    string       `json:"next,omitempty"`
}

// ListNotices returns a page of a patient's notices: a patient reads their
// own (patient must be empty or their own id); an auditor names the
// patient. Errors: EINVALID, EFORBIDDEN, EUNAVAILABLE, EINTEGRITY.
func (s *Service) ListNotices(ctx context.Context, sub policy.Subject, patient, after string, limit int) (*NoticePage, error) {
	if patient != "" && !consent.ValidID(patient) {
		return nil, consent.Errorf(consent.EINVALID, "patient %q is not a valid id", patient)
	}
	if after != "" && !consent.ValidID(after) {
		return nil, consent.Errorf(consent.EINVALID, "cursor %q is invalid", after)
	}
	if limit < 0 || limit > 1000 {
		return nil, consent.Errorf(consent.EINVALID, "limit must be between 1 and 1000")
	}
	if limit == 0 {
		limit = DefaultPageLimit
	}
	ref := sub.PatientRef
	if patient != "" && (sub.Role != policy.RolePatient || s.Refs.PatientRef(patient) != sub.PatientRef) {
		ref = s.Refs.PatientRef(patient)
	}
	d := s.decide(ctx, policy.Input{Subject: sub, Action: policy.ActionReadAudit, Resource: policy.Resource{Type: "access-log", Patient: ref}})
	if !d.Allow || ref == "" {
		return nil, denied(d)
	}
	if s.Notices == nil {
		return &NoticePage{Notices: []NoticeView{}}, nil
	}
	ns, err := s.Notices.Notices(ctx, NoticeFilter{PatientRef: ref, After: after, Limit: limit + 1})
	if err != nil {
		return nil, unavailable(err, "notice store")
	}
	page := &NoticePage{Notices: make([]NoticeView, 0, min(len(ns), limit))}
	if len(ns) > limit {
		ns, page.Next = ns[:limit], ns[limit-1].ID
	}
	refs := make([]string, 0, len(ns))
	for _, n := range ns {
		refs = append(refs, n.ActorRef)
	}
	names, err := s.Store.Aliases(ctx, refs)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		text, err := openNoticeText(s.Keys, n)
		if err != nil {
			return nil, err
		}
		page.Notices = append(page.Notices, NoticeView{
			ID: n.ID, Time: n.Time, Kind: n.Kind, AccessID: n.AccessID, RecordID: n.RecordID,
			Org: n.Org, Actor: names[n.ActorRef], ReasonCode: n.ReasonCode, Reason: text,
		})
	}
	return page, nil
}
