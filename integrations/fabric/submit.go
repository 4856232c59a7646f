package fabric

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	pb "github.com/hyperledger/fabric-protos-go/peer"
	"github.com/hyperledger/fabric-sdk-go/pkg/client/channel"
	"github.com/hyperledger/fabric-sdk-go/pkg/client/channel/invoke"
	"github.com/hyperledger/fabric-sdk-go/pkg/client/ledger"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/providers/fab"
	pkgerrors "github.com/pkg/errors"

	"github.com/medshare/medshare/consent"
)

// Backoff between attempts: doubling from backoffMin up to backoffMax.
const (
	backoffMin = 250 * time.Millisecond
	backoffMax = 2 * time.Second
)

// visibleWait bounds how long Submit waits for the first query peer to
// reach the block of a transaction whose commit another peer reported, so
// that the caller's next Evaluate sees its own write.
const visibleWait = 2 * time.Second

// slowSubmit is the attempt duration above which Submit logs where the
// time went.
const slowSubmit = 2 * time.Second

// lookupTimeout bounds the check of a transaction whose commit status
// never came.
const lookupTimeout = 5 * time.Second

// Submit endorses op(args) on the peers the endorsement policy requires,
// orders it and waits until a peer has committed it, then returns the
// contract's result and where the transaction landed. Read conflicts,
// endorsement mismatches and unreachable peers are retried (Config.Retries,
// with backoff) within Config.Timeout. Errors: the contract's *Error and
// code; EINVALID for a query op; ECONFLICT when read conflicts persist;
// EUNAVAILABLE when the network cannot be reached or a sent transaction's
// outcome cannot be learned; EINTERNAL (code named, SDK text in Err) for
// other invalidated transactions.
func (l *Ledger) Submit(ctx context.Context, op string, args []byte) ([]byte, consent.Receipt, error) {
	if consent.IsQuery(op) {
		return nil, consent.Receipt{}, consent.Errorf(consent.EINVALID, "%s is a query: evaluate it", op)
	}
	if l.closed() {
		return nil, consent.Receipt{}, errClosed()
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	start := time.Now()
	for attempt := 0; ; attempt++ {
		res, f := l.submitOnce(ctx, op, args)
		if f == nil {
			l.receipts.put(res.txID, res.block)
			l.awaitVisible(ctx, res)
			l.log.Debug("fabric submit", "op", op, "tx", res.txID, "block", res.block, "attempts", attempt+1, "took", time.Since(start))
			return res.payload, consent.Receipt{TxID: res.txID, Block: res.block}, nil
		}
		if !f.retry || attempt >= l.cfg.Retries || !sleep(ctx, backoff(attempt)) {
			l.logFailure("fabric submit failed", op, attempt+1, f)
			return nil, consent.Receipt{}, f.err
		}
		l.log.Info("fabric submit retry", "op", op, "attempt", attempt+1, "failure", f.describe())
	}
}

// committed is the outcome of one successful submit attempt.
type committed struct {
	payload []byte
	txID    string
	block   uint64
	source  string // the peer that reported the commit
}

// submitOnce runs one endorse-order-commit round.
func (l *Ledger) submitOnce(ctx context.Context, op string, args []byte) (committed, *failure) {
	start := time.Now()
	h := &commitHandler{poll: l.pollCommit}
	chain := invoke.NewSelectAndEndorseHandler(
		invoke.NewEndorsementValidationHandler(
			invoke.NewSignatureValidationHandler(h)))
	_, err := l.channel.InvokeHandler(chain,
		channel.Request{ChaincodeID: l.cfg.Chaincode, Fcn: op, Args: [][]byte{args}},
		channel.WithTimeout(fab.Execute, remaining(ctx, l.cfg.Timeout)),
		channel.WithParentContext(ctx))
	st := h.snapshot()
	if took := time.Since(start); took > slowSubmit {
		l.log.Info("fabric submit attempt slow", "op", op, "tx", st.txID, "took", took,
			"endorse", since(start, st.endorsed), "order", since(st.endorsed, st.ordered), "commit", since(st.ordered, st.committed))
	}
	if err == nil && st.status != nil {
		return committed{payload: st.payload, txID: st.txID, block: st.status.BlockNumber, source: st.status.SourceURL}, nil
	}
	if err == nil {
		err = errors.New("commit handler finished without a status")
	}
	if st.sent && st.status == nil {
		// The orderer took the transaction but no commit status came: it may
		// have committed. Find out rather than risk applying it twice.
		return l.resolveSent(ctx, st, err)
	}
	f := classify(err)
	return committed{}, &f
}

// resolveSent learns the fate of a transaction sent to the orderer whose
// commit status never arrived.
func (l *Ledger) resolveSent(ctx context.Context, st commitState, cause error) (committed, *failure) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
	defer cancel()
	block, code, _, err := l.lookupTx(lctx, st.txID)
	switch {
	case err == nil && code == pb.TxValidationCode_VALID:
		return committed{payload: st.payload, txID: st.txID, block: block}, nil
	case err == nil:
		f := validationFailure(code, cause)
		return committed{}, &f
	}
	f := failure{consent.WrapError(consent.EUNAVAILABLE, errors.Join(cause, err),
		"fabric network unavailable: outcome of transaction %s unknown", st.txID), false}
	return committed{}, &f
}

