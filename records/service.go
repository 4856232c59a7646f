package records

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// Authorizer decides requests. policy.Engine implements it.
type Authorizer interface {
	// Decide evaluates in; an error means deny.
	Decide(ctx context.Context, in policy.Input) (policy.Decision, error)
	// Digest identifies the loaded policy.
	Digest() string
}

// AccessLogger makes access entries durable before content leaves. On the
// embedded ledger it commits the entry; on Fabric it writes the outbox.
type AccessLogger interface {
	// Log makes e durable. EUNAVAILABLE when it cannot.
	Log(ctx context.Context, e consent.AccessEntry) error
}

// ReceiptSigner signs claim-verification receipts as compact JWS.
type ReceiptSigner interface {
	// Sign returns a compact JWS over payload.
	Sign(payload []byte) (string, error)
}

// ConsentSource lists consents for authorization. consent.Service reads the
// ledger; a read model in the document store can stand in where the ledger
// is slow to query.
type ConsentSource interface {
	// Consents lists consents by patient or grantee organization.
	Consents(ctx context.Context, f consent.ConsentFilter) ([]consent.Consent, error)
}

// Service is medshare's application service: it carries out the three
// journeys (upload and fetch records, grant and revoke consent, verify
// claims) and the access log, asking the Authorizer before each step and
// logging each read before any content leaves.
type Service struct {
	Store      Store
	Keys       KeyRing
	Ledger     *consent.Service
	Consents   ConsentSource
	Access     AccessLogger
	Authz      Authorizer
	Refs       *consent.Pseudonymizer
	Receipts   ReceiptSigner
	ReceiptKID string
	Logger     *slog.Logger
	Now        func() time.Time

	// MaxContentBytes bounds an uploaded record; 0 means 8 MiB.
	MaxContentBytes int

	// ConsentCache, when set, is the consent read model: grants and
	// revokes made through this node are written to it as soon as they
	// commit, so this node's next read already sees them.
	ConsentCache consent.ConsentStore
	// Outbox, when set, is where pending access entries wait; the access
	// log shows them as pending until anchored.
	Outbox consent.Outbox

	// Notices keeps patients' notices. A break-glass read is refused
	// (EUNAVAILABLE) when there is nowhere to keep its notice.
	Notices NoticeStore
	// BreakGlassLimit bounds each actor's emergency (ETREAT) reads, keyed
	// by the actor's pseudonym; nil allows any number.
	BreakGlassLimit *Limiter
	// DeniedLimit bounds each actor's refused reads (denials and unknown
	// records alike, so its 429 tells nothing about which was which); nil
	// allows any number.
	DeniedLimit *Limiter
	// MaxConsentValidity bounds how long a consent may run; a grant
	// without validUntil runs this long. 0 means DefaultMaxConsentValidity.
	MaxConsentValidity time.Duration
	// ClaimQuota bounds how often one insurer organization may cite one
	// element of one record in claims (keyed org, record, path); nil means
	// DefaultClaimAttempts per DefaultClaimWindow, a Limiter with Limit 0
	// allows any number.
	ClaimQuota *Limiter
	// MaxClaimBytes bounds the plaintext one claim decrypts in all; 0 means
	// DefaultMaxClaimBytes. MaxClaimRecordBytes bounds one cited record; 0
	// means DefaultMaxClaimRecordBytes. Records beyond either answer "not
	// verified" without being decrypted.
	MaxClaimBytes, MaxClaimRecordBytes int

	defaultClaimQuota lazyLimiter // ClaimQuota when nil, made on first use

	anchors boundedMap[string, consent.Anchor] // committed anchors, which never change

	known boundedMap[string, struct{}] // refs whose alias is stored
}

// rememberActor stores sub's alias once per process, so access logs can
// name actors to those allowed to read them.
func (s *Service) rememberActor(ctx context.Context, sub policy.Subject) error {
	if sub.Ref == "" {
		return nil
	}
	return s.rememberAlias(ctx, sub.Ref, sub.ID)
}

