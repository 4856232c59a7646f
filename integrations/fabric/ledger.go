// Package fabric hosts the consent contract on Hyperledger Fabric through
// fabric-sdk-go v1.0.0: Ledger implements consent.Ledger against the
// medshare chaincode (cmd/medshare-chaincode), and RunReadModel keeps a
// consent.ConsentStore in step with the channel's blocks. It is the only
// package that imports the SDK.
//
// The chaincode's function is the contract operation and its one argument
// the operation's JSON arguments. Queries return their JSON result; state
// changes return it and emit a chaincode event named after the operation
// with the result as payload; failures return shim.Error with the JSON
// {"code","message"} of a consent.Error, which this package turns back into
// one.
//
// Receipts: Submit runs the SDK's select-endorse-validate handlers and
// ends the chain with its own commit step, which keeps the block number of
// the transaction's commit event (the SDK's CommitTxHandler drops it).
// TxBlock answers from those receipts, else asks the peers (qscc
// GetBlockByTxID through the ledger client).
//
// Open applies the client fixes of docs/FABRIC.md in code, whatever the profile says
// (see patchProfile): the orderers are listed under the channel; discovery
// asks one peer at a time with retries and peer dials time out after 3 s;
// and Submit and Evaluate retry transient failures themselves
// (Config.Retries). Listeners drain SDK event channels in goroutines of
// their own and ask for full blocks, because filtered blocks carry no
// chaincode event payloads. The SDK, which logs to standard output, logs at
// WARNING. The remaining fix, low-S ECDSA signatures on CA certificates
// (the SDK rejects a high-S CA certificate with "certificate signed by
// unknown authority", then finds no peers), concerns crypto material, not
// this client: integrations/fabric/network regenerates CA material until it
// is low-S, and production CA certificates must be checked the same way.
package fabric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hyperledger/fabric-sdk-go/pkg/client/channel"
	"github.com/hyperledger/fabric-sdk-go/pkg/client/ledger"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/logging"
	sdkctx "github.com/hyperledger/fabric-sdk-go/pkg/common/providers/context"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/providers/msp"
	"github.com/hyperledger/fabric-sdk-go/pkg/core/config"
	"github.com/hyperledger/fabric-sdk-go/pkg/fabsdk"

	"github.com/medshare/medshare/consent"
)

// Defaults for zero Config fields.
const (
	DefaultChannel   = "medshare"
	DefaultChaincode = "medshare"
	DefaultTimeout   = 30 * time.Second
	DefaultRetries   = 3
)

// pingTimeout bounds a health check.
const pingTimeout = 5 * time.Second

// Config configures Open.
type Config struct {
	// Profile is the path of the fabric-sdk-go connection profile (YAML or
	// JSON); MEDSHARE_FABRIC_CONFIG. Required.
	Profile string
	// Channel is the application channel. Default DefaultChannel.
	Channel string
	// Chaincode is the chaincode name. Default DefaultChaincode.
	Chaincode string
	// MSPID is the client identity's MSP. Default: the profile's MSP id of
	// Org; when both are set they must agree.
	MSPID string
	// CertPath and KeyPath are the client identity's signing certificate
	// and private key (PEM). Required.
	CertPath, KeyPath string
	// Org is the client's organization in the profile (e.g. "hospital").
	// Default: the profile's client.organization.
	Org string
	// Timeout bounds each Submit and Evaluate, retries included. Default
	// DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a transient failure (unreachable peer,
	// read conflict, endorsement mismatch) is retried, with backoff.
	// Default DefaultRetries; negative means none.
	Retries int
	// Logger receives reconnects, retries and read-model progress. Default
	// discards.
	Logger *slog.Logger
}

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() Config {
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.Chaincode == "" {
		c.Chaincode = DefaultChaincode
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

var _ consent.Ledger = (*Ledger)(nil)

// Ledger is consent.Ledger on a Fabric channel. It is safe for concurrent
// use.
type Ledger struct {
	cfg     Config
	log     *slog.Logger
	sdk     *fabsdk.FabricSDK
	chp     sdkctx.ChannelProvider
	channel *channel.Client
	ledger  *ledger.Client
	peers   *queryPeers // query targets, the client's own org first

	receipts receiptCache // blocks of transactions this Ledger submitted

	lastEvent atomic.Uint64 // newest block a listener handled
	mu        sync.Mutex    // orders listener registration (wg.Add) before Close
	done      chan struct{} // closed by Close: ends listeners
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Open connects to the channel described by c and checks that a peer
// answers. Errors: EINVALID for a bad configuration (missing or unreadable
// files, unknown org, MSP mismatch), EUNAVAILABLE when no peer can be
// reached.
func Open(ctx context.Context, c Config) (*Ledger, error) {
	c = c.withDefaults()
	if c.Profile == "" || c.CertPath == "" || c.KeyPath == "" {
		return nil, consent.Errorf(consent.EINVALID, "fabric: profile, certificate and key paths are required")
	}
	raw, err := os.ReadFile(c.Profile)
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "fabric: read connection profile")
	}
	patched, info, err := patchProfile(raw, c.Channel, c.Org)
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "fabric: connection profile %s: %v", c.Profile, err)
	}
	c.Org = info.org
	switch {
	case c.MSPID == "":
		c.MSPID = info.mspID
	case info.mspID != "" && info.mspID != c.MSPID:
		return nil, consent.Errorf(consent.EINVALID, "fabric: MSP id %q does not match org %q's %q in the profile", c.MSPID, c.Org, info.mspID)
	}
	cert, err := os.ReadFile(c.CertPath)
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "fabric: read client certificate")
	}
	key, err := os.ReadFile(c.KeyPath)
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "fabric: read client key")
	}

	sdk, err := fabsdk.New(config.FromRaw(patched, "yaml"))
	if err != nil {
		return nil, consent.WrapError(consent.EINVALID, err, "fabric: load SDK configuration")
	}
	// The profile's level applies to the modules the SDK knows up front;
	// this covers every other module.
	logging.SetLevel("", logging.WARNING)

	l := &Ledger{cfg: c, log: c.Logger.With("ledger", "fabric", "channel", c.Channel), sdk: sdk, done: make(chan struct{})}
	if err := l.connect(cert, key); err != nil {
		sdk.Close()
		return nil, err
	}
	if err := l.Ping(ctx); err != nil {
		sdk.Close()
		return nil, err
	}
	l.log.Info("fabric ledger open", "org", c.Org, "msp", c.MSPID, "chaincode", c.Chaincode, "peers", l.peers.urls())
	return l, nil
}

