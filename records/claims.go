package records

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/policy"
)

// Claim limits.
const (
	maxClaimItems = 100
	maxValueBytes = 4096
)

// Claim defaults, used when the Service fields are zero.
const (
	// DefaultClaimAttempts is how many times one insurer organization may
	// cite one element of one record in DefaultClaimWindow.
	DefaultClaimAttempts = 5
	// DefaultClaimWindow is the claim quota's window.
	DefaultClaimWindow = 24 * time.Hour
	// DefaultMaxClaimBytes bounds the plaintext one claim decrypts in all.
	DefaultMaxClaimBytes = 16 << 20
	// DefaultMaxClaimRecordBytes bounds a record a claim may cite: a larger
	// one answers "not verified" without being decrypted.
	DefaultMaxClaimRecordBytes = 4 << 20
)

// The only two reasons an item is answered with. Every failure — a wrong
// value, a path not in the record, an unknown record, another patient's
// record, a record the insurer may not see, one that is not JSON or too
// large — gets the same NotVerified, so an answer tells nothing about
// which it was; the patient's access log says why.
const (
	Verified    = "verified against the anchored record"
	NotVerified = "not verified"
)

// sealOverhead is what Seal adds to content: the GCM nonce and tag.
const sealOverhead = 12 + 16

// ClaimItem is one fact a claim cites: the value at a JSON Pointer in a
// record. The pointer must name an element of the claim allow-list (see
// claimRules and docs/CLAIMS.md) and the value be a string, number or
// boolean.
type ClaimItem struct {
	RecordID string          `json:"recordId"`
	Path     string          `json:"path"`
	Value    json.RawMessage `json:"value"`
}

// ClaimRequest asks whether each cited fact is in the anchored records.
type ClaimRequest struct {
	ClaimID string      `json:"claimId"`
	Patient string      `json:"patient"`
	Items   []ClaimItem `json:"items"`
}

// ItemResult is the yes/no answer for one item: Reason is Verified or
// NotVerified, never more. ValueHash is base64url(sha256(the claimed value
// as canonical JSON)), binding the receipt to the value without holding it.
type ItemResult struct {
	RecordID  string `json:"recordId"`
	Path      string `json:"path"`
	ValueHash string `json:"valueHash"`
	OK        bool   `json:"ok"`
	Reason    string `json:"reason"`
}

// AnchorRef names the ledger anchor a verification relied on, and the
// organization that authored the record.
type AnchorRef struct {
	RecordID string `json:"recordId"`
	Version  int    `json:"version"`
	Hash     string `json:"hash"`
	Tx       string `json:"tx"`
	Org      string `json:"org"`
}

// ClaimResult is the answer to a claim verification.
type ClaimResult struct {
	ClaimID  string       `json:"claimId"`
	Verified bool         `json:"verified"`
	Items    []ItemResult `json:"items"`
	Receipt  string       `json:"receipt"`
}

// ReceiptPayload is what the receipt JWS signs. An insurer checks it
// offline against the published JWKS. PatientRef is the patient's pairwise
// reference for the insurer (consent.Pseudonymizer.Pair). Anchors and
// AccessIDs cover only the records at least one item was verified in, so
// the receipt, like the answer, does not tell an unknown record from one
// the insurer may not see.
type ReceiptPayload struct {
	Type       string       `json:"typ"`
	ClaimID    string       `json:"claimId"`
	PatientRef string       `json:"patientRef"`
	Insurer    string       `json:"insurer"`
	Verified   bool         `json:"verified"`
	Items      []ItemResult `json:"items"`
	Anchors    []AnchorRef  `json:"anchors"`
	AccessIDs  []string     `json:"accessIds"`
	PolicyHash string       `json:"policyDigest"`
	Time       string       `json:"time"`
}

func validateClaim(req *ClaimRequest) error {
	if !consent.ValidID(req.ClaimID) {
		return consent.Errorf(consent.EINVALID, "claimId %q is invalid", req.ClaimID)
	}
	if !consent.ValidID(req.Patient) {
		return consent.Errorf(consent.EINVALID, "patient %q is not a valid id", req.Patient)
	}
	if len(req.Items) == 0 || len(req.Items) > maxClaimItems {
		return consent.Errorf(consent.EINVALID, "a claim cites 1 to %d items", maxClaimItems)
	}
	for i, it := range req.Items {
		if !consent.ValidID(it.RecordID) {
			return consent.Errorf(consent.EINVALID, "items[%d].recordId %q is invalid", i, it.RecordID)
		}
		toks, err := ParsePointer(it.Path)
		if err != nil {
			return consent.Errorf(consent.EINVALID, "items[%d].path: %s", i, consent.ErrorMessage(err))
		}
		if !citable(toks) {
			return consent.Errorf(consent.EINVALID, "items[%d].path %q: this element may not be cited in a claim (see the claim allow-list in docs/CLAIMS.md)", i, it.Path)
		}
		if len(it.Value) == 0 || len(it.Value) > maxValueBytes {
			return consent.Errorf(consent.EINVALID, "items[%d].value must be a JSON value of at most %d bytes", i, maxValueBytes)
		}
		v, err := decodeJSON(it.Value)
		if err != nil {
			return consent.Errorf(consent.EINVALID, "items[%d].value is not valid JSON", i)
		}
		if !scalar(v) {
			return consent.Errorf(consent.EINVALID, "items[%d].value must be a string, number or boolean", i)
		}
	}
	return nil
}

