package fabric_test

import (
	"context"
	"log"
	"log/slog"
	"os"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/fabric"
)

// Open the hospital's client on the channel, keep the consent read model
// in step with it, and submit through consent.Service. (Not run: it needs
// a network; see `make fabric-up` and `make -s fabric-env`.)
func ExampleOpen() {
	ctx := context.Background()
	l, err := fabric.Open(ctx, fabric.Config{
		Profile:  os.Getenv("MEDSHARE_FABRIC_CONFIG"),
		MSPID:    "HospitalMSP",
		Org:      "hospital",
		CertPath: "crypto/.../User1@hospital.medshare.test-cert.pem",
		KeyPath:  "crypto/.../priv_sk",
		Logger:   slog.Default(),
	})
	if err != nil {
		log.Fatal(err) // EINVALID: bad configuration; EUNAVAILABLE: no peer answers
	}
	defer l.Close()

	var store consent.ConsentStore // bolt.RecordStore or mongo.RecordStore
	go l.RunReadModel(ctx, store, "consents")

	svc := consent.NewService(l)
	org, rcpt, err := svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: "st-mary", Name: "St Mary's", Type: consent.OrgHospital})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("registered %s in tx %s, block %d", org.ID, rcpt.TxID, rcpt.Block)
}
