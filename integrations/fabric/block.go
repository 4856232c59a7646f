package fabric

import (
	"errors"
	"fmt"

	cb "github.com/hyperledger/fabric-protos-go/common"
	pb "github.com/hyperledger/fabric-protos-go/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/medshare/medshare/consent"
)

// parsedBlock is what listeners need of a committed block.
type parsedBlock struct {
	number uint64
	events []consent.Event // chaincode events of its valid transactions, in order
}

// parseBlock extracts the chaincode events of chaincode from the valid
// transactions of a full block. A transaction that does not decode is
// skipped and reported in err (the peer already validated the block, so
// this does not happen in practice); the other events are still returned.
func parseBlock(b *cb.Block, chaincode string) (parsedBlock, error) {
	pbk := parsedBlock{number: b.GetHeader().GetNumber()}
	codes := txFilter(b)
	var errs []error
	for i, data := range b.GetData().GetData() {
		if i >= len(codes) || pb.TxValidationCode(codes[i]) != pb.TxValidationCode_VALID {
			continue
		}
		evs, err := txEvents(data, chaincode, pbk.number)
		if err != nil {
			errs = append(errs, fmt.Errorf("block %d tx %d: %w", pbk.number, i, err))
			continue
		}
		pbk.events = append(pbk.events, evs...)
	}
	return pbk, errors.Join(errs...)
}

// txFilter returns the block's validation code per transaction.
func txFilter(b *cb.Block) []byte {
	md := b.GetMetadata().GetMetadata()
	if int(cb.BlockMetadataIndex_TRANSACTIONS_FILTER) >= len(md) {
		return nil
	}
	return md[cb.BlockMetadataIndex_TRANSACTIONS_FILTER]
}

// txEvents decodes one envelope and returns the chaincode's events in it.
func txEvents(data []byte, chaincode string, block uint64) ([]consent.Event, error) {
	chdr, payload, err := envelopeHeader(data)
	if err != nil {
		return nil, err
	}
	if cb.HeaderType(chdr.GetType()) != cb.HeaderType_ENDORSER_TRANSACTION {
		return nil, nil // config transactions carry no chaincode events
	}
	tx := &pb.Transaction{}
	if err := unmarshal(payload.GetData(), tx); err != nil {
		return nil, fmt.Errorf("transaction: %w", err)
	}
	var out []consent.Event
	for _, action := range tx.GetActions() {
		ev, err := actionEvent(action)
		if err != nil {
			return nil, err
		}
		if ev == nil || ev.GetChaincodeId() != chaincode || ev.GetEventName() == "" {
			continue
		}
		out = append(out, consent.Event{
			Op: ev.GetEventName(), TxID: chdr.GetTxId(), Block: block,
			Time: chdr.GetTimestamp().AsTime().UTC(), Payload: ev.GetPayload(),
		})
	}
	return out, nil
}

// envelopeHeader decodes an envelope's payload and channel header.
func envelopeHeader(data []byte) (*cb.ChannelHeader, *cb.Payload, error) {
	env := &cb.Envelope{}
	if err := unmarshal(data, env); err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	payload := &cb.Payload{}
	if err := unmarshal(env.GetPayload(), payload); err != nil {
		return nil, nil, fmt.Errorf("payload: %w", err)
	}
	chdr := &cb.ChannelHeader{}
	if err := unmarshal(payload.GetHeader().GetChannelHeader(), chdr); err != nil {
		return nil, nil, fmt.Errorf("channel header: %w", err)
	}
	return chdr, payload, nil
}

// actionEvent returns the chaincode event of one transaction action, or
// nil when it set none.
func actionEvent(action *pb.TransactionAction) (*pb.ChaincodeEvent, error) {
	ccp := &pb.ChaincodeActionPayload{}
	if err := unmarshal(action.GetPayload(), ccp); err != nil {
		return nil, fmt.Errorf("chaincode action payload: %w", err)
	}
	prp := &pb.ProposalResponsePayload{}
	if err := unmarshal(ccp.GetAction().GetProposalResponsePayload(), prp); err != nil {
		return nil, fmt.Errorf("proposal response payload: %w", err)
	}
	cca := &pb.ChaincodeAction{}
	if err := unmarshal(prp.GetExtension(), cca); err != nil {
		return nil, fmt.Errorf("chaincode action: %w", err)
	}
	if len(cca.GetEvents()) == 0 {
		return nil, nil
	}
	ev := &pb.ChaincodeEvent{}
	if err := unmarshal(cca.GetEvents(), ev); err != nil {
		return nil, fmt.Errorf("chaincode event: %w", err)
	}
	return ev, nil
}

// txValidationCode finds txID in b and returns its validation code.
func txValidationCode(b *cb.Block, txID string) (pb.TxValidationCode, bool) {
	codes := txFilter(b)
	for i, data := range b.GetData().GetData() {
		chdr, _, err := envelopeHeader(data)
		if err != nil || chdr.GetTxId() != txID {
			continue
		}
		if i >= len(codes) {
			return pb.TxValidationCode_NOT_VALIDATED, true
		}
		return pb.TxValidationCode(codes[i]), true
	}
	return 0, false
}

// unmarshal decodes b into m, a message of the (APIv1) protos the SDK uses.
func unmarshal(b []byte, m protoadapt.MessageV1) error {
	return proto.Unmarshal(b, protoadapt.MessageV2Of(m))
}
