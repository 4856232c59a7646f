package fabric

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	cb "github.com/hyperledger/fabric-protos-go/common"
	pb "github.com/hyperledger/fabric-protos-go/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/medshare/medshare/consent"
)

// blockTx describes one transaction of a test block.
type blockTx struct {
	id        string
	typ       cb.HeaderType
	chaincode string // of the event; "" for none
	event     string
	payload   string
	code      pb.TxValidationCode
}

// mustMarshal encodes an (APIv1) protobuf message.
func mustMarshal(t *testing.T, m protoadapt.MessageV1) []byte {
	t.Helper()
	b, err := proto.Marshal(protoadapt.MessageV2Of(m))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// makeBlock builds a block as a peer delivers it: envelopes in the layout
// Fabric commits and the validation codes in the transactions filter.
func makeBlock(t *testing.T, number uint64, at time.Time, txs []blockTx) *cb.Block {
	b := &cb.Block{Header: &cb.BlockHeader{Number: number}, Data: &cb.BlockData{}, Metadata: &cb.BlockMetadata{Metadata: make([][]byte, 5)}}
	var filter []byte
	for _, tx := range txs {
		chdr := mustMarshal(t, &cb.ChannelHeader{Type: int32(tx.typ), TxId: tx.id, ChannelId: "medshare", Timestamp: timestamppb.New(at)})
		var data []byte
		if tx.typ == cb.HeaderType_ENDORSER_TRANSACTION {
			var events []byte
			if tx.chaincode != "" {
				events = mustMarshal(t, &pb.ChaincodeEvent{ChaincodeId: tx.chaincode, TxId: tx.id, EventName: tx.event, Payload: []byte(tx.payload)})
			}
			action := mustMarshal(t, &pb.ChaincodeAction{Events: events, Response: &pb.Response{Status: 200}})
			prp := mustMarshal(t, &pb.ProposalResponsePayload{Extension: action})
			ccp := mustMarshal(t, &pb.ChaincodeActionPayload{Action: &pb.ChaincodeEndorsedAction{ProposalResponsePayload: prp}})
			data = mustMarshal(t, &pb.Transaction{Actions: []*pb.TransactionAction{{Payload: ccp}}})
		}
		payload := mustMarshal(t, &cb.Payload{Header: &cb.Header{ChannelHeader: chdr}, Data: data})
		b.Data.Data = append(b.Data.Data, mustMarshal(t, &cb.Envelope{Payload: payload}))
		filter = append(filter, byte(tx.code))
	}
	b.Metadata.Metadata[cb.BlockMetadataIndex_TRANSACTIONS_FILTER] = filter
	return b
}

func TestParseBlock(t *testing.T) {
	at := time.Date(2025, 6, 1, 8, 0, 0, 123000000, time.FixedZone("CEST", 2*3600))
	valid := pb.TxValidationCode_VALID
	b := makeBlock(t, 42, at, []blockTx{
		{id: "t1", typ: cb.HeaderType_ENDORSER_TRANSACTION, chaincode: "medshare", event: "GrantConsent", payload: `{"id":"c1"}`, code: valid},
		{id: "t2", typ: cb.HeaderType_ENDORSER_TRANSACTION, chaincode: "medshare", event: "RegisterOrg", payload: `{"id":"o"}`, code: pb.TxValidationCode_MVCC_READ_CONFLICT},
		{id: "t3", typ: cb.HeaderType_ENDORSER_TRANSACTION, chaincode: "othercc", event: "Transfer", payload: `{}`, code: valid},
		{id: "t4", typ: cb.HeaderType_CONFIG, code: valid},
		{id: "t5", typ: cb.HeaderType_ENDORSER_TRANSACTION, code: valid}, // no event
		{id: "t6", typ: cb.HeaderType_ENDORSER_TRANSACTION, chaincode: "medshare", event: "RevokeConsent", payload: `{"id":"c1","version":2}`, code: valid},
	})
	got, err := parseBlock(b, "medshare")
	if err != nil {
		t.Fatal(err)
	}
	want := parsedBlock{number: 42, events: []consent.Event{
		{Op: "GrantConsent", TxID: "t1", Block: 42, Time: at.UTC(), Payload: []byte(`{"id":"c1"}`)},
		{Op: "RevokeConsent", TxID: "t6", Block: 42, Time: at.UTC(), Payload: []byte(`{"id":"c1","version":2}`)},
	}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(parsedBlock{})); diff != "" {
		t.Errorf("parseBlock (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		tx   string
		code pb.TxValidationCode
		ok   bool
	}{{"t1", valid, true}, {"t2", pb.TxValidationCode_MVCC_READ_CONFLICT, true}, {"t9", 0, false}} {
		if code, ok := txValidationCode(b, tc.tx); code != tc.code || ok != tc.ok {
			t.Errorf("txValidationCode(%s) = %s, %t; want %s, %t", tc.tx, code, ok, tc.code, tc.ok)
		}
	}
}

func TestParseBlockSkipsGarbage(t *testing.T) {
	// An undecodable transaction is reported, and the others still parsed.
	b := makeBlock(t, 7, time.Unix(0, 0), []blockTx{
		{id: "t1", typ: cb.HeaderType_ENDORSER_TRANSACTION, chaincode: "medshare", event: "LogAccess", payload: `{}`, code: pb.TxValidationCode_VALID},
	})
	b.Data.Data = append([][]byte{{0xff, 0xff, 0xff}}, b.Data.Data...)
	b.Metadata.Metadata[cb.BlockMetadataIndex_TRANSACTIONS_FILTER] = []byte{0, 0}
	got, err := parseBlock(b, "medshare")
	if err == nil {
		t.Error("no error for an undecodable transaction")
	}
	if len(got.events) != 1 || got.events[0].TxID != "t1" {
		t.Errorf("events = %+v, want t1's", got.events)
	}
	// A block without a transactions filter yields nothing: validity unknown.
	b.Metadata.Metadata = nil
	if got, _ := parseBlock(b, "medshare"); len(got.events) != 0 {
		t.Errorf("events without a filter = %+v", got.events)
	}
}