// pollCommit asks the peers whether txID has committed, for a commit
// event that is late.
func (l *Ledger) pollCommit(ctx context.Context, txID string) (*fab.TxStatusEvent, bool) {
	ctx, cancel := context.WithTimeout(ctx, pollEvery)
	defer cancel()
	block, code, source, err := l.lookupTx(ctx, txID)
	if err != nil {
		return nil, false
	}
	l.log.Info("fabric commit status found by polling: the event service is late", "tx", txID, "block", block, "peer", source)
	return &fab.TxStatusEvent{TxID: txID, TxValidationCode: code, BlockNumber: block, SourceURL: source}, true
}

// Evaluate runs the query op(args) on one peer, the client's own org's
// first, moving to the next peer when one cannot be reached and retrying
// (Config.Retries, with backoff) when none can, within Config.Timeout.
// Errors: the contract's *Error; EINVALID when op is not a query;
// EUNAVAILABLE when no peer answers.
func (l *Ledger) Evaluate(ctx context.Context, op string, args []byte) ([]byte, error) {
	if !consent.IsQuery(op) {
		return nil, consent.Errorf(consent.EINVALID, "%q is not a query", op)
	}
	if l.closed() {
		return nil, errClosed()
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		out, f := l.evaluateOnce(ctx, op, args)
		if f == nil {
			return out, nil
		}
		if !f.retry || attempt >= l.cfg.Retries || !sleep(ctx, backoff(attempt)) {
			l.logFailure("fabric evaluate failed", op, attempt+1, f)
			return nil, f.err
		}
		l.log.Info("fabric evaluate retry", "op", op, "attempt", attempt+1, "failure", f.describe())
	}
}

// evaluateOnce asks the peers in order until one answers.
func (l *Ledger) evaluateOnce(ctx context.Context, op string, args []byte) ([]byte, *failure) {
	var last failure
	for _, p := range l.peers.ordered() {
		resp, err := l.channel.Query(
			channel.Request{ChaincodeID: l.cfg.Chaincode, Fcn: op, Args: [][]byte{args}},
			channel.WithTargets(p),
			channel.WithTimeout(fab.Execute, remaining(ctx, l.cfg.Timeout)),
			channel.WithParentContext(ctx))
		if err == nil {
			l.peers.answered(p)
			return resp.Payload, nil
		}
		last = classify(err)
		if !last.retry || ctx.Err() != nil {
			break
		}
		l.peers.failed(p)
		l.log.Debug("fabric query peer failed", "peer", p.URL(), "failure", last.describe())
	}
	return nil, &last
}

