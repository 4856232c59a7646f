package fabric

import (
	"context"
	"errors"
	"fmt"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	"github.com/hyperledger/fabric-sdk-go/pkg/fab/events/client"
	"github.com/hyperledger/fabric-sdk-go/pkg/fab/events/deliverclient"
	"github.com/hyperledger/fabric-sdk-go/pkg/fab/events/deliverclient/seek"

	"github.com/medshare/medshare/consent"
)

// subscriberBuffer is each Subscribe channel's capacity; a subscriber
// further behind than this is dropped.
const subscriberBuffer = 1024

// blockQueue is how many blocks a listener buffers between the SDK and its
// handler. The SDK drops a block its consumer does not take within 500 ms;
// draining into this queue in a goroutine of its own keeps the SDK's
// dispatcher from ever waiting, and a block dropped when the queue is full
// shows up as a gap, after which the listener reconnects from the missing
// block.
const blockQueue = 1024

// Reconnect pacing of block listeners.
const (
	listenBackoffMin = 500 * time.Millisecond
	listenBackoffMax = 10 * time.Second
	connectRetry     = time.Second // the SDK's own pause between reconnects
)

// errStopFollow, returned by a follow handler, ends the listener.
var errStopFollow = errors.New("stop following")

// Subscribe delivers an event for each chaincode event of a valid
// transaction committed after the call, in block order, until ctx ends or
// the Ledger closes; then the channel is closed. It listens to full blocks
// on its own connection and resumes from the last block seen when a peer
// or the orderer restarts, so nothing is missed or repeated. A subscriber
// more than 1024 events behind is dropped (its channel closed) rather than
// stall the listener.
func (l *Ledger) Subscribe(ctx context.Context) <-chan consent.Event {
	ch := make(chan consent.Event, subscriberBuffer)
	ctx, cancel, ok := l.listen(ctx)
	if !ok {
		close(ch)
		return ch
	}
	// The height now is the first block that can hold a later commit.
	hctx, hcancel := context.WithTimeout(ctx, pingTimeout)
	from, err := l.height(hctx)
	hcancel()
	go func() {
		defer l.wg.Done()
		defer cancel()
		defer close(ch)
		if err != nil {
			if from, err = l.retryHeight(ctx); err != nil {
				return
			}
		}
		l.follow(ctx, "subscribe", from, func(_ context.Context, b parsedBlock) error {
			for _, ev := range b.events {
				select {
				case ch <- ev:
				default:
					l.log.Warn("fabric subscriber too slow: dropped", "block", b.number)
					return errStopFollow
				}
			}
			return nil
		})
	}()
	return ch
}

// listen registers a listener: it returns a context that also ends when
// the Ledger closes, and false when the Ledger is closed already. The
// caller must call l.wg.Done when the listener ends.
func (l *Ledger) listen(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed() || ctx.Err() != nil {
		return nil, nil, false
	}
	l.wg.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel, true
}

// retryHeight asks for the chain height until a peer answers or ctx ends.
func (l *Ledger) retryHeight(ctx context.Context) (uint64, error) {
	for n := 0; ; n++ {
		h, err := l.height(ctx)
		if err == nil {
			return h, nil
		}
		l.log.Warn("fabric listener: no peer answers", "err", errText(err))
		if !sleep(ctx, listenBackoff(n)) {
			return 0, ctx.Err()
		}
	}
}

// follow hands every block from from on to fn, in order and once each,
// until ctx ends or fn returns errStopFollow. When the connection fails,
// the SDK drops a block or fn fails, it reconnects (with backoff) from the
// first block fn has not completed.
func (l *Ledger) follow(ctx context.Context, name string, from uint64, fn func(context.Context, parsedBlock) error) {
	next := from
	for failures := 0; ctx.Err() == nil; {
		start := next
		err := l.followOnce(ctx, &next, fn)
		if errors.Is(err, errStopFollow) || ctx.Err() != nil {
			return
		}
		if next > start {
			failures = 0
		}
		l.log.Warn("fabric block listener reconnecting", "listener", name, "from", next, "err", errText(err))
		if !sleep(ctx, listenBackoff(failures)) {
			return
		}
		failures++
	}
}

// followOnce runs one connection of a listener.
func (l *Ledger) followOnce(ctx context.Context, next *uint64, fn func(context.Context, parsedBlock) error) error {
	ec, err := l.openBlockEvents(*next)
	if err != nil {
		return err
	}
	defer ec.Close()
	reg, events, err := ec.RegisterBlockEvent()
	if err != nil {
		return fmt.Errorf("register for block events: %w", err)
	}
	defer ec.Unregister(reg)

	queue := make(chan *cb.Block, blockQueue)
	go func() {
		// Runs until Close or Unregister closes events; never blocks.
		defer close(queue)
		for ev := range events {
			select {
			case queue <- ev.Block:
			default:
			}
		}
	}()
	for {
		var b *cb.Block
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b = <-queue:
		}
		if b == nil {
			return errors.New("block event stream closed")
		}
		switch n := b.GetHeader().GetNumber(); {
		case n < *next:
			continue // already handled, e.g. resent after a reconnect
		case n > *next:
			return fmt.Errorf("missed blocks %d to %d", *next, n-1)
		}
		pbk, perr := parseBlock(b, l.cfg.Chaincode)
		if perr != nil {
			l.log.Error("fabric block has undecodable transactions", "block", pbk.number, "err", errText(perr))
		}
		if err := fn(ctx, pbk); err != nil {
			return err
		}
		l.noteEvent(pbk.number)
		*next++
	}
}

// openBlockEvents connects a new deliver client for full blocks from
// block from. It is not the SDK's cached event service: that one is shared
// per seek position and would hand a later listener a stream already past
// its start.
func (l *Ledger) openBlockEvents(from uint64) (*deliverclient.Client, error) {
	chCtx, err := l.chp()
	if err != nil {
		return nil, fmt.Errorf("channel context: %w", err)
	}
	cfg, err := chCtx.ChannelService().ChannelConfig()
	if err != nil {
		return nil, fmt.Errorf("channel config: %w", err)
	}
	disc, err := chCtx.ChannelService().Discovery()
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	ec, err := deliverclient.New(chCtx, cfg, disc,
		client.WithBlockEvents(),
		deliverclient.WithSeekType(seek.FromBlock),
		deliverclient.WithBlockNum(from),
		client.WithTimeBetweenConnectAttempts(connectRetry),
	)
	if err != nil {
		return nil, fmt.Errorf("deliver client: %w", err)
	}
	if err := ec.Connect(); err != nil {
		ec.Close()
		return nil, fmt.Errorf("connect deliver client: %w", err)
	}
	return ec, nil
}

// noteEvent records that a listener handled block n.
func (l *Ledger) noteEvent(n uint64) {
	for {
		cur := l.lastEvent.Load()
		if n <= cur || l.lastEvent.CompareAndSwap(cur, n) {
			return
		}
	}
}

// listenBackoff is the pause after the nth consecutive listener failure.
func listenBackoff(n int) time.Duration {
	return min(listenBackoffMin<<min(n, 8), listenBackoffMax)
}
