package policy

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/medshare/medshare/consent"
)

// embedded holds the built-in policies. The _test.rego files ride along but
// are never loaded into an engine.
//
//go:embed rego/*.rego
var embedded embed.FS

// decisionRef is the rule every policy set must define.
const decisionRef = "data.medshare.authz.decision"

// resultVar is the variable the decision query binds to decisionRef.
const resultVar = "result"

// Options configures New.
type Options struct {
	// Dir, when set, replaces the embedded policies with the .rego files of
	// that directory (not its subdirectories; _test.rego files excluded).
	Dir string
	// Restricted is the set of restricted categories; nil means
	// DefaultRestricted, an empty non-nil slice means none.
	Restricted []string
	// NoDecisionCache makes every Decide evaluate the policy. Without it,
	// an engine on the embedded policies answers a repeated input from its
	// decision cache (see decisionCache); one on Dir's never does.
	NoDecisionCache bool
}

// Engine evaluates the authorization policy. It is safe for concurrent use:
// nothing in it changes after New but termCache, which locks.
type Engine struct {
	compiler      *ast.Compiler
	query         ast.Body // resultVar = decisionRef, compiled
	queryCompiler ast.QueryCompiler
	store         storage.Store       // holds the data; never written
	txn           storage.Transaction // a read transaction all evaluations share
	base          dataCache
	keys          *inputKeys
	cache         *termCache
	decisions     *decisionCache // nil: every decision is evaluated
	digest        string
	restricted    []string
}

// source is one policy file.
type source struct {
	name string
	text string
}

// New loads, compiles and prepares the policies, and the query Decide
// evaluates with OPA's topdown evaluator. It returns EINVALID when
// the restricted set is malformed, Dir cannot be read, holds no policies, or
// its policies do not compile or define data.medshare.authz.decision, and
// EINTERNAL for anything else.
func New(ctx context.Context, o Options) (*Engine, error) {
	restricted, err := normalizeRestricted(o.Restricted)
	if err != nil {
		return nil, err
	}
	srcs, err := loadSources(o.Dir)
	if err != nil {
		return nil, err
	}
	compiler, err := compile(srcs)
	if err != nil {
		return nil, err
	}
	data := map[string]any{
		"medshare": map[string]any{"config": map[string]any{"restricted": toAny(restricted)}},
	}
	base, err := newDataCache(data)
	if err != nil {
		return nil, err
	}
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	query, err := ast.ParseBodyWithOpts(resultVar+" = "+decisionRef, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "policy: parse decision query")
	}
	qc := compiler.QueryCompiler()
	if query, err = qc.Compile(query); err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "policy: compile decision query")
	}
	// Nothing writes to the store after this, and a read transaction of the
	// in-memory store holds no state of its own, so every evaluation shares
	// one instead of opening (and closing) its own.
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "policy: open store transaction")
	}
	e := &Engine{
		compiler: compiler, query: query, queryCompiler: qc, store: store, txn: txn,
		keys: newInputKeys(restricted), cache: newTermCache(), base: base,
		digest: digest(srcs, restricted), restricted: restricted,
	}
	if o.Dir == "" && !o.NoDecisionCache {
		e.decisions = newDecisionCache()
	}
	return e, nil
}

// Digest is the hex SHA-256 of the loaded policy sources (in file-name order,
// names included) and the restricted set: any change to either changes it.
func (e *Engine) Digest() string { return e.digest }

// Restricted returns the restricted categories, sorted.
func (e *Engine) Restricted() []string { return slices.Clone(e.restricted) }

// normalizeRestricted validates, sorts and de-duplicates the restricted set.
func normalizeRestricted(in []string) ([]string, error) {
	if in == nil {
		in = DefaultRestricted()
	}
	out := make([]string, 0, len(in))
	for _, c := range in {
		if !validCategory(c) {
			return nil, consent.Errorf(consent.EINVALID, "policy: restricted category %q is invalid: use a lowercase token", c)
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// validCategory accepts lowercase tokens such as mental-health; the wildcard
// "*" cannot be restricted.
func validCategory(c string) bool {
	if c == "" || len(c) > 64 {
		return false
	}
	for _, r := range c {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' && r != '.' {
			return false
		}
	}
	return true
}

// loadSources reads the policy files of dir, or the embedded ones when dir
// is empty, sorted by name.
func loadSources(dir string) ([]source, error) {
	fsys, where := fs.FS(nil), dir
	if dir == "" {
		sub, err := fs.Sub(embedded, "rego")
		if err != nil {
			return nil, consent.WrapError(consent.EINTERNAL, err, "policy: open embedded policies")
		}
		fsys, where = sub, "embedded policies"
	} else {
		if fi, err := os.Stat(dir); err != nil {
			return nil, consent.WrapError(consent.EINVALID, err, "policy: open policy directory %s", dir)
		} else if !fi.IsDir() {
			return nil, consent.Errorf(consent.EINVALID, "policy: %s is not a directory", dir)
		}
		fsys = os.DirFS(dir)
	}
	names, err := fs.Glob(fsys, "*.rego")
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "policy: list %s", where)
	}
	var srcs []source
	for _, name := range names { // fs.Glob returns names sorted
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, consent.WrapError(consent.EINVALID, err, "policy: read %s in %s", name, where)
		}
		srcs = append(srcs, source{name: name, text: string(b)})
	}
	if len(srcs) == 0 {
		return nil, consent.Errorf(consent.EINVALID, "policy: no .rego policies in %s", where)
	}
	return srcs, nil
}

// compile parses and compiles srcs as Rego v1 and checks that they define
// the decision rule.
func compile(srcs []source) (*ast.Compiler, error) {
	mods := make(map[string]*ast.Module, len(srcs))
	for _, s := range srcs {
		m, err := ast.ParseModuleWithOpts(s.name, s.text, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, consent.WrapError(consent.EINVALID, err, "policy: parse %s", s.name)
		}
		mods[s.name] = m
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(mods); c.Failed() {
		return nil, consent.WrapError(consent.EINVALID, c.Errors, "policy: compile")
	}
	if len(c.GetRules(ast.MustParseRef(decisionRef))) == 0 {
		return nil, consent.Errorf(consent.EINVALID, "policy: the policies define no %s", decisionRef)
	}
	return c, nil
}

// digest hashes srcs and the restricted set with length prefixes, so no two
// different inputs hash alike.
func digest(srcs []source, restricted []string) string {
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	for _, s := range srcs {
		field("file")
		field(s.name)
		field(s.text)
	}
	field("restricted")
	for _, c := range restricted {
		field(c)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
