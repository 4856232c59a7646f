package fabric

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	pb "github.com/hyperledger/fabric-protos-go/peer"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/errors/multi"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/errors/status"
	pkgerrors "github.com/pkg/errors"
	"google.golang.org/grpc/codes"

	"github.com/medshare/medshare/consent"
)

// failure is one failed attempt, classified: the domain error to report and
// whether another attempt may succeed. The SDK's text stays in err.
type failure struct {
	err   *consent.Error
	retry bool
}

// knownCodes are the codes a chaincode error may carry; anything else is
// reported as EINTERNAL.
var knownCodes = map[string]bool{
	consent.EINVALID: true, consent.EUNAUTHORIZED: true, consent.EFORBIDDEN: true,
	consent.ENOTFOUND: true, consent.ECONFLICT: true, consent.ETOOLARGE: true,
	consent.EINTEGRITY: true, consent.EUNAVAILABLE: true, consent.EINTERNAL: true,
}

// chaincodeError extracts the contract error the chaincode returned
// ({"code":…,"message":…} as the message of shim.Error) from an SDK error,
// however the SDK wrapped it (one endorser's status, several endorsers'
// multi.Errors, pkg/errors context).
func chaincodeError(err error) (*consent.Error, bool) {
	if err == nil {
		return nil, false
	}
	if s, ok := status.FromError(err); ok {
		if s.Group == status.ChaincodeStatus || s.Group == status.EndorserServerStatus {
			if ce, ok := parseChaincodeMessage(s.Message); ok {
				return ce, true
			}
		}
		for _, d := range s.Details {
			if de, ok := d.(error); ok && de != err {
				if ce, ok := chaincodeError(de); ok {
					return ce, true
				}
			}
		}
	}
	// Whatever the wrapping, the chaincode's JSON appears verbatim in the text.
	return parseChaincodeMessage(err.Error())
}

// parseChaincodeMessage decodes the first {"code":…} object in msg.
func parseChaincodeMessage(msg string) (*consent.Error, bool) {
	i := strings.Index(msg, `{"code":`)
	if i < 0 {
		return nil, false
	}
	var p struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	// A Decoder reads exactly one value and ignores what follows it.
	if err := json.NewDecoder(strings.NewReader(msg[i:])).Decode(&p); err != nil || p.Code == "" {
		return nil, false
	}
	if !knownCodes[p.Code] {
		return consent.Errorf(consent.EINTERNAL, "chaincode returned unknown error code %q", p.Code), true
	}
	if p.Message == "" {
		p.Message = p.Code
	}
	return &consent.Error{Code: p.Code, Message: p.Message}, true
}

// validationFailure maps a transaction's validation code at commit. Read
// conflicts mean a concurrent transaction changed what this one read: the
// transaction had no effect and a fresh attempt may succeed.
func validationFailure(code pb.TxValidationCode, cause error) failure {
	switch code {
	case pb.TxValidationCode_MVCC_READ_CONFLICT, pb.TxValidationCode_PHANTOM_READ_CONFLICT:
		return failure{consent.WrapError(consent.ECONFLICT, cause,
			"transaction conflicted with a concurrent one (%s); retry", code), true}
	}
	return failure{consent.WrapError(consent.EINTERNAL, cause, "transaction invalidated at commit: %s", code), false}
}

// unavailable reports that the network could not serve an attempt.
func unavailable(cause error, retry bool) failure {
	return failure{consent.WrapError(consent.EUNAVAILABLE, cause, "fabric network unavailable"), retry}
}

// transientText are fragments of SDK and gRPC error texts (which often carry
// no status) that mean a peer, orderer or discovery could not be reached or
// could not yet plan an endorsement, as while a peer restarts.
var transientText = []string{
	"connection refused", "connection failed", "transport is closing", "error reading from server",
	"context deadline exceeded", "deadline exceeded", "timed out", "timeout",
	"no peers", "failed to get endorsing peers", "no endorsement combination",
	"error getting channel response", "discovery", "unavailable", "connection is in transient_failure",
	"event client is closed", "not connected", "eof",
}

// classify maps an error from the SDK to a domain error and says whether
// the attempt may be retried. Chaincode errors come back with their own
// code and are final; read conflicts and connectivity problems are
// transient; everything else is EINTERNAL with the SDK text kept in Err.
func classify(err error) failure {
	if ce, ok := chaincodeError(err); ok {
		ce.Err = err
		return failure{ce, false}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return unavailable(err, false)
	}
	if s, ok := status.FromError(err); ok {
		if f, ok := classifyStatus(s, err); ok {
			return f
		}
	}
	if m, ok := pkgerrors.Cause(err).(multi.Errors); ok {
		return classifyMulti(m, err)
	}
	text := strings.ToLower(err.Error())
	for _, t := range transientText {
		if strings.Contains(text, t) {
			return unavailable(err, true)
		}
	}
	return failure{consent.WrapError(consent.EINTERNAL, err, "fabric request failed"), false}
}

// classifyMulti classifies the errors of several endorsers: the most
// specific wins (a chaincode error, then a transient failure).
func classifyMulti(m multi.Errors, whole error) failure {
	var first *failure
	for _, e := range m {
		f := classify(e)
		f.err.Err = whole
		if f.err.Code != consent.EUNAVAILABLE && f.err.Code != consent.EINTERNAL {
			return f
		}
		if first == nil || (f.retry && !first.retry) {
			first = &f
		}
	}
	if first == nil {
		return failure{consent.WrapError(consent.EINTERNAL, whole, "fabric request failed"), false}
	}
	return *first
}

// classifyStatus maps an SDK status; ok is false when the status says
// nothing definite and the text should decide.
func classifyStatus(s *status.Status, err error) (failure, bool) {
	code := s.Code
	switch s.Group {
	case status.EventServerStatus:
		return validationFailure(pb.TxValidationCode(code), err), true
	case status.EndorserClientStatus:
		switch status.Code(code) {
		case status.EndorsementMismatch:
			// Peers at different heights endorse differently; a new attempt
			// usually agrees.
			return failure{consent.WrapError(consent.EINTERNAL, err, "endorsements do not match (%s)", status.EndorsementMismatch), true}, true
		case status.ConnectionFailed, status.ChaincodeNameNotFound, status.Timeout, status.NoPeersFound, status.GenericTransient:
			return unavailable(err, true), true
		}
	case status.OrdererClientStatus, status.ClientStatus, status.DiscoveryServerStatus:
		switch status.Code(code) {
		case status.ConnectionFailed, status.Timeout, status.NoPeersFound, status.GenericTransient, status.QueryEndorsers:
			return unavailable(err, true), true
		case status.MultipleErrors:
			var errs multi.Errors
			for _, d := range s.Details {
				if de, ok := d.(error); ok {
					errs = append(errs, de)
				}
			}
			if len(errs) > 0 {
				return classifyMulti(errs, err), true
			}
		}
	case status.GRPCTransportStatus:
		switch codes.Code(code) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted, codes.ResourceExhausted:
			return unavailable(err, true), true
		}
	case status.EndorserServerStatus, status.OrdererServerStatus:
		// 503: the service is up but not ready (e.g. no raft leader yet).
		if code == 503 {
			return unavailable(err, true), true
		}
	case status.ChaincodeStatus:
		// A chaincode error without our JSON comes from the peer, not the
		// contract: most often it cannot reach the chaincode service.
		return unavailable(err, true), true
	}
	return failure{}, false
}

// describe is a short, SDK-free description of a failure for logs.
func (f failure) describe() string {
	return fmt.Sprintf("%s: %s (retry %t)", f.err.Code, f.err.Message, f.retry)
}
