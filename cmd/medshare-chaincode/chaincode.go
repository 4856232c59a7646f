package main

import (
	"encoding/json"
	"log"

	"github.com/hyperledger/fabric-chaincode-go/shim"
	pb "github.com/hyperledger/fabric-protos-go/peer"
	"github.com/medshare/medshare/consent"
)

// Chaincode hosts the consent contract. The function name is the contract
// operation and the single argument its JSON arguments: {"Args":[op, json]}.
type Chaincode struct{}

var _ shim.Chaincode = Chaincode{}

// ErrorPayload is the message of a failed response: the consent error code
// and its human message, so clients can rebuild the domain error.
type ErrorPayload struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Init does nothing: the contract needs no initialisation transaction.
func (Chaincode) Init(shim.ChaincodeStubInterface) pb.Response { return shim.Success(nil) }

// Invoke runs one contract operation. Queries run consent.Query; everything
// else runs consent.Apply and, on success, emits one chaincode event named
// after the operation carrying the result.
func (Chaincode) Invoke(stub shim.ChaincodeStubInterface) pb.Response {
	args := stub.GetArgs()
	if len(args) != 2 {
		return errorResponse(consent.Errorf(consent.EINVALID, "want an operation and one JSON argument, got %d arguments", len(args)))
	}
	op, st := string(args[0]), State{Stub: stub}
	if consent.IsQuery(op) {
		out, err := consent.Query(st, op, args[1])
		if err != nil {
			return errorResponse(err)
		}
		return shim.Success(out)
	}
	out, err := consent.Apply(st, op, args[1])
	if err != nil {
		return errorResponse(err)
	}
	if err := stub.SetEvent(op, out); err != nil {
		return errorResponse(consent.WrapError(consent.EINTERNAL, err, "set event"))
	}
	return shim.Success(out)
}

// errorResponse encodes err as an ErrorPayload. Causes of internal errors are
// logged here and never sent to clients.
func errorResponse(err error) pb.Response {
	p := ErrorPayload{Code: consent.ErrorCode(err), Message: consent.ErrorMessage(err)}
	if p.Code == consent.EINTERNAL {
		log.Printf("internal error: %v", err)
	}
	b, _ := json.Marshal(p) // two strings always encode
	return shim.Error(string(b))
}
