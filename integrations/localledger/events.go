package localledger

import (
	"context"
	"sync"

	"github.com/medshare/medshare/consent"
)

// subscribers fans committed events out to Subscribe channels.
type subscribers struct {
	mu     sync.Mutex
	m      map[*subscriber]struct{}
	closed bool
}

// subscriber is one Subscribe call: its channel and the hook that stops
// watching its context.
type subscriber struct {
	ch   chan consent.Event
	stop func() bool
}

// Subscribe returns a channel that receives an event for every transaction
// committed after the call, in commit order. The channel is closed when ctx
// ends, when the ledger closes, or when the subscriber falls more than its
// buffer behind (the ledger never waits for a reader). After Close it
// returns a closed channel.
func (l *Ledger) Subscribe(ctx context.Context) <-chan consent.Event {
	s := &subscriber{ch: make(chan consent.Event, subscriberBuffer)}
	l.subs.mu.Lock()
	defer l.subs.mu.Unlock()
	if l.subs.closed || ctx.Err() != nil {
		close(s.ch)
		return s.ch
	}
	l.subs.m[s] = struct{}{}
	// AfterFunc runs no goroutine until ctx ends; drop and closeAll stop it.
	s.stop = context.AfterFunc(ctx, func() {
		l.subs.mu.Lock()
		defer l.subs.mu.Unlock()
		l.subs.drop(s)
	})
	return s.ch
}

// publish delivers events to every subscriber without blocking, dropping
// those whose buffer is full.
func (ss *subscribers) publish(events []consent.Event) {
	if len(events) == 0 {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for s := range ss.m {
		for _, e := range events {
			select {
			case s.ch <- e:
				continue
			default:
			}
			ss.drop(s)
			break
		}
	}
}

// drop removes s and closes its channel, once. ss.mu must be held.
func (ss *subscribers) drop(s *subscriber) {
	if _, ok := ss.m[s]; !ok {
		return
	}
	delete(ss.m, s)
	s.stop()
	close(s.ch)
}

// closeAll drops every subscriber and refuses new ones.
func (ss *subscribers) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	for s := range ss.m {
		ss.drop(s)
	}
}
