// Command medshare-chaincode serves medshare's consent contract to Fabric
// peers as an external chaincode service (chaincode-as-a-service).
//
// It is a thin host: every transaction is handed to consent.Apply and every
// query to consent.Query, so the Fabric ledger runs exactly the state machine
// the embedded ledger runs. The peer dials the address in the chaincode
// package's connection.json; this process listens there.
//
// Configuration (set by the network scripts, not MEDSHARE_* settings, because
// these are the names Fabric's CCaaS tooling uses):
//
//	CHAINCODE_ID              package id printed by `peer lifecycle chaincode calculatepackageid`
//	CHAINCODE_SERVER_ADDRESS  listen address, e.g. 127.0.0.1:9999
//	CHAINCODE_TLS_DISABLED    "true" (default) for loopback; "false" in production
//	CHAINCODE_TLS_CERT, CHAINCODE_TLS_KEY   server certificate and key (PEM files)
//	CHAINCODE_CLIENT_CA_CERT  CA of the peers' client certificates (PEM file);
//	                          when set, peers must present a client certificate
//
// The local network runs without TLS (peer and chaincode on loopback); the
// production compose file turns it on with client authentication.
package main

import (
	"fmt"
	"log"
	"os"

	"github.com/hyperledger/fabric-chaincode-go/shim"
)

func main() {
	log.SetPrefix("medshare-chaincode: ")
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// run starts the chaincode server and blocks until it stops.
func run() error {
	id, addr := os.Getenv("CHAINCODE_ID"), os.Getenv("CHAINCODE_SERVER_ADDRESS")
	if id == "" || addr == "" {
		return fmt.Errorf("CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS must both be set")
	}
	tls, err := tlsProps()
	if err != nil {
		return err
	}
	srv := &shim.ChaincodeServer{CCID: id, Address: addr, CC: Chaincode{}, TLSProps: tls}
	log.Printf("serving chaincode %s on %s", id, addr)
	if err := srv.Start(); err != nil {
		return fmt.Errorf("chaincode server: %w", err)
	}
	return nil
}

// tlsProps reads the chaincode server's TLS settings from the environment.
func tlsProps() (shim.TLSProperties, error) {
	if v := os.Getenv("CHAINCODE_TLS_DISABLED"); v == "" || v == "true" {
		return shim.TLSProperties{Disabled: true}, nil
	}
	read := func(name string, required bool) ([]byte, error) {
		p := os.Getenv(name)
		if p == "" {
			if required {
				return nil, fmt.Errorf("%s must be set when CHAINCODE_TLS_DISABLED=false", name)
			}
			return nil, nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		return b, nil
	}
	cert, err := read("CHAINCODE_TLS_CERT", true)
	if err != nil {
		return shim.TLSProperties{}, err
	}
	key, err := read("CHAINCODE_TLS_KEY", true)
	if err != nil {
		return shim.TLSProperties{}, err
	}
	ca, err := read("CHAINCODE_CLIENT_CA_CERT", false)
	if err != nil {
		return shim.TLSProperties{}, err
	}
	return shim.TLSProperties{Disabled: false, Key: key, Cert: cert, ClientCACerts: ca}, nil
}