// scalar reports whether a decoded JSON value is a string, number or
// boolean: the only values a claim compares.
func scalar(v any) bool {
	switch v.(type) {
	case string, json.Number, bool:
		return true
	}
	return false
}

// citedRecord is one record a claim cites, with the indexes of its items
// and, once processed, their answers.
type citedRecord struct {
	id     string
	items  []int
	ok     map[int]bool
	anchor *consent.Anchor // set when the record was opened
	entry  string          // its access entry, when one was logged
}

// anyOK reports whether some item of c was verified.
func (c *citedRecord) anyOK() bool {
	for _, ok := range c.ok {
		if ok {
			return true
		}
	}
	return false
}

// groupByRecord returns the cited records in order of first citation.
func groupByRecord(items []ClaimItem) []*citedRecord {
	var out []*citedRecord
	byID := map[string]*citedRecord{}
	for i, it := range items {
		c := byID[it.RecordID]
		if c == nil {
			c = &citedRecord{id: it.RecordID, ok: map[int]bool{}}
			byID[it.RecordID] = c
			out = append(out, c)
		}
		c.items = append(c.items, i)
	}
	return out
}

// VerifyClaim answers, per item, whether the value at the item's path in
// the anchored record equals the claimed value. Only allow-listed elements
// may be cited (EINVALID otherwise). The insurer must hold an active
// HPAYMT consent from the patient (EFORBIDDEN otherwise, the same answer
// whether or not the patient exists); each element of each record may be
// cited only so often (ETOOMANY, logged as a denial). Each cited record is
// then authorized, opened, checked and cleared in turn, one at a time,
// within byte caps; an item in a record that is unknown, another
// patient's, not covered by a consent, not JSON or too large answers
// NotVerified exactly as a wrong value does. Every record's access entry,
// with each cited element and its answer (never the value), is durable
// before the answer leaves. Errors: EINVALID, EFORBIDDEN, ETOOMANY,
// EUNAVAILABLE.
func (s *Service) VerifyClaim(ctx context.Context, sub policy.Subject, req ClaimRequest) (*ClaimResult, error) {
	if err := validateClaim(&req); err != nil {
		return nil, err
	}
	patientRef := s.Refs.PatientRef(req.Patient)
	consents, err := s.grantedConsents(ctx, patientRef, sub.Org)
	if err != nil {
		return nil, err
	}
	cited := groupByRecord(req.Items)
	if err := s.rememberActor(ctx, sub); err != nil {
		return nil, err
	}
	if !holdsPaymentConsent(sub, consents) {
		return nil, s.refuseClaim(ctx, sub, patientRef, consents, cited, req.Items)
	}
	if err := s.spendClaimQuota(ctx, sub, patientRef, req.Items); err != nil {
		return nil, err
	}
	v := claimVerifier{s: s, sub: sub, patientRef: patientRef, consents: consents, items: req.Items,
		budget: positiveOr(s.MaxClaimBytes, DefaultMaxClaimBytes), maxRecord: positiveOr(s.MaxClaimRecordBytes, DefaultMaxClaimRecordBytes)}
	var entries []consent.AccessEntry
	for _, c := range cited {
		e, err := v.verify(ctx, c)
		if err != nil {
			return nil, err
		}
		if e != nil {
			c.entry = e.ID
			entries = append(entries, *e)
		}
	}
	if err := s.logAll(ctx, entries); err != nil {
		return nil, unavailable(err, "access log")
	}
	return s.answerClaim(req, patientRef, sub, cited)
}

