package consent

import (
	"fmt"
	"slices"
	"strings"
)

const (
	anchorPrefix   = "anchor/"
	accessPrefix   = "access/"
	accessByTime   = "aidx/t/"
	accessPatient  = "aidx/p/"
	defaultListLim = 100
)

func anchorKey(recordID string, version int) string {
	return fmt.Sprintf("%s%s/%010d", anchorPrefix, recordID, version)
}

func anchorRecord(st State, a Anchor) (*Anchor, error) {
	if !validID(a.RecordID) {
		return nil, errf(EINVALID, "record id %q is invalid", a.RecordID)
	}
	if a.Version < 1 {
		return nil, errf(EINVALID, "record version must be at least 1")
	}
	if err := checkRef("patientRef", a.PatientRef); err != nil {
		return nil, err
	}
	if !validCategory(a.Category) {
		return nil, errf(EINVALID, "category %q is invalid", a.Category)
	}
	if err := checkRef("hash", a.Hash); err != nil {
		return nil, err
	}
	org, err := getOrg(st, a.Org)
	if err != nil {
		return nil, err
	}
	if org.Status != StatusActive {
		return nil, errf(EFORBIDDEN, "organization %q is not active", a.Org)
	}
	var existing Anchor
	if ok, err := getJSON(st, anchorKey(a.RecordID, a.Version), &existing); err != nil {
		return nil, err
	} else if ok {
		return nil, errf(ECONFLICT, "record %q version %d is already anchored", a.RecordID, a.Version)
	}
	a.AnchoredAt, a.Tx = st.TxTime().UTC(), st.TxID()
	return &a, putJSON(st, anchorKey(a.RecordID, a.Version), &a)
}

func getAnchor(st State, a AnchorArgs) (*Anchor, error) {
	if !validID(a.RecordID) || a.Version < 1 {
		return nil, errf(EINVALID, "record id or version is invalid")
	}
	var out Anchor
	ok, err := getJSON(st, anchorKey(a.RecordID, a.Version), &out)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errf(ENOTFOUND, "record %q version %d has no anchor", a.RecordID, a.Version)
	}
	return &out, nil
}

// validateEntry checks an access entry's fields: either the sealed form
// the nodes write (ID, Time, a pairwise PatientRef and Sealed, nothing
// else), or the full form entries had before sealing existed, which is
// still accepted so that older ledgers replay.
func validateEntry(e *AccessEntry) error {
	if e.Sealed != "" {
		return validateSealed(e)
	}
	if !validID(e.ID) {
		return errf(EINVALID, "access entry id %q is invalid", e.ID)
	}
	if e.Time.IsZero() {
		return errf(EINVALID, "access entry %q has no time", e.ID)
	}
	if !validTime(e.Time) {
		return errf(EINVALID, "access entry %q has a time out of range", e.ID)
	}
	if e.RecordID != "" && !validID(e.RecordID) {
		return errf(EINVALID, "record id %q is invalid", e.RecordID)
	}
	if err := checkRef("patientRef", e.PatientRef); err != nil {
		return err
	}
	if err := checkRef("actorRef", e.ActorRef); err != nil {
		return err
	}
	if e.Decision != DecisionAllow && e.Decision != DecisionDeny {
		return errf(EINVALID, "decision must be allow or deny")
	}
	if e.Purpose != "" && !ValidPurpose(e.Purpose) {
		return errf(EINVALID, "unknown purpose of use %q", e.Purpose)
	}
	if e.Action == "" || len(e.Action) > 32 || e.Role == "" || len(e.Role) > 32 {
		return errf(EINVALID, "access entry needs an action and a role")
	}
	if e.Org != "" && !validID(e.Org) {
		return errf(EINVALID, "organization id %q is invalid", e.Org)
	}
	if e.ConsentID != "" && !validID(e.ConsentID) {
		return errf(EINVALID, "consent id %q is invalid", e.ConsentID)
	}
	if len(e.Reasons) > maxReasons || len(e.PolicyDigest) > 128 {
		return errf(EINVALID, "access entry %q is too large", e.ID)
	}
	for _, r := range e.Reasons {
		if len(r) > 512 || strings.ContainsAny(r, "\x00") {
			return errf(EINVALID, "access entry %q has an invalid reason", e.ID)
		}
	}
	if len(e.BreakGlassCode) > 32 || len(e.NoteCommit) > 64 || len(e.ClaimItems) > 100 {
		return errf(EINVALID, "access entry %q is too large", e.ID)
	}
	for _, it := range e.ClaimItems {
		if len(it.Path) > 512 {
			return errf(EINVALID, "access entry %q has an invalid claim item", e.ID)
		}
	}
	if e.Reasons == nil {
		e.Reasons = []string{}
	}
	return nil
}