// TxBlock returns the block holding transaction txID: from memory for
// transactions this Ledger submitted, else from the peers (all are asked
// before the answer is ENOTFOUND, as one may lag). Errors: ENOTFOUND;
// EUNAVAILABLE when no peer answers.
func (l *Ledger) TxBlock(ctx context.Context, txID string) (uint64, error) {
	if b, ok := l.receipts.get(txID); ok {
		return b, nil
	}
	if l.closed() {
		return 0, errClosed()
	}
	if !validTxID(txID) {
		// Fabric tx ids are hex SHA-256 digests; nothing else can be on chain.
		return 0, consent.Errorf(consent.ENOTFOUND, "transaction %q not found", txID)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	block, _, _, err := l.lookupTx(ctx, txID)
	return block, err
}

// errTxNotFound marks a transaction no peer knows.
var errTxNotFound = errors.New("transaction not found")

// lookupTx asks the peers, in order, for the block holding txID and
// returns its number and the transaction's validation code. ENOTFOUND
// when every peer that answered knows nothing of it, EUNAVAILABLE when
// none answered.
func (l *Ledger) lookupTx(ctx context.Context, txID string) (block uint64, code pb.TxValidationCode, peer string, err error) {
	var errs []error
	answered := false
	for _, p := range l.peers.ordered() {
		b, err := l.ledger.QueryBlockByTxID(fab.TransactionID(txID), ledger.WithTargets(p), ledger.WithParentContext(ctx))
		if err == nil {
			l.peers.answered(p)
			code, ok := txValidationCode(b, txID)
			if !ok {
				return 0, 0, "", consent.Errorf(consent.EINTERNAL, "block %d does not hold transaction %s", b.GetHeader().GetNumber(), txID)
			}
			return b.GetHeader().GetNumber(), code, p.URL(), nil
		}
		if isNotFound(err) {
			l.peers.answered(p)
			answered = true
			continue
		}
		l.peers.failed(p)
		errs = append(errs, pkgerrors.WithMessage(err, p.URL()))
		if ctx.Err() != nil {
			break
		}
	}
	if answered {
		return 0, 0, "", consent.WrapError(consent.ENOTFOUND, errTxNotFound, "transaction %q not found", txID)
	}
	return 0, 0, "", consent.WrapError(consent.EUNAVAILABLE, errors.Join(errs...), "fabric network unavailable")
}

// isNotFound reports whether a qscc error says the transaction is unknown.
func isNotFound(err error) bool {
	text := strings.ToLower(err.Error())
	return strings.Contains(text, "not found") || strings.Contains(text, "no such transaction")
}

// validTxID reports whether id looks like a Fabric transaction id.
func validTxID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// awaitVisible waits, briefly, until the first query peer has the block
// of res when another peer reported the commit: Evaluate asks that peer
// first, and a caller expects to read its own write. A peer that does not
// answer ends the wait (Evaluate will move past it anyway).
func (l *Ledger) awaitVisible(ctx context.Context, res committed) {
	first := l.peers.ordered()[0]
	if res.source == "" || sameEndpoint(res.source, first.URL()) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, visibleWait)
	defer cancel()
	for {
		info, err := l.ledger.QueryInfo(ledger.WithTargets(first), ledger.WithParentContext(ctx))
		if err != nil || info.BCI.Height > res.block {
			return
		}
		if !sleep(ctx, 20*time.Millisecond) {
			l.log.Warn("fabric query peer lags", "peer", first.URL(), "block", res.block)
			return
		}
	}
}

// sameEndpoint compares peer addresses with or without a grpc(s):// scheme.
func sameEndpoint(a, b string) bool {
	trim := func(s string) string {
		if i := strings.Index(s, "://"); i >= 0 {
			return s[i+3:]
		}
		return s
	}
	return trim(a) == trim(b)
}

// logFailure logs a final failure: network and internal ones (and
// conflicts that outlasted the retries) at warning level with the SDK's
// text, which callers never see; contract rejections only at debug level.
func (l *Ledger) logFailure(msg, op string, attempts int, f *failure) {
	if f.retry || f.err.Code == consent.EINTERNAL || f.err.Code == consent.EUNAVAILABLE {
		l.log.Warn(msg, "op", op, "attempts", attempts, "code", f.err.Code, "message", f.err.Message, "err", errText(f.err.Err))
		return
	}
	l.log.Debug(msg, "op", op, "code", f.err.Code, "message", f.err.Message)
}

// since is b-a, or 0 when either step did not happen.
func since(a, b time.Time) time.Duration {
	if a.IsZero() || b.IsZero() {
		return 0
	}
	return b.Sub(a)
}

// backoff is the pause before attempt n+1: doubling from backoffMin to
// backoffMax, with ±20 % jitter so concurrent retries spread out.
func backoff(n int) time.Duration {
	d := backoffMin << min(n, 8)
	d = min(d, backoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// sleep waits d or until ctx ends, reporting whether it waited in full.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// remaining is the time left before ctx's deadline, or def without one.
func remaining(ctx context.Context, def time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return def
}

// errText is err's text for logs. slog prints error values with %+v, which
// for the SDK's pkg/errors values appends a stack trace to every line.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
