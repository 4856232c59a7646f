package consent

import (
	"context"
	"encoding/json"
	"time"
)

// Service is a typed client of the contract over any Ledger.
type Service struct {
	Ledger Ledger
	// Sealer, when set, seals access entries before they reach the ledger
	// and opens them when read back (see EntrySealer). A node always sets
	// it (NewSealedService); only tests of the contract itself log entries
	// in clear.
	Sealer EntrySealer
}

// NewService returns a Service over l that logs access entries as given:
// for tests of the contract and its hosts.
func NewService(l Ledger) *Service { return &Service{Ledger: l} }

// NewSealedService returns a Service over l whose access entries reach the
// ledger only in their sealed form.
func NewSealedService(l Ledger, sealer EntrySealer) *Service {
	return &Service{Ledger: l, Sealer: sealer}
}

// sealedWire is an access entry's ledger form as submitted: the fields a
// sealed entry may carry, nothing else.
type sealedWire struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	PatientRef string    `json:"patientRef"`
	Sealed     string    `json:"sealed"`
}

func (s *Service) seal(e AccessEntry) (AccessEntry, error) {
	if s.Sealer == nil {
		return e, nil
	}
	return s.Sealer.SealEntry(e)
}

func (s *Service) open(e *AccessEntry) error {
	if s.Sealer == nil || e == nil {
		return nil
	}
	out, err := s.Sealer.OpenEntry(*e)
	if err != nil {
		return err
	}
	*e = out
	return nil
}

func submit[R any](ctx context.Context, l Ledger, op string, args any) (*R, Receipt, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return nil, Receipt{}, WrapError(EINTERNAL, err, "encode %s", op)
	}
	out, rcpt, err := l.Submit(ctx, op, b)
	if err != nil {
		return nil, Receipt{}, err
	}
	var r R
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, Receipt{}, WrapError(EINTERNAL, err, "decode %s result", op)
	}
	return &r, rcpt, nil
}

func evaluate[R any](ctx context.Context, l Ledger, op string, args any) (R, error) {
	var r R
	b, err := json.Marshal(args)
	if err != nil {
		return r, WrapError(EINTERNAL, err, "encode %s", op)
	}
	out, err := l.Evaluate(ctx, op, b)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return r, WrapError(EINTERNAL, err, "decode %s result", op)
	}
	return r, nil
}

// RegisterOrg registers an organization. ECONFLICT if the id is taken.
func (s *Service) RegisterOrg(ctx context.Context, a RegisterOrgArgs) (*Org, Receipt, error) {
	return submit[Org](ctx, s.Ledger, OpRegisterOrg, a)
}

// SetOrgStatus activates or deactivates an organization.
func (s *Service) SetOrgStatus(ctx context.Context, a SetOrgStatusArgs) (*Org, Receipt, error) {
	return submit[Org](ctx, s.Ledger, OpSetOrgStatus, a)
}

// Grant records a consent. EINVALID for a bad scope, grantee or validity.
func (s *Service) Grant(ctx context.Context, a GrantConsentArgs) (*Consent, Receipt, error) {
	return submit[Consent](ctx, s.Ledger, OpGrantConsent, a)
}

// Revoke revokes a consent. EFORBIDDEN unless by is its patient; ECONFLICT
// when already revoked; ENOTFOUND when unknown.
func (s *Service) Revoke(ctx context.Context, id, byPatientRef string) (*Consent, Receipt, error) {
	return submit[Consent](ctx, s.Ledger, OpRevokeConsent, RevokeConsentArgs{ID: id, By: byPatientRef})
}

// Anchor anchors a record version's salted hash. ECONFLICT when already
// anchored.
func (s *Service) Anchor(ctx context.Context, a Anchor) (*Anchor, Receipt, error) {
	return submit[Anchor](ctx, s.Ledger, OpAnchorRecord, a)
}

// LogAccess commits one access entry. ECONFLICT on a duplicate id.
func (s *Service) LogAccess(ctx context.Context, e AccessEntry) (*AccessEntry, Receipt, error) {
	sealed, err := s.seal(e)
	if err != nil {
		return nil, Receipt{}, err
	}
	out, rcpt, err := submit[AccessEntry](ctx, s.Ledger, OpLogAccess, sealed)
	if err != nil {
		return nil, Receipt{}, err
	}
	return out, rcpt, s.open(out)
}

// LogAccessBatch commits several entries, skipping ids already logged.
func (s *Service) LogAccessBatch(ctx context.Context, entries []AccessEntry) (*BatchResult, Receipt, error) {
	if s.Sealer != nil {
		// The sealed form goes on the wire without the empty fields an
		// AccessEntry would spell out: the batch is most of a block.
		wire := make([]sealedWire, len(entries))
		for i, e := range entries {
			x, err := s.seal(e)
			if err != nil {
				return nil, Receipt{}, err
			}
			wire[i] = sealedWire{ID: x.ID, Time: x.Time, PatientRef: x.PatientRef, Sealed: x.Sealed}
		}
		return submit[BatchResult](ctx, s.Ledger, OpLogAccessBatch, struct {
			Entries []sealedWire `json:"entries"`
		}{wire})
	}
	return submit[BatchResult](ctx, s.Ledger, OpLogAccessBatch, LogAccessBatchArgs{Entries: entries})
}

// Org returns one organization or ENOTFOUND.
func (s *Service) Org(ctx context.Context, id string) (*Org, error) {
	return evaluate[*Org](ctx, s.Ledger, QueryGetOrg, IDArgs{ID: id})
}

// Orgs lists every organization.
func (s *Service) Orgs(ctx context.Context) ([]Org, error) {
	return evaluate[[]Org](ctx, s.Ledger, QueryListOrgs, struct{}{})
}

// Consent returns one consent or ENOTFOUND.
func (s *Service) Consent(ctx context.Context, id string) (*Consent, error) {
	return evaluate[*Consent](ctx, s.Ledger, QueryGetConsent, IDArgs{ID: id})
}

// Consents lists consents by patient or grantee organization.
func (s *Service) Consents(ctx context.Context, f ConsentFilter) ([]Consent, error) {
	return evaluate[[]Consent](ctx, s.Ledger, QueryListConsents, f)
}

// GetAnchor returns a record version's anchor or ENOTFOUND.
func (s *Service) GetAnchor(ctx context.Context, recordID string, version int) (*Anchor, error) {
	return evaluate[*Anchor](ctx, s.Ledger, QueryGetAnchor, AnchorArgs{RecordID: recordID, Version: version})
}

// Access returns one access entry or ENOTFOUND.
func (s *Service) Access(ctx context.Context, id string) (*AccessEntry, error) {
	e, err := evaluate[*AccessEntry](ctx, s.Ledger, QueryGetAccess, IDArgs{ID: id})
	if err != nil {
		return nil, err
	}
	return e, s.open(e)
}

// AccessLog returns a page of access entries.
func (s *Service) AccessLog(ctx context.Context, f AccessFilter) (*AccessPage, error) {
	p, err := evaluate[*AccessPage](ctx, s.Ledger, QueryListAccess, f)
	if err != nil {
		return nil, err
	}
	// An entry this node cannot open — sealed under another pepper (another
	// deployment sharing the channel) or damaged — stays in its ledger
	// form (Sealed set) rather than hide the rest of the page: the caller
	// shows it as unreadable.
	for i := range p.Entries {
		if err := s.open(&p.Entries[i]); err != nil && ErrorCode(err) != EINTEGRITY {
			return nil, err
		}
	}
	return p, nil
}