// validateSealed checks an entry in its ledger form: nothing but ID, Time,
// PatientRef and Sealed may be set, so no field can leak in clear beside
// the seal.
func validateSealed(e *AccessEntry) error {
	if !validID(e.ID) {
		return errf(EINVALID, "access entry id %q is invalid", e.ID)
	}
	if e.Time.IsZero() || !validTime(e.Time) {
		return errf(EINVALID, "access entry %q has no valid time", e.ID)
	}
	if err := checkRef("patientRef", e.PatientRef); err != nil {
		return err
	}
	if len(e.Sealed) > maxSealed || !base64URL(e.Sealed) {
		return errf(EINVALID, "access entry %q: sealed must be base64url of at most %d characters", e.ID, maxSealed)
	}
	if e.Action != "" || e.RecordID != "" || e.ActorRef != "" || e.Role != "" || e.Org != "" || e.Purpose != "" ||
		e.Decision != "" || len(e.Reasons) > 0 || e.BreakGlass || e.ConsentID != "" || e.ConsentVersion != 0 ||
		e.PolicyDigest != "" || e.BreakGlassCode != "" || e.NoteCommit != "" || len(e.ClaimItems) > 0 {
		return errf(EINVALID, "access entry %q is sealed but carries fields in clear", e.ID)
	}
	if e.Reasons == nil {
		e.Reasons = []string{}
	}
	return nil
}

// base64URL reports whether s holds only base64url characters.
func base64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// putEntry writes a validated entry and its indexes.
func putEntry(st State, e *AccessEntry) error {
	e.AnchoredAt, e.Tx = st.TxTime().UTC(), st.TxID()
	e.Time = e.Time.UTC()
	if err := putJSON(st, accessPrefix+e.ID, e); err != nil {
		return err
	}
	tk := timeKey(e.Time) + "/" + e.ID
	if err := st.Put(accessByTime+tk, []byte(e.ID)); err != nil {
		return WrapError(EINTERNAL, err, "write state")
	}
	if err := st.Put(accessPatient+e.PatientRef+"/"+tk, []byte(e.ID)); err != nil {
		return WrapError(EINTERNAL, err, "write state")
	}
	return nil
}

func entryExists(st State, id string) (bool, error) {
	b, err := st.Get(accessPrefix + id)
	if err != nil {
		return false, WrapError(EINTERNAL, err, "read state")
	}
	return b != nil, nil
}

func logAccess(st State, e AccessEntry) (*AccessEntry, error) {
	if err := validateEntry(&e); err != nil {
		return nil, err
	}
	if ok, err := entryExists(st, e.ID); err != nil {
		return nil, err
	} else if ok {
		return nil, errf(ECONFLICT, "access entry %q already exists", e.ID)
	}
	return &e, putEntry(st, &e)
}