// rememberAlias stores that pseudonym ref stands for id, unless this
// process has already stored it: a pseudonym is an HMAC of the id, so the
// pair never changes, and the write (a store commit) need not be repeated.
func (s *Service) rememberAlias(ctx context.Context, ref, id string) error {
	if _, ok := s.known.get(ref); ok {
		return nil
	}
	if err := s.Store.SaveAlias(ctx, ref, id); err != nil {
		return err
	}
	s.known.put(ref, struct{}{})
	return nil
}

// LedgerAccessLog logs each access entry as its own ledger transaction (the
// embedded ledger's group commit batches them).
type LedgerAccessLog struct {
	Ledger *consent.Service
}

// Log implements AccessLogger.
func (l LedgerAccessLog) Log(ctx context.Context, e consent.AccessEntry) error {
	_, _, err := l.Ledger.LogAccess(ctx, e)
	return err
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// NewID returns a random id (130 bits, lowercase base32) with a short
// prefix naming its kind.
func NewID(prefix string) string {
	return prefix + strings.ToLower(rand.Text())
}

// decide asks the Authorizer and turns an evaluation error into a denial
// that still carries a reason: medshare fails closed.
func (s *Service) decide(ctx context.Context, in policy.Input) policy.Decision {
	if in.Time.IsZero() {
		in.Time = s.now()
	}
	if in.Consents == nil {
		in.Consents = []consent.Consent{}
	}
	d, err := s.Authz.Decide(ctx, in)
	if err != nil {
		s.logger().ErrorContext(ctx, "policy evaluation failed", "err", err, "action", in.Action)
		return policy.Decision{Allow: false, Reasons: []string{"policy evaluation failed; access denied"}, PolicyDigest: s.Authz.Digest()}
	}
	if len(d.Reasons) == 0 {
		d.Reasons = []string{"no reason given"}
	}
	return d
}

// denied returns the EFORBIDDEN error for a denial, reasons in the message.
func denied(d policy.Decision) error {
	msg := "access denied"
	for i, r := range d.Reasons {
		if i == 0 {
			msg += ": " + r
		} else {
			msg += "; " + r
		}
	}
	return consent.Errorf(consent.EFORBIDDEN, "%s", msg)
}

// grantedConsents returns the consents of patientRef granted to org, for the
// policy; an empty org gets none. On the ledger a consent carries the
// pairwise reference of its patient and grantee (Pseudonymizer.Pair), so it
// is found by that reference; the policy sees it under the patient's
// node-internal reference, the one its resource names.
func (s *Service) grantedConsents(ctx context.Context, patientRef, org string) ([]consent.Consent, error) {
	if org == "" {
		return []consent.Consent{}, nil
	}
	pair := s.Refs.Pair(patientRef, org)
	all, err := s.Consents.Consents(ctx, consent.ConsentFilter{PatientRef: pair})
	if err != nil {
		return nil, err
	}
	// Consents that are revoked or expired never allow anything, so they
	// are left out of the policy input; the policy checks validity again.
	now := s.now()
	out := make([]consent.Consent, 0, len(all))
	for _, c := range all {
		if c.PatientRef == pair && c.Grantee.Org == org && c.ActiveAt(now) {
			c.PatientRef = patientRef
			out = append(out, c)
		}
	}
	return out, nil
}

// relationshipRefs returns the pairwise references under which a patient's
// consents and access entries are kept on the ledger: one per registered
// organization, and the patient's own (org ""). Each maps to its org.
func (s *Service) relationshipRefs(ctx context.Context, patientRef string) (map[string]string, error) {
	orgs, err := s.Ledger.Orgs(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(orgs)+1)
	out[s.Refs.Pair(patientRef, "")] = ""
	for _, o := range orgs {
		out[s.Refs.Pair(patientRef, o.ID)] = o.ID
	}
	return out, nil
}
