package policy

import (
	"context"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"

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
	// No metrics are read, so none are collected: OPA would otherwise make
	// a fresh metrics registry (three maps) for every evaluation.
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(e.keys.input(&in)), rego.EvalMetrics(metrics.NoOp()))
	if err != nil {
		return Decision{}, consent.WrapError(consent.EINTERNAL, err, "policy: evaluate %s", decisionRef)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{}, consent.Errorf(consent.EINTERNAL, "policy: %s is undefined", decisionRef)
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return Decision{}, consent.Errorf(consent.EINTERNAL, "policy: %s has an unexpected result type", decisionRef)
	}
	d, err := decodeDecision(t.Value)
	if err != nil {
		return Decision{}, err
	}
	d.PolicyDigest = e.digest
	return d, nil
}

// decodeDecision checks the decision's shape and converts it. Any deviation
// is EINTERNAL: a malformed decision must never read as an allow.
func decodeDecision(v ast.Value) (Decision, error) {
	bad := func(what string) (Decision, error) {
		return Decision{}, consent.Errorf(consent.EINTERNAL, "policy: malformed decision: %s", what)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return bad("not an object")
	}
	allow, ok := field(obj, "allow").(ast.Boolean)
	if !ok {
		return bad("allow is not a boolean")
	}
	reasons, ok := stringList(field(obj, "reasons"))
	if !ok || len(reasons) == 0 {
		return bad("reasons is not a non-empty list of non-empty strings")
	}
	obligations, ok := stringList(field(obj, "obligations"))
	if !ok {
		return bad("obligations is not a list of non-empty strings")
	}
	d := Decision{Allow: bool(allow), Reasons: reasons, Obligations: obligations}
	if c := field(obj, "consent"); c != nil {
		co, ok := c.(ast.Object)
		if !ok {
			return bad("consent is not an object")
		}
		id, ok := field(co, "id").(ast.String)
		if !ok || id == "" {
			return bad("consent.id is not a non-empty string")
		}
		n, ok := field(co, "version").(ast.Number)
		ver, isInt := n.Int()
		if !ok || !isInt || ver < 1 {
			return bad("consent.version is not a positive integer")
		}
		d.ConsentID, d.ConsentVersion = string(id), ver
	}
	return d, nil
}

// field returns obj[k], or nil when absent.
func field(obj ast.Object, k string) ast.Value {
	t := obj.Get(ast.InternedTerm(k))
	if t == nil {
		return nil
	}
	return t.Value
}

// stringList converts an array or set of non-empty strings, clipping each to
// MaxReasonLen bytes.
func stringList(v ast.Value) ([]string, bool) {
	out := []string{}
	ok := true
	add := func(t *ast.Term) {
		s, isStr := t.Value.(ast.String)
		if !isStr || s == "" {
			ok = false
			return
		}
		out = append(out, clip(string(s), MaxReasonLen))
	}
	switch c := v.(type) {
	case *ast.Array:
		c.Foreach(add)
	case ast.Set:
		c.Foreach(add)
	default:
		return nil, false
	}
	return out, ok
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