// logAccessBatch logs every new entry and skips ids already present, so a
// retried batch anchors nothing twice. One invalid entry fails the batch.
func logAccessBatch(st State, a LogAccessBatchArgs) (*BatchResult, error) {
	if len(a.Entries) == 0 || len(a.Entries) > maxBatch {
		return nil, errf(EINVALID, "a batch holds 1 to %d entries", maxBatch)
	}
	res := &BatchResult{Logged: []string{}, Skipped: []string{}}
	seen := make(map[string]bool, len(a.Entries))
	for i := range a.Entries {
		e := &a.Entries[i]
		if err := validateEntry(e); err != nil {
			return nil, err
		}
		ok, err := entryExists(st, e.ID)
		if err != nil {
			return nil, err
		}
		if ok || seen[e.ID] {
			res.Skipped = append(res.Skipped, e.ID)
			continue
		}
		seen[e.ID] = true
		if err := putEntry(st, e); err != nil {
			return nil, err
		}
		res.Logged = append(res.Logged, e.ID)
	}
	return res, nil
}

func getAccess(st State, a IDArgs) (*AccessEntry, error) {
	if !validID(a.ID) {
		return nil, errf(EINVALID, "access entry id %q is invalid", a.ID)
	}
	var e AccessEntry
	ok, err := getJSON(st, accessPrefix+a.ID, &e)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound("access entry", a.ID)
	}
	return &e, nil
}

// listAccess pages through entries oldest first using the time indexes, so
// its cost depends on the page size (times the number of references asked
// for), not on the size of the log. With PatientRefs it merges several
// references' indexes in time order: a patient's entries are indexed under
// one pairwise reference per organization, and their log is the merge.
func listAccess(st State, f AccessFilter) (*AccessPage, error) {
	prefixes, err := accessPrefixes(f)
	if err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLim
	}
	if limit > maxListLimit {
		return nil, errf(EINVALID, "limit must be at most %d", maxListLimit)
	}
	if f.After != "" && (len(f.After) > 256 || strings.ContainsAny(f.After, "\x00\x7f")) {
		return nil, errf(EINVALID, "invalid cursor")
	}
	type hit struct{ pos, id string }
	var hits []hit
	for _, prefix := range prefixes {
		start, n := prefix, 0
		if f.After != "" {
			start = prefix + f.After + "\x00"
		}
		err := st.Range(start, prefixEnd(prefix), func(k string, v []byte) error {
			if n == limit+1 {
				return ErrStopRange
			}
			hits = append(hits, hit{pos: k[len(prefix):], id: string(v)})
			n++
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(prefixes) > 1 {
		slices.SortFunc(hits, func(a, b hit) int { return strings.Compare(a.pos, b.pos) })
	}
	page := &AccessPage{Entries: []AccessEntry{}}
	if len(hits) > limit {
		hits = hits[:limit]
		page.Next = hits[limit-1].pos
	}
	for _, h := range hits {
		e, err := getAccess(st, IDArgs{ID: h.id})
		if err != nil {
			return nil, err
		}
		e.cursor = h.pos
		page.Entries = append(page.Entries, *e)
	}
	return page, nil
}

// accessPrefixes returns the index prefixes a filter reads: the time index
// for all entries, or one per patient reference.
func accessPrefixes(f AccessFilter) ([]string, error) {
	switch {
	case f.PatientRef != "" && len(f.PatientRefs) > 0:
		return nil, errf(EINVALID, "set patientRef or patientRefs, not both")
	case f.PatientRef != "":
		if err := checkRef("patientRef", f.PatientRef); err != nil {
			return nil, err
		}
		return []string{accessPatient + f.PatientRef + "/"}, nil
	case len(f.PatientRefs) > 0:
		if len(f.PatientRefs) > maxListLimit {
			return nil, errf(EINVALID, "at most %d patient references", maxListLimit)
		}
		refs := normalizeSet(f.PatientRefs)
		out := make([]string, 0, len(refs))
		for _, r := range refs {
			if err := checkRef("patientRefs", r); err != nil {
				return nil, err
			}
			out = append(out, accessPatient+r+"/")
		}
		return out, nil
	}
	return []string{accessByTime}, nil
}

// ValidateAccessEntry checks e as LogAccess would, so an entry the ledger
// would reject is refused before it is queued anywhere (an outbox holding
// one would block every later batch).
func ValidateAccessEntry(e *AccessEntry) error { return validateEntry(e) }
