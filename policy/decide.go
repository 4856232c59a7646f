package policy

import (
	"context"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/medshare/medshare/consent"
)

// Decide evaluates the policy for in. It fails closed: an evaluation error,
// an undefined decision or one of the wrong shape is an EINTERNAL error, and
// the caller must deny; so is an Engine not made by New. EINVALID when in
// has no time.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	if e == nil || e.keys == nil {
		return Decision{}, consent.Errorf(consent.EINTERNAL, "policy: engine not created with New")
	}
	if in.Time.IsZero() {
		return Decision{}, consent.Errorf(consent.EINVALID, "policy: decision input has no time")
	}
	if e.decisions == nil {
		return e.evaluate(ctx, &in)
	}
	key, now, ok := decisionKey(&in)
	if !ok {
		return e.evaluate(ctx, &in)
	}
	if d, hit := e.decisions.get(key, now); hit {
		return d, nil
	}
	d, err := e.evaluate(ctx, &in)
	if err == nil {
		e.decisions.put(key, &in, now, d)
	}
	return d, err
}

// evaluate runs the policy on in.
func (e *Engine) evaluate(ctx context.Context, in *Input) (Decision, error) {
	// The evaluation is set up here rather than by a rego.PreparedEvalQuery,
	// whose per-evaluation set-up (an evaluation context, its options, a
	// result set) costs a decision more than some of its rules. OPA would
	// otherwise also make, per evaluation: a goroutine watching ctx (here
	// context.AfterFunc, and nothing at all for a context that is never
	// done), a metrics registry (three maps; none is read), a store
	// transaction (the engine's store is read-only), a base-document cache
	// (the engine's data is converted once, in New) and its own
	// virtual-document cache (see ruleCache).
	cancel := topdown.NewCancel()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, cancel.Cancel)
		defer stop()
	}
	q := topdown.NewQuery(e.query).
		WithQueryCompiler(e.queryCompiler).
		WithCompiler(e.compiler).
		WithStore(e.store).
		WithTransaction(e.txn).
		WithInput(ast.NewTerm(e.keys.input(in, e.cache))).
		WithMetrics(metrics.NoOp()).
		WithCancel(cancel).
		WithBaseCache(e.base).
		WithVirtualCache(&ruleCache{})
	var t *ast.Term
	n := 0
	err := q.Iter(ctx, func(qr topdown.QueryResult) error {
		n++
		t = qr[resultVar]
		return nil
	})
	if err != nil {
		return Decision{}, consent.WrapError(consent.EINTERNAL, err, "policy: evaluate %s", decisionRef)
	}
	if n != 1 || t == nil {
		return Decision{}, consent.Errorf(consent.EINTERNAL, "policy: %s is undefined", decisionRef)
	}
	d, err := e.keys.decision.decode(t.Value)
	if err != nil {
		return Decision{}, err
	}
	d.PolicyDigest = e.digest
	return d, nil
}

// decisionKeys holds the object keys of a decision as terms, built once per
// Engine.
type decisionKeys struct {
	allow, reasons, obligations, consent, id, version *ast.Term
}

func newDecisionKeys() decisionKeys {
	t := ast.StringTerm
	return decisionKeys{
		allow: t("allow"), reasons: t("reasons"), obligations: t("obligations"),
		consent: t("consent"), id: t("id"), version: t("version"),
	}
}

// decode checks the decision's shape and converts it. Any deviation is
// EINTERNAL: a malformed decision must never read as an allow.
func (k *decisionKeys) decode(v ast.Value) (Decision, error) {
	bad := func(what string) (Decision, error) {
		return Decision{}, consent.Errorf(consent.EINTERNAL, "policy: malformed decision: %s", what)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return bad("not an object")
	}
	allow, ok := field(obj, k.allow).(ast.Boolean)
	if !ok {
		return bad("allow is not a boolean")
	}
	reasons, ok := stringList(field(obj, k.reasons))
	if !ok || len(reasons) == 0 {
		return bad("reasons is not a non-empty list of non-empty strings")
	}
	obligations, ok := stringList(field(obj, k.obligations))
	if !ok {
		return bad("obligations is not a list of non-empty strings")
	}
	d := Decision{Allow: bool(allow), Reasons: reasons, Obligations: obligations}
	if c := field(obj, k.consent); c != nil {
		co, ok := c.(ast.Object)
		if !ok {
			return bad("consent is not an object")
		}
		id, ok := field(co, k.id).(ast.String)
		if !ok || id == "" {
			return bad("consent.id is not a non-empty string")
		}
		n, ok := field(co, k.version).(ast.Number)
		ver, isInt := n.Int()
		if !ok || !isInt || ver < 1 {
			return bad("consent.version is not a positive integer")
		}
		d.ConsentID, d.ConsentVersion = string(id), ver
	}
	return d, nil
}

// field returns obj[k], or nil when absent.
func field(obj ast.Object, k *ast.Term) ast.Value {
	t := obj.Get(k)
	if t == nil {
		return nil
	}
	return t.Value
}

// stringList converts an array or set of non-empty strings, clipping each to
// MaxReasonLen bytes.
func stringList(v ast.Value) ([]string, bool) {
	var terms []*ast.Term
	switch c := v.(type) {
	case *ast.Array:
		out := make([]string, c.Len())
		for i := range out {
			s, ok := reasonText(c.Elem(i))
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	case ast.Set:
		terms = c.Slice()
	default:
		return nil, false
	}
	out := make([]string, len(terms))
	for i, t := range terms {
		s, ok := reasonText(t)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

// reasonText returns the text of t, a non-empty string, clipped to
// MaxReasonLen bytes.
func reasonText(t *ast.Term) (string, bool) {
	s, ok := t.Value.(ast.String)
	if !ok || s == "" {
		return "", false
	}
	return clip(string(s), MaxReasonLen), true
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
