package consent

import (
	"fmt"
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

// validateEntry checks an access entry's fields.
func validateEntry(e *AccessEntry) error {
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
	if e.Reasons == nil {
		e.Reasons = []string{}
	}
	return nil
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
// its cost depends on the page size, not on the size of the log.
func listAccess(st State, f AccessFilter) (*AccessPage, error) {
	prefix := accessByTime
	if f.PatientRef != "" {
		if err := checkRef("patientRef", f.PatientRef); err != nil {
			return nil, err
		}
		prefix = accessPatient + f.PatientRef + "/"
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLim
	}
	if limit > maxListLimit {
		return nil, errf(EINVALID, "limit must be at most %d", maxListLimit)
	}
	start := prefix
	if f.After != "" {
		if len(f.After) > 256 || strings.ContainsAny(f.After, "\x00\x7f") {
			return nil, errf(EINVALID, "invalid cursor")
		}
		start = prefix + f.After + "\x00"
	}
	page := &AccessPage{Entries: []AccessEntry{}}
	err := st.Range(start, prefixEnd(prefix), func(k string, v []byte) error {
		if len(page.Entries) == limit {
			page.Next = page.Entries[limit-1].cursor
			return ErrStopRange
		}
		e, err := getAccess(st, IDArgs{ID: string(v)})
		if err != nil {
			return err
		}
		e.cursor = k[len(prefix):]
		page.Entries = append(page.Entries, *e)
		return nil
	})
	return page, err
}

// ValidateAccessEntry checks e as LogAccess would, so an entry the ledger
// would reject is refused before it is queued anywhere (an outbox holding
// one would block every later batch).
func ValidateAccessEntry(e *AccessEntry) error { return validateEntry(e) }