// holdsPaymentConsent reports whether sub is an insurer holding an active
// HPAYMT consent, for its organization or for itself, among consents (the
// patient's active consents granted to sub's organization). Which records
// it covers is the policy's decision, record by record.
func holdsPaymentConsent(sub policy.Subject, consents []consent.Consent) bool {
	if sub.Role != policy.RoleInsurer || sub.OrgType != consent.OrgInsurer {
		return false
	}
	for _, c := range consents {
		if (c.Grantee.SubjectRef == "" || c.Grantee.SubjectRef == sub.Ref) && slices.Contains(c.Purposes, consent.PurposePayment) {
			return true
		}
	}
	return false
}

// refuseClaim refuses a claim from a caller without a payment consent:
// each cited record of the patient is logged as denied, nothing is opened,
// and the answer is the same whether the patient exists or not.
func (s *Service) refuseClaim(ctx context.Context, sub policy.Subject, patientRef string, consents []consent.Consent, cited []*citedRecord, items []ClaimItem) error {
	var entries []consent.AccessEntry
	for _, c := range cited {
		r, _, err := s.loadAnchored(ctx, c.id)
		switch {
		case consent.ErrorCode(err) == consent.ENOTFOUND || consent.ErrorCode(err) == consent.EINTEGRITY:
			continue
		case err != nil:
			return err
		case r.PatientRef != patientRef:
			continue
		}
		d := s.decide(ctx, claimInput(sub, r, consents))
		e := s.entry(sub, policy.ActionVerifyClaim, r, consent.PurposePayment, d)
		e.ClaimItems = claimLog(c, items)
		entries = append(entries, e)
	}
	if err := s.logAll(ctx, entries); err != nil {
		return unavailable(err, "access log")
	}
	if sub.Role != policy.RoleInsurer {
		return consent.Errorf(consent.EFORBIDDEN, "access denied: only insurers verify claims")
	}
	return consent.Errorf(consent.EFORBIDDEN, "access denied: claim verification needs an active payment (HPAYMT) consent from the patient to your organization")
}

func claimInput(sub policy.Subject, r *Record, consents []consent.Consent) policy.Input {
	return policy.Input{
		Subject: sub, Action: policy.ActionVerifyClaim, Purpose: consent.PurposePayment, Consents: consents,
		Resource: policy.Resource{Type: "record", ID: r.ID, Patient: r.PatientRef, Category: r.Category, Org: r.Org},
	}
}

// claimLog returns the access log's form of c's items: each element and
// its answer (false until answered), never the value.
func claimLog(c *citedRecord, items []ClaimItem) []consent.ClaimItemLog {
	out := make([]consent.ClaimItemLog, 0, len(c.items))
	for _, i := range c.items {
		out = append(out, consent.ClaimItemLog{Path: items[i].Path, OK: c.ok[i]})
	}
	return out
}

// claimQuota returns the quota on citing one element of one record.
func (s *Service) claimQuota() *Limiter {
	if s.ClaimQuota != nil {
		return s.ClaimQuota
	}
	return s.defaultClaimQuota.get()
}

// lazyLimiter makes the default claim quota on first use.
type lazyLimiter struct {
	once sync.Once
	l    *Limiter
}

func (z *lazyLimiter) get() *Limiter {
	z.once.Do(func() { z.l = NewLimiter(DefaultClaimAttempts, DefaultClaimWindow) })
	return z.l
}

// quotaKey names one element of one record as cited by one insurer
// organization; the path is in its canonical spelling.
func quotaKey(org string, it ClaimItem) string {
	toks, _ := ParsePointer(it.Path)
	return org + "\x00" + it.RecordID + "\x00" + pointerString(toks)
}

