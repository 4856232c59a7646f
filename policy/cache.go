package policy

import (
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/medshare/medshare/consent"
)

// Bounds of a termCache. When a map is full it is emptied and refilled: the
// terms of the subjects and consents in use come back at once.
const (
	maxCachedSubjects = 1024
	maxCachedConsents = 4096
)

// termCache keeps the input terms of the subjects and consents Decide saw
// last, keyed by what the policy reads of them: the same subject asks again
// and again, and a patient's consents recur in every read of their records,
// so most inputs reuse these terms instead of building them. Terms are
// immutable and evaluations share them. A termCache is safe for concurrent
// use.
type termCache struct {
	mu       sync.RWMutex
	subjects map[Subject]*ast.Term
	consents map[string]cachedConsent // by consent id
}

// cachedConsent is a consent's term and a copy of the fields it was built
// from.
type cachedConsent struct {
	c    consent.Consent
	term *ast.Term
}

func newTermCache() *termCache {
	return &termCache{
		subjects: make(map[Subject]*ast.Term),
		consents: make(map[string]cachedConsent),
	}
}

// terms returns the terms of in.Subject and, in consents, of each of
// in.Consents, building and keeping those it does not have.
func (tc *termCache) terms(k *inputKeys, in *Input, consents []*ast.Term) (subject *ast.Term) {
	tc.mu.RLock()
	subject = tc.subjects[in.Subject]
	complete := subject != nil
	for i := range in.Consents {
		c := &in.Consents[i]
		if e, ok := tc.consents[c.ID]; ok && sameConsent(&e.c, c) {
			consents[i] = e.term
		} else {
			complete = false
		}
	}
	tc.mu.RUnlock()
	if complete {
		return subject
	}

	newSubject := subject == nil
	if newSubject {
		b := termBuilder{k: k}
		subject = k.subjectTerm(&b, &in.Subject)
	}
	var built []cachedConsent
	for i := range in.Consents {
		if consents[i] != nil {
			continue
		}
		c := &in.Consents[i]
		b := termBuilder{k: k}
		consents[i] = b.term(k.consent(&b, c))
		built = append(built, cachedConsent{c: copyConsent(c), term: consents[i]})
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if newSubject {
		if len(tc.subjects) >= maxCachedSubjects {
			clear(tc.subjects)
		}
		tc.subjects[in.Subject] = subject
	}
	for _, e := range built {
		if len(tc.consents) >= maxCachedConsents {
			clear(tc.consents)
		}
		tc.consents[e.c.ID] = e
	}
	return subject
}

// copyConsent copies c deep enough that changes to c do not reach it.
func copyConsent(c *consent.Consent) consent.Consent {
	cpy := *c
	cpy.Categories = slices.Clone(c.Categories)
	cpy.Records = slices.Clone(c.Records)
	cpy.Purposes = slices.Clone(c.Purposes)
	if c.ValidUntil != nil {
		until := *c.ValidUntil
		cpy.ValidUntil = &until
	}
	return cpy
}

// sameConsent reports whether a and b agree on every field the policy
// reads, so that they convert to equal terms.
func sameConsent(a, b *consent.Consent) bool {
	return a.ID == b.ID && a.PatientRef == b.PatientRef && a.Grantee == b.Grantee &&
		a.Status == b.Status && a.Version == b.Version &&
		slices.Equal(a.Categories, b.Categories) && slices.Equal(a.Records, b.Records) &&
		slices.Equal(a.Purposes, b.Purposes) && a.ValidFrom.Equal(b.ValidFrom) &&
		(a.ValidUntil == nil) == (b.ValidUntil == nil) &&
		(a.ValidUntil == nil || a.ValidUntil.Equal(*b.ValidUntil))
}

// dataCache answers the evaluator's reads of base documents from the
// engine's data, converted to AST once in New, instead of the store: a
// read of data.medshare.config.restricted otherwise costs every decision a
// store read and a fresh per-evaluation cache. The data never changes after
// New, so the cache ignores Put and is safe for concurrent evaluations.
type dataCache struct {
	doc ast.Object
}

func newDataCache(data map[string]any) (dataCache, error) {
	v, err := ast.InterfaceToValue(data)
	if err != nil {
		return dataCache{}, consent.WrapError(consent.EINTERNAL, err, "policy: convert policy data")
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return dataCache{}, consent.Errorf(consent.EINTERNAL, "policy: policy data is not an object")
	}
	return dataCache{doc: obj}, nil
}

// Get returns the document at ref, a reference rooted at data, or nil when
// there is none, which sends the evaluator to the store.
func (c dataCache) Get(ref ast.Ref) ast.Value {
	if len(ref) == 0 || !ref[0].Equal(ast.DefaultRootDocument) {
		return nil
	}
	v, err := c.doc.Find(ref[1:])
	if err != nil {
		return nil
	}
	return v
}

// Put does nothing: the data is fixed, and what the evaluator reads from
// the store it may read again.
func (dataCache) Put(ast.Ref, ast.Value) {}

// ruleCache is the evaluator's cache of rule values for one decision
// (topdown.VirtualCache). OPA's own keeps a map per element of every cached
// reference, function calls included, and that bookkeeping costs a decision
// more than the few rules it evaluates twice. ruleCache keeps a short list
// of the values of rules (references rooted at data), searched from the
// newest; function results and anything beyond maxRuleCacheEntries per
// frame are not cached, so they are evaluated again when asked again, which
// gives the same value: the policy is a pure function of input and data.
type ruleCache struct {
	entries []ruleCacheEntry
	frames  []int // where each pushed frame starts in entries
}

type ruleCacheEntry struct {
	ref   ast.Ref
	value *ast.Term // nil: the rule is undefined
}

const maxRuleCacheEntries = 32

// top returns where the active frame starts.
func (c *ruleCache) top() int {
	if len(c.frames) == 0 {
		return 0
	}
	return c.frames[len(c.frames)-1]
}

// Push starts a new, empty frame.
func (c *ruleCache) Push() { c.frames = append(c.frames, len(c.entries)) }

// Pop drops the active frame and its entries.
func (c *ruleCache) Pop() {
	if len(c.frames) == 0 {
		return
	}
	n := c.top()
	c.frames = c.frames[:len(c.frames)-1]
	clear(c.entries[n:])
	c.entries = c.entries[:n]
}

// Get returns the cached value of ref in the active frame; see
// topdown.VirtualCache.
func (c *ruleCache) Get(ref ast.Ref) (*ast.Term, bool) {
	if !isDataRef(ref) {
		return nil, false
	}
	for i := len(c.entries) - 1; i >= c.top(); i-- {
		if e := &c.entries[i]; e.ref.Equal(ref) {
			return e.value, e.value == nil
		}
	}
	return nil, false
}

// Put caches the value of ref, nil meaning undefined, in the active frame.
func (c *ruleCache) Put(ref ast.Ref, value *ast.Term) {
	if !isDataRef(ref) || len(c.entries)-c.top() >= maxRuleCacheEntries {
		return
	}
	// The evaluator reuses the slice it passes: keep a copy. Terms are
	// immutable.
	c.entries = append(c.entries, ruleCacheEntry{ref: slices.Clone(ref), value: value})
}

// Keys returns the references with a value in the active frame.
func (c *ruleCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.entries[c.top():] {
		if e.value != nil {
			keys = append(keys, e.ref)
		}
	}
	return keys
}

// isDataRef reports whether ref names a document under data: a rule, not a
// function call (whose key starts with the function's reference).
func isDataRef(ref ast.Ref) bool {
	return len(ref) > 0 && ref[0].Equal(ast.DefaultRootDocument)
}
