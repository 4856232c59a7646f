package main

import (
	"context"
	"fmt"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/fabric"
	"github.com/medshare/medshare/records"
)

// readModelStore is what the document store must offer on Fabric: the
// consent read model and the access-log outbox.
type readModelStore interface {
	consent.ConsentStore
	consent.Outbox
}

// openFabric opens the Fabric ledger named by the MEDSHARE_FABRIC_* settings.
func (m *Main) openFabric(ctx context.Context) error {
	c := m.Config
	l, err := fabric.Open(ctx, fabric.Config{
		Profile: c.FabricConf, Channel: c.FabricChannel, Chaincode: c.FabricChaincode, MSPID: c.FabricMSPID,
		CertPath: c.FabricCert, KeyPath: c.FabricKey, Org: c.FabricOrg, Logger: m.Logger,
	})
	if err != nil {
		return fmt.Errorf("open fabric ledger: %w", err)
	}
	m.Ledger = l
	m.closers = append(m.closers, l.Close)
	return nil
}

// startFabricWorkers wires the read model and the outbox into the service
// and starts the event listener and the anchoring worker.
func (m *Main) startFabricWorkers(svc *records.Service) error {
	rm, ok := m.Store.(readModelStore)
	if !ok {
		return fmt.Errorf("the document store does not provide a consent read model and outbox")
	}
	l := m.Ledger.(*fabric.Ledger)
	worker := consent.NewOutboxWorker(rm, m.Consent, m.Logger)
	svc.ConsentCache, svc.Outbox = rm, rm
	svc.Consents = records.StoredConsents{Store: rm}
	svc.Access = records.OutboxAccessLog{Outbox: rm, Notify: worker.Notify}
	m.runWorkers(worker, func(ctx context.Context) {
		for ctx.Err() == nil {
			if err := l.RunReadModel(ctx, rm, "consents"); err != nil && ctx.Err() == nil {
				m.Logger.Warn("consent read model stopped; restarting", "err", err)
				time.Sleep(time.Second)
			}
		}
	})
	return nil
}
