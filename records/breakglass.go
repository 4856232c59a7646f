package records

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// Break-glass reason limits: the free text must say something (at least
// MinBreakGlassText characters once trimmed) and fit a notice.
const (
	MinBreakGlassText = 16
	maxBreakGlassText = 512
)

// breakGlass is a validated emergency declaration: its code goes to the
// policy and the access log, its text only into the patient's notice.
type breakGlass struct {
	code, text string
}

// checkBreakGlass validates an ETREAT request's declaration before anything
// is loaded, so its answer does not depend on the record. EINVALID for an
// unknown code or a missing, short, overlong or control-character text.
func checkBreakGlass(req FetchRequest) (breakGlass, error) {
	code := strings.TrimSpace(req.BreakGlassCode)
	if code == "" {
		code = consent.BreakGlassOther
	}
	if !consent.ValidBreakGlassCode(code) {
		return breakGlass{}, consent.Errorf(consent.EINVALID,
			"X-Break-Glass-Code %q is not one of %s", code, strings.Join(consent.BreakGlassCodes(), ", "))
	}
	text := strings.TrimSpace(req.BreakGlassReason)
	switch {
	case len(req.BreakGlassReason) > maxBreakGlassText:
		return breakGlass{}, consent.Errorf(consent.EINVALID, "X-Break-Glass-Reason is longer than %d bytes", maxBreakGlassText)
	case !utf8.ValidString(text) || strings.ContainsFunc(text, unicode.IsControl):
		return breakGlass{}, consent.Errorf(consent.EINVALID, "X-Break-Glass-Reason must be plain text")
	case utf8.RuneCountInString(text) < MinBreakGlassText:
		return breakGlass{}, consent.Errorf(consent.EINVALID,
			"break-glass (ETREAT) needs X-Break-Glass-Reason: at least %d characters saying why this is an emergency", MinBreakGlassText)
	}
	return breakGlass{code: code, text: text}, nil
}

// notifyBreakGlass keeps the notice of an allowed emergency read, with its
// free text sealed, and sets the entry's commitment to that text. It runs
// before the entry is logged, so the entry can carry the commitment, and
// before any content leaves: a read whose patient cannot be told does not
// happen (EUNAVAILABLE).
func (s *Service) notifyBreakGlass(ctx context.Context, sub policy.Subject, r *Record, bg breakGlass, e *consent.AccessEntry) error {
	if s.Notices == nil {
		return consent.Errorf(consent.EUNAVAILABLE, "no notice store: break-glass reads are refused")
	}
	n := &Notice{
		ID: NewNoticeID(e.Time), PatientRef: r.PatientRef, Time: e.Time, Kind: NoticeBreakGlass,
		AccessID: e.ID, RecordID: r.ID, Org: sub.Org, ActorRef: sub.Ref, ReasonCode: bg.code,
	}
	commit, err := sealNoticeText(s.Keys, n, bg.text)
	if err != nil {
		return err
	}
	if err := s.Notices.SaveNotice(ctx, n); err != nil {
		return unavailable(err, "notice store")
	}
	e.NoteCommit = commit
	return nil
}

// emergencyObligations are the duties every allowed ETREAT read carries,
// whether break-glass or under a consent naming ETREAT: an emergency read
// under a consent needs the same care as one without.
var emergencyObligations = []string{policy.ObligationNotifyPatient, policy.ObligationFlagAudit}

// withEmergencyObligations returns d with the emergency obligations added.
func withEmergencyObligations(d policy.Decision) policy.Decision {
	for _, o := range emergencyObligations {
		if !containsString(d.Obligations, o) {
			d.Obligations = append(d.Obligations, o)
		}
	}
	return d
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