// pointerString is the RFC 6901 spelling of toks.
func pointerString(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// spendClaimQuota counts one attempt per item against the quota of its
// element, whether or not the record exists, so the quota's answer tells
// nothing about records. When an element has no attempts left the claim is
// refused (ETOOMANY), nothing is counted, and the exhaustion is logged, as
// a denial, before the answer.
func (s *Service) spendClaimQuota(ctx context.Context, sub policy.Subject, patientRef string, items []ClaimItem) error {
	q, now := s.claimQuota(), s.now()
	need := map[string]int{}
	for _, it := range items {
		need[quotaKey(sub.Org, it)]++
	}
	var over []int // items, one per exhausted element
	seen := map[string]bool{}
	for i, it := range items {
		k := quotaKey(sub.Org, it)
		if !seen[k] && q.Remaining(k, now) < need[k] {
			over = append(over, i)
		}
		seen[k] = true
	}
	if len(over) == 0 {
		refused := map[string]bool{}
		for i, it := range items {
			k := quotaKey(sub.Org, it)
			if !q.Allow(k, now) && !refused[k] { // a concurrent claim got there first
				refused[k] = true
				over = append(over, i)
			}
		}
	}
	if len(over) == 0 {
		return nil
	}
	entries := make([]consent.AccessEntry, 0, len(over))
	for _, i := range over {
		it := items[i]
		d := policy.Decision{PolicyDigest: s.Authz.Digest(), Reasons: []string{fmt.Sprintf(
			"claim verification quota exhausted for element %s of record %s: at most %d attempts per %s",
			it.Path, it.RecordID, q.Limit, q.Window)}}
		e := s.entry(sub, policy.ActionVerifyClaim, &Record{ID: it.RecordID, PatientRef: patientRef}, consent.PurposePayment, d)
		e.ClaimItems = []consent.ClaimItemLog{{Path: it.Path}}
		entries = append(entries, e)
	}
	if err := s.logAll(ctx, entries); err != nil {
		return unavailable(err, "access log")
	}
	it := items[over[0]]
	return consent.Errorf(consent.ETOOMANY, "items[%d]: element %s of record %s has been cited too often: at most %d attempts per %s; try again later",
		over[0], it.Path, it.RecordID, q.Limit, q.Window)
}

// positiveOr returns n, or def when n is not positive.
func positiveOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// claimVerifier checks a claim's records one at a time: at most one
// record's plaintext is alive at once, and the claim decrypts at most
// budget bytes in all.
type claimVerifier struct {
	s          *Service
	sub        policy.Subject
	patientRef string
	consents   []consent.Consent
	items      []ClaimItem
	budget     int
	maxRecord  int
}

// verify answers c's items and returns the access entry to log for c (nil
// for a record that is unknown or another patient's). The plaintext is
// cleared before it returns. An error is a failure of the store, the
// ledger or the key ring: the claim is not answered.
func (v *claimVerifier) verify(ctx context.Context, c *citedRecord) (*consent.AccessEntry, error) {
	s := v.s
	r, a, err := s.loadAnchored(ctx, c.id)
	switch {
	case consent.ErrorCode(err) == consent.ENOTFOUND:
		return nil, nil
	case consent.ErrorCode(err) == consent.EINTEGRITY && r != nil:
		return v.integrityFailure(ctx, c, r, err), nil
	case err != nil:
		return nil, err
	case r.PatientRef != v.patientRef:
		return nil, nil
	}
	d := s.decide(ctx, claimInput(v.sub, r, v.consents))
	e := s.entry(v.sub, policy.ActionVerifyClaim, r, consent.PurposePayment, d)
	if !d.Allow {
		e.ClaimItems = claimLog(c, v.items)
		return &e, nil // nothing is decrypted
	}
	size := max(0, len(r.Ciphertext)-sealOverhead)
	skip := ""
	switch {
	case !jsonMediaType(r.ContentType):
		skip = fmt.Sprintf("record content is %s, not JSON: it cannot be cited; not decrypted", r.ContentType)
	case size > v.maxRecord:
		skip = fmt.Sprintf("record is larger than a claim may cite (%d bytes); not decrypted", v.maxRecord)
	case size > v.budget:
		skip = "the claim's decryption budget is spent; not decrypted"
	}
	if skip != "" {
		e.Reasons = append(e.Reasons, skip)
		e.ClaimItems = claimLog(c, v.items)
		return &e, nil
	}
	v.budget -= size
	plain, err := Open(s.Keys, r, a.Hash)
	if consent.ErrorCode(err) == consent.EINTEGRITY {
		return v.integrityFailure(ctx, c, r, err), nil
	}
	if err != nil {
		return nil, err
	}
	doc, err := decodeJSON(plain)
	clear(plain)
	if err != nil {
		e.Reasons = append(e.Reasons, "record content is not valid JSON")
	} else {
		for _, i := range c.items {
			c.ok[i] = answerItem(doc, v.items[i])
		}
		c.anchor = a
	}
	e.ClaimItems = claimLog(c, v.items)
	return &e, nil
}

// integrityFailure logs a record that failed its integrity check (to the
// node's log too) and returns its denied access entry; its items answer
// NotVerified.
func (v *claimVerifier) integrityFailure(ctx context.Context, c *citedRecord, r *Record, cause error) *consent.AccessEntry {
	v.s.logger().ErrorContext(ctx, "record integrity check failed", "record", r.ID, "err", cause)
	d := policy.Decision{Reasons: []string{"record failed its integrity check"}, PolicyDigest: v.s.Authz.Digest()}
	e := v.s.entry(v.sub, policy.ActionVerifyClaim, r, consent.PurposePayment, d)
	e.ClaimItems = claimLog(c, v.items)
	return &e
}

// jsonMediaType reports whether a record's media type is JSON
// (application/json, application/fhir+json or another +json type).
func jsonMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")))
}

