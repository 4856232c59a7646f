package main

import (
	"maps"
	"slices"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/shim"
	"github.com/hyperledger/fabric-protos-go/ledger/queryresult"
	pb "github.com/hyperledger/fabric-protos-go/peer"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeStub is the part of a peer's stub the chaincode uses, with Fabric's
// semantics where they matter: a PutState of an empty value deletes the key,
// and writes are visible to reads in the same transaction (a simplification
// that does not affect the contract, which never reads its own writes back
// expecting the old value). Unused methods panic via the nil embedded interface.
type fakeStub struct {
	shim.ChaincodeStubInterface
	state   map[string][]byte
	args    [][]byte
	txID    string
	txTime  time.Time
	creator []byte
	events  []*pb.ChaincodeEvent
	open    int // iterators not yet closed
}

func newFakeStub() *fakeStub { return &fakeStub{state: map[string][]byte{}} }

// invoke runs one transaction of cc with op and its JSON argument.
func (s *fakeStub) invoke(cc shim.Chaincode, txID, op, arg string) pb.Response {
	s.args = [][]byte{[]byte(op), []byte(arg)}
	s.txID = txID
	s.txTime = s.txTime.Add(time.Second)
	return cc.Invoke(s)
}

func (s *fakeStub) GetArgs() [][]byte { return s.args }
func (s *fakeStub) GetTxID() string   { return s.txID }

func (s *fakeStub) GetTxTimestamp() (*timestamppb.Timestamp, error) {
	return timestamppb.New(s.txTime), nil
}

func (s *fakeStub) GetCreator() ([]byte, error) { return s.creator, nil }

func (s *fakeStub) GetState(key string) ([]byte, error) { return s.state[key], nil }

func (s *fakeStub) PutState(key string, value []byte) error {
	if len(value) == 0 {
		delete(s.state, key) // what Fabric's read-write set does with it
		return nil
	}
	s.state[key] = slices.Clone(value)
	return nil
}

func (s *fakeStub) GetStateByRange(start, end string) (shim.StateQueryIteratorInterface, error) {
	it := &fakeIter{stub: s}
	for _, k := range slices.Sorted(maps.Keys(s.state)) {
		if k >= start && (end == "" || k < end) {
			it.kvs = append(it.kvs, &queryresult.KV{Key: k, Value: s.state[k]})
		}
	}
	s.open++
	return it, nil
}

func (s *fakeStub) SetEvent(name string, payload []byte) error {
	s.events = append(s.events, &pb.ChaincodeEvent{EventName: name, Payload: payload})
	return nil
}

// fakeIter iterates a snapshot of a range.
type fakeIter struct {
	stub *fakeStub
	kvs  []*queryresult.KV
}

func (it *fakeIter) HasNext() bool { return len(it.kvs) > 0 }

func (it *fakeIter) Next() (*queryresult.KV, error) {
	kv := it.kvs[0]
	it.kvs = it.kvs[1:]
	return kv, nil
}

func (it *fakeIter) Close() error {
	it.stub.open--
	return nil
}