// connect creates the client identity, the channel and ledger clients and
// the query targets.
func (l *Ledger) connect(cert, key []byte) error {
	cctx, err := l.sdk.Context()()
	if err != nil {
		return consent.WrapError(consent.EINVALID, err, "fabric: SDK context")
	}
	mgr, ok := cctx.IdentityManager(l.cfg.Org)
	if !ok {
		return consent.Errorf(consent.EINVALID, "fabric: no identity manager for org %q", l.cfg.Org)
	}
	id, err := mgr.CreateSigningIdentity(msp.WithCert(cert), msp.WithPrivateKey(key))
	if err != nil {
		return consent.WrapError(consent.EINVALID, err, "fabric: client identity")
	}
	if got := id.Identifier().MSPID; got != l.cfg.MSPID {
		return consent.Errorf(consent.EINVALID, "fabric: client identity belongs to MSP %q, want %q", got, l.cfg.MSPID)
	}
	l.chp = l.sdk.ChannelContext(l.cfg.Channel, fabsdk.WithIdentity(id), fabsdk.WithOrg(l.cfg.Org))
	chCtx, err := l.chp()
	if err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "fabric: channel context")
	}
	if l.peers, err = newQueryPeers(chCtx, l.cfg.Channel, l.cfg.MSPID); err != nil {
		return err
	}
	if l.channel, err = channel.New(l.chp); err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "fabric: channel client")
	}
	if l.ledger, err = ledger.New(l.chp); err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "fabric: ledger client")
	}
	return nil
}

// Ping asks the client's peers, in order, for the channel height: nil as
// soon as one answers, EUNAVAILABLE if none does within a few seconds.
func (l *Ledger) Ping(ctx context.Context) error {
	if l.closed() {
		return errClosed()
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := l.height(ctx); err != nil {
		return consent.WrapError(consent.EUNAVAILABLE, err, "fabric network unavailable")
	}
	return nil
}

// Height returns the channel's height (the number of the next block) as
// the first reachable peer sees it. With LastEventBlock it measures how far
// listeners lag. EUNAVAILABLE when no peer answers.
func (l *Ledger) Height(ctx context.Context) (uint64, error) {
	if l.closed() {
		return 0, errClosed()
	}
	h, err := l.height(ctx)
	if err != nil {
		return 0, consent.WrapError(consent.EUNAVAILABLE, err, "fabric network unavailable")
	}
	return h, nil
}

// height queries the peers in order for the chain height.
func (l *Ledger) height(ctx context.Context) (uint64, error) {
	var errs []error
	for _, p := range l.peers.ordered() {
		info, err := l.ledger.QueryInfo(ledger.WithTargets(p), ledger.WithParentContext(ctx))
		if err == nil {
			l.peers.answered(p)
			return info.BCI.Height, nil
		}
		l.peers.failed(p)
		errs = append(errs, fmt.Errorf("%s: %w", p.URL(), err))
		if ctx.Err() != nil {
			break
		}
	}
	return 0, errors.Join(errs...)
}

// LastEventBlock returns the newest block any of this Ledger's block
// listeners (Subscribe, RunReadModel) has handled, 0 before the first.
// Height(ctx)-1-LastEventBlock() is the listeners' lag in blocks.
func (l *Ledger) LastEventBlock() uint64 { return l.lastEvent.Load() }

// Close stops the listeners, closing their channels, and releases the SDK.
// Later calls fail with EUNAVAILABLE. Closing twice is harmless.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		close(l.done)
		l.mu.Unlock()
		l.wg.Wait()
		l.sdk.Close()
		l.log.Info("fabric ledger closed")
	})
	return nil
}

// closed reports whether Close has been called.
func (l *Ledger) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func errClosed() error { return consent.Errorf(consent.EUNAVAILABLE, "fabric ledger is closed") }
