package main

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/shim"
	"github.com/hyperledger/fabric-protos-go/msp"
	"github.com/medshare/medshare/consent"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// emptyValue stands in for an empty value on the ledger. Fabric treats a
// PutState of an empty value as a delete, but the contract stores empty
// values (index entries) that must survive. No contract value is a lone NUL
// byte: values are JSON documents, ids or empty.
var emptyValue = []byte{0}

// State adapts a chaincode stub to consent.State.
type State struct {
	Stub shim.ChaincodeStubInterface
}

var _ consent.State = State{}

// Get implements consent.State.
func (s State) Get(key string) ([]byte, error) {
	v, err := s.Stub.GetState(key)
	return decodeValue(v), err
}

// Put implements consent.State.
func (s State) Put(key string, value []byte) error {
	if len(value) == 0 {
		value = emptyValue
	}
	return s.Stub.PutState(key, value)
}

// Range implements consent.State over GetStateByRange, in key order.
func (s State) Range(start, end string, fn func(key string, value []byte) error) error {
	it, err := s.Stub.GetStateByRange(start, end)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.HasNext() {
		kv, err := it.Next()
		if err != nil {
			return err
		}
		if err := fn(kv.Key, decodeValue(kv.Value)); errors.Is(err, consent.ErrStopRange) {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

// TxID implements consent.State.
func (s State) TxID() string { return s.Stub.GetTxID() }

// TxTime implements consent.State: the proposal's timestamp, in UTC. The
// client sets it, and every endorser sees the same one.
func (s State) TxTime() time.Time {
	ts, err := s.Stub.GetTxTimestamp()
	if err != nil {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}

// Creator implements consent.State: the MSP id of the submitting identity,
// or "" if the creator cannot be decoded.
func (s State) Creator() string {
	id, err := creatorMSP(s.Stub)
	if err != nil {
		return ""
	}
	return id
}

// creatorMSP decodes the submitter's serialized identity.
func creatorMSP(stub shim.ChaincodeStubInterface) (string, error) {
	raw, err := stub.GetCreator()
	if err != nil {
		return "", err
	}
	var sid msp.SerializedIdentity // an APIv1 message at this protos version
	if err := proto.Unmarshal(raw, protoadapt.MessageV2Of(&sid)); err != nil {
		return "", fmt.Errorf("decode creator: %w", err)
	}
	return sid.Mspid, nil
}

// decodeValue undoes Put's stand-in for empty values.
func decodeValue(v []byte) []byte {
	if bytes.Equal(v, emptyValue) {
		return []byte{}
	}
	return v
}
