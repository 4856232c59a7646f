package fabric

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	pb "github.com/hyperledger/fabric-protos-go/peer"
	"github.com/hyperledger/fabric-sdk-go/pkg/client/channel"
	"github.com/hyperledger/fabric-sdk-go/pkg/client/channel/invoke"
	"github.com/hyperledger/fabric-sdk-go/pkg/client/ledger"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/errors/status"
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
	h := &commitHandler{}
	chain := invoke.NewSelectAndEndorseHandler(
		invoke.NewEndorsementValidationHandler(
			invoke.NewSignatureValidationHandler(h)))
	_, err := l.channel.InvokeHandler(chain,
		channel.Request{ChaincodeID: l.cfg.Chaincode, Fcn: op, Args: [][]byte{args}},
		channel.WithTimeout(fab.Execute, remaining(ctx, l.cfg.Timeout)),
		channel.WithParentContext(ctx))
	st := h.snapshot()
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
	block, code, err := l.lookupTx(lctx, st.txID)
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
	for _, p := range l.peers {
		resp, err := l.channel.Query(
			channel.Request{ChaincodeID: l.cfg.Chaincode, Fcn: op, Args: [][]byte{args}},
			channel.WithTargets(p),
			channel.WithTimeout(fab.Execute, remaining(ctx, l.cfg.Timeout)),
			channel.WithParentContext(ctx))
		if err == nil {
			return resp.Payload, nil
		}
		last = classify(err)
		if !last.retry || ctx.Err() != nil {
			break
		}
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
	block, _, err := l.lookupTx(ctx, txID)
	return block, err
}

// errTxNotFound marks a transaction no peer knows.
var errTxNotFound = errors.New("transaction not found")

// lookupTx asks the peers, in order, for the block holding txID and
// returns its number and the transaction's validation code. ENOTFOUND
// when every peer that answered knows nothing of it, EUNAVAILABLE when
// none answered.
func (l *Ledger) lookupTx(ctx context.Context, txID string) (uint64, pb.TxValidationCode, error) {
	var errs []error
	answered := false
	for _, p := range l.peers {
		b, err := l.ledger.QueryBlockByTxID(fab.TransactionID(txID), ledger.WithTargets(p), ledger.WithParentContext(ctx))
		if err == nil {
			code, ok := txValidationCode(b, txID)
			if !ok {
				return 0, 0, consent.Errorf(consent.EINTERNAL, "block %d does not hold transaction %s", b.GetHeader().GetNumber(), txID)
			}
			return b.GetHeader().GetNumber(), code, nil
		}
		if isNotFound(err) {
			answered = true
			continue
		}
		errs = append(errs, pkgerrors.WithMessage(err, p.URL()))
		if ctx.Err() != nil {
			break
		}
	}
	if answered {
		return 0, 0, consent.WrapError(consent.ENOTFOUND, errTxNotFound, "transaction %q not found", txID)
	}
	return 0, 0, consent.WrapError(consent.EUNAVAILABLE, errors.Join(errs...), "fabric network unavailable")
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
	if res.source == "" || sameEndpoint(res.source, l.peers[0].URL()) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, visibleWait)
	defer cancel()
	for {
		info, err := l.ledger.QueryInfo(ledger.WithTargets(l.peers[0]), ledger.WithParentContext(ctx))
		if err != nil || info.BCI.Height > res.block {
			return
		}
		if !sleep(ctx, 20*time.Millisecond) {
			l.log.Warn("fabric query peer lags", "peer", l.peers[0].URL(), "block", res.block)
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
		l.log.Warn(msg, "op", op, "attempts", attempts, "code", f.err.Code, "message", f.err.Message, "err", f.err.Err)
		return
	}
	l.log.Debug(msg, "op", op, "code", f.err.Code, "message", f.err.Message)
}

// commitHandler ends Submit's handler chain in place of the SDK's
// CommitTxHandler, which drops the block number: it registers for the
// transaction's commit status, sends the endorsed transaction to the
// orderer and waits for the status. The SDK may abandon a handler on
// timeout while it still runs, hence the mutex.
type commitHandler struct {
	mu sync.Mutex
	st commitState
}

// commitState is what one round learned.
type commitState struct {
	txID    string
	payload []byte
	sent    bool               // the orderer accepted the transaction
	status  *fab.TxStatusEvent // its commit status, once known
}

// Handle implements invoke.Handler.
func (h *commitHandler) Handle(rc *invoke.RequestContext, cc *invoke.ClientContext) {
	txID := string(rc.Response.TransactionID)
	h.mu.Lock()
	h.st.txID, h.st.payload = txID, rc.Response.Payload
	h.mu.Unlock()

	reg, statusCh, err := cc.EventService.RegisterTxStatusEvent(txID)
	if err != nil {
		rc.Error = pkgerrors.WithMessage(err, "register for commit status")
		return
	}
	defer cc.EventService.Unregister(reg)
	if err := rc.Ctx.Err(); err != nil {
		rc.Error = status.New(status.ClientStatus, status.Timeout.ToInt32(), "request ended before ordering", nil)
		return
	}
	tx, err := cc.Transactor.CreateTransaction(fab.TransactionRequest{
		Proposal: rc.Response.Proposal, ProposalResponses: rc.Response.Responses,
	})
	if err != nil {
		rc.Error = pkgerrors.WithMessage(err, "create transaction")
		return
	}
	if _, err := cc.Transactor.SendTransaction(tx); err != nil {
		rc.Error = pkgerrors.WithMessage(err, "send transaction to orderer")
		return
	}
	h.mu.Lock()
	h.st.sent = true
	h.mu.Unlock()

	select {
	case ev, ok := <-statusCh:
		if !ok {
			rc.Error = status.New(status.ClientStatus, status.GenericTransient.ToInt32(), "commit status channel closed", nil)
			return
		}
		h.mu.Lock()
		h.st.status = ev
		h.mu.Unlock()
		rc.Response.TxValidationCode = ev.TxValidationCode
		if ev.TxValidationCode != pb.TxValidationCode_VALID {
			rc.Error = status.New(status.EventServerStatus, int32(ev.TxValidationCode), "transaction invalidated", nil)
		}
	case <-rc.Ctx.Done():
		rc.Error = status.New(status.ClientStatus, status.Timeout.ToInt32(), "no commit status before the deadline", nil)
	}
}

// snapshot returns a copy of the state, safe to read.
func (h *commitHandler) snapshot() commitState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

// receiptCacheSize is how many submitted transactions' blocks TxBlock
// answers from memory.
const receiptCacheSize = 4096

// receiptCache remembers the blocks of recent submits, oldest evicted
// first, so TxBlock right after Submit needs no peer (which may lag the
// one that reported the commit).
type receiptCache struct {
	mu    sync.Mutex
	m     map[string]uint64
	order []string // ring of keys in insertion order
	next  int
}

func (c *receiptCache) put(txID string, block uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]uint64, receiptCacheSize)
		c.order = make([]string, receiptCacheSize)
	}
	if _, ok := c.m[txID]; ok {
		return
	}
	if old := c.order[c.next]; old != "" {
		delete(c.m, old)
	}
	c.order[c.next], c.m[txID] = txID, block
	c.next = (c.next + 1) % receiptCacheSize
}

func (c *receiptCache) get(txID string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[txID]
	return b, ok
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
