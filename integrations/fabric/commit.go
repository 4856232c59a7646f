package fabric

import (
	"cmp"
	"context"
	"sync"
	"time"

	pb "github.com/hyperledger/fabric-protos-go/peer"
	"github.com/hyperledger/fabric-sdk-go/pkg/client/channel/invoke"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/errors/status"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/providers/fab"
	pkgerrors "github.com/pkg/errors"
)

// Commit-status polling: when the commit event has not come pollAfter
// after ordering, the handler also asks the peers for the transaction,
// every pollEvery. The SDK's event service is silent while it reconnects
// (after a peer restart it waits seconds between attempts, then may move
// to the preferred peer again); the peers already know the outcome.
const (
	pollAfter = time.Second
	pollEvery = 500 * time.Millisecond
)

// commitHandler ends Submit's handler chain in place of the SDK's
// CommitTxHandler, which drops the block number: it registers for the
// transaction's commit status, sends the endorsed transaction to the
// orderer and waits for the status from the event service or, failing
// that, from poll. The SDK may abandon a handler on timeout while it still
// runs, hence the mutex.
type commitHandler struct {
	// poll asks the peers for txID's commit; false while none knows it.
	poll func(ctx context.Context, txID string) (*fab.TxStatusEvent, bool)
	// after and every pace the polls; zero means pollAfter and pollEvery.
	after, every time.Duration

	mu sync.Mutex
	st commitState
}

// commitState is what one round learned.
type commitState struct {
	txID    string
	payload []byte
	sent    bool               // the orderer accepted the transaction
	status  *fab.TxStatusEvent // its commit status, once known

	// When each step ended, for the log of slow submits.
	endorsed, ordered, committed time.Time
}

// Handle implements invoke.Handler.
func (h *commitHandler) Handle(rc *invoke.RequestContext, cc *invoke.ClientContext) {
	txID := string(rc.Response.TransactionID)
	h.mu.Lock()
	h.st.txID, h.st.payload, h.st.endorsed = txID, rc.Response.Payload, time.Now()
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
	h.st.sent, h.st.ordered = true, time.Now()
	h.mu.Unlock()

	ev, err := h.await(rc.Ctx, txID, statusCh)
	if err != nil {
		rc.Error = err
		return
	}
	h.mu.Lock()
	h.st.status, h.st.committed = ev, time.Now()
	h.mu.Unlock()
	rc.Response.TxValidationCode = ev.TxValidationCode
	if ev.TxValidationCode != pb.TxValidationCode_VALID {
		rc.Error = status.New(status.EventServerStatus, int32(ev.TxValidationCode), "transaction invalidated", nil)
	}
}

// await returns the transaction's commit status from the event service,
// or from polling the peers once the event is late.
func (h *commitHandler) await(ctx context.Context, txID string, statusCh <-chan *fab.TxStatusEvent) (*fab.TxStatusEvent, error) {
	after, every := cmp.Or(h.after, pollAfter), cmp.Or(h.every, pollEvery)
	timer := time.NewTimer(after)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-statusCh:
			if !ok {
				return nil, status.New(status.ClientStatus, status.GenericTransient.ToInt32(), "commit status channel closed", nil)
			}
			return ev, nil
		case <-timer.C:
			if h.poll != nil {
				if ev, ok := h.poll(ctx, txID); ok {
					return ev, nil
				}
			}
			timer.Reset(every)
		case <-ctx.Done():
			return nil, status.New(status.ClientStatus, status.Timeout.ToInt32(), "no commit status before the deadline", nil)
		}
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