// logAll makes every entry durable, logging them concurrently so that a
// group-committing log (the journal, the embedded ledger) can share one
// fsync among them. It returns the first failure.
func (s *Service) logAll(ctx context.Context, entries []consent.AccessEntry) error {
	switch len(entries) {
	case 0:
		return nil
	case 1:
		return s.Access.Log(ctx, entries[0])
	}
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Go(func() { errs[i] = s.Access.Log(ctx, e) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// answerClaim builds the answer and signs the receipt.
func (s *Service) answerClaim(req ClaimRequest, patientRef string, sub policy.Subject, cited []*citedRecord) (*ClaimResult, error) {
	ok := map[int]bool{}
	for _, c := range cited {
		for i, v := range c.ok {
			ok[i] = v
		}
	}
	res := &ClaimResult{ClaimID: req.ClaimID, Verified: true, Items: make([]ItemResult, 0, len(req.Items))}
	for i, it := range req.Items {
		ir := ItemResult{RecordID: it.RecordID, Path: it.Path, ValueHash: ValueHash(it.Value), OK: ok[i], Reason: NotVerified}
		if ir.OK {
			ir.Reason = Verified
		}
		res.Verified = res.Verified && ir.OK
		res.Items = append(res.Items, ir)
	}
	anchors, accessIDs := []AnchorRef{}, []string{}
	for _, c := range cited {
		if c.anchor == nil || !c.anyOK() {
			continue
		}
		a := c.anchor
		anchors = append(anchors, AnchorRef{RecordID: a.RecordID, Version: a.Version, Hash: a.Hash, Tx: a.Tx, Org: a.Org})
		accessIDs = append(accessIDs, c.entry)
	}
	payload, err := json.Marshal(ReceiptPayload{
		Type: "medshare-claim-receipt", ClaimID: req.ClaimID, PatientRef: s.Refs.Pair(patientRef, sub.Org), Insurer: sub.Org,
		Verified: res.Verified, Items: res.Items, Anchors: anchors, AccessIDs: accessIDs,
		PolicyHash: s.Authz.Digest(), Time: s.now().Format("2006-01-02T15:04:05.000Z07:00"),
	})
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "encode receipt")
	}
	if res.Receipt, err = s.Receipts.Sign(payload); err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "sign receipt")
	}
	return res, nil
}

// answerItem answers one item against its decoded record: the element
// must be allowed for the record's type (and category), present, a string,
// number or boolean, and equal to the claimed value.
func answerItem(doc any, it ClaimItem) bool {
	toks, _ := ParsePointer(it.Path) // validated in validateClaim
	if !citableIn(doc, toks) {
		return false
	}
	if got, found := resolve(doc, toks); !found || !scalar(got) {
		return false
	}
	ok, _ := evaluateItem(&claimRecord{doc: doc}, it)
	return ok
}

// claimRecord is a decoded record as evaluateItem sees it; docErr, when
// set, says why there is no document.
type claimRecord struct {
	doc    any
	docErr string
}

// evaluateItem compares an item's value with the value at its path in a
// record's document, exactly (numbers by value), without the allow-list:
// the primitive answerItem builds on. The reason is for tests and the
// node's own diagnostics; an insurer is only ever told NotVerified.
func evaluateItem(cr *claimRecord, it ClaimItem) (bool, string) {
	if cr == nil {
		return false, "record not found for this patient"
	}
	if cr.docErr != "" {
		return false, cr.docErr
	}
	toks, err := ParsePointer(it.Path)
	if err != nil {
		return false, "invalid path"
	}
	got, ok := resolve(cr.doc, toks)
	if !ok {
		return false, "path not found in the record"
	}
	want, err := decodeJSON(it.Value)
	if err != nil || !jsonEqual(got, want) {
		return false, "value does not match the record"
	}
	return true, "value matches the anchored record"
}

// ValueHash is how a receipt binds a claimed value without holding it:
// base64url (no padding) of the SHA-256 of the value as canonical JSON —
// compact, object keys sorted, strings escaped as encoding/json does
// without HTML escaping, numbers as written. "" for a value that is not
// JSON.
func ValueHash(value []byte) string {
	canon, err := CanonicalJSON(value)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(canon)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CanonicalJSON returns value in the canonical form ValueHash hashes.
// EINVALID when value is not one JSON value.
func CanonicalJSON(value []byte) ([]byte, error) {
	v, err := decodeJSON(value)
	if err != nil {
		return nil, consent.Errorf(consent.EINVALID, "not a JSON value")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps encode with sorted keys
		return nil, consent.WrapError(consent.EINVALID, err, "encode JSON")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
