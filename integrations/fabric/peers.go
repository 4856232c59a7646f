package fabric

import (
	"slices"
	"strings"
	"sync"
	"time"

	sdkctx "github.com/hyperledger/fabric-sdk-go/pkg/common/providers/context"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/providers/fab"

	"github.com/medshare/medshare/consent"
)

// peerDownFor is how long a query peer that could not be reached is asked
// last. Without it every query would wait out a dial timeout (3 s) on a
// stopped peer before moving on.
const peerDownFor = 5 * time.Second

// queryPeers are the peers queries go to, one at a time: the client's own
// org's first, and among those the ones not recently found down.
type queryPeers struct {
	all  []fab.Peer // fixed order: own org first, then by URL
	mu   sync.Mutex
	down map[string]time.Time // URL → until when it is asked last
}

// newQueryPeers returns the channel's query peers from the profile.
func newQueryPeers(chCtx sdkctx.Channel, ch, mspID string) (*queryPeers, error) {
	var own, other []fab.Peer
	for _, cp := range chCtx.EndpointConfig().ChannelPeers(ch) {
		if !cp.ChaincodeQuery && !cp.LedgerQuery {
			continue
		}
		p, err := chCtx.InfraProvider().CreatePeerFromConfig(&cp.NetworkPeer)
		if err != nil {
			return nil, consent.WrapError(consent.EINVALID, err, "fabric: peer %s", cp.URL)
		}
		if cp.MSPID == mspID {
			own = append(own, p)
		} else {
			other = append(other, p)
		}
	}
	byURL := func(a, b fab.Peer) int { return strings.Compare(a.URL(), b.URL()) }
	slices.SortFunc(own, byURL)
	slices.SortFunc(other, byURL)
	all := append(own, other...)
	if len(all) == 0 {
		return nil, consent.Errorf(consent.EINVALID, "fabric: the profile lists no query peers for channel %q", ch)
	}
	return &queryPeers{all: all, down: map[string]time.Time{}}, nil
}

// ordered returns the peers to try, in order: those up first.
func (q *queryPeers) ordered() []fab.Peer {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	up := make([]fab.Peer, 0, len(q.all))
	var down []fab.Peer
	for _, p := range q.all {
		if until, ok := q.down[p.URL()]; ok && now.Before(until) {
			down = append(down, p)
		} else {
			up = append(up, p)
		}
	}
	return append(up, down...)
}

// failed marks p as unreachable for a while.
func (q *queryPeers) failed(p fab.Peer) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.down[p.URL()] = time.Now().Add(peerDownFor)
}

// answered marks p as reachable.
func (q *queryPeers) answered(p fab.Peer) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.down, p.URL())
}

// urls lists the peers for logs.
func (q *queryPeers) urls() []string {
	out := make([]string, len(q.all))
	for i, p := range q.all {
		out[i] = p.URL()
	}
	return out
}
