package fabric

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go/common"
	pb "github.com/hyperledger/fabric-protos-go/peer"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/errors/multi"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/errors/status"
	pkgerrors "github.com/pkg/errors"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/medshare/medshare/consent"
)

// ccErr is a chaincode failure as one endorser reports it to the SDK.
func ccErr(msg string) error {
	return pkgerrors.Wrapf(status.New(status.ChaincodeStatus, 500, msg, nil), "Transaction processing for endorser [127.0.0.1:7051]")
}

func TestClassify(t *testing.T) {
	conflict := `{"code":"conflict","message":"organization \"x\" already exists"}`
	tests := []struct {
		note    string
		err     error
		code    string
		retry   bool
		message string // substring of the domain message; "" to skip
	}{
		{"a chaincode error keeps its code and message",
			ccErr(conflict), consent.ECONFLICT, false, `organization "x" already exists`},
		{"both endorsers' errors, as the SDK joins them, still give the contract's code",
			multi.Errors{ccErr(`{"code":"forbidden","message":"not yours"}`), ccErr(`{"code":"forbidden","message":"not yours"}`)}, consent.EFORBIDDEN, false, "not yours"},
		{"a chaincode error inside a multiple-errors status",
			status.New(status.ClientStatus, status.MultipleErrors.ToInt32(), "Multiple errors occurred", []any{ccErr(`{"code":"not_found","message":"nope"}`)}), consent.ENOTFOUND, false, "nope"},
		{"the chaincode's JSON found in plain text",
			errors.New(`endorsement failed: Description: {"code":"invalid","message":"bad args"} - more`), consent.EINVALID, false, "bad args"},
		{"an unknown code from the chaincode is internal",
			ccErr(`{"code":"teapot","message":"short and stout"}`), consent.EINTERNAL, false, "teapot"},
		{"a chaincode failure without our JSON means the chaincode is unreachable",
			ccErr("error in simulation: could not launch chaincode medshare: connection refused"), consent.EUNAVAILABLE, true, "unavailable"},
		{"a read conflict is retried, then a conflict",
			status.New(status.EventServerStatus, int32(pb.TxValidationCode_MVCC_READ_CONFLICT), "received invalid transaction", nil), consent.ECONFLICT, true, "MVCC_READ_CONFLICT"},
		{"a phantom read is retried, then a conflict",
			status.New(status.EventServerStatus, int32(pb.TxValidationCode_PHANTOM_READ_CONFLICT), "received invalid transaction", nil), consent.ECONFLICT, true, "PHANTOM_READ_CONFLICT"},
		{"another validation code is internal and named",
			status.New(status.EventServerStatus, int32(pb.TxValidationCode_ENDORSEMENT_POLICY_FAILURE), "received invalid transaction", nil), consent.EINTERNAL, false, "ENDORSEMENT_POLICY_FAILURE"},
		{"an endorsement mismatch is retried, then internal and named",
			pkgerrors.WithMessage(status.New(status.EndorserClientStatus, status.EndorsementMismatch.ToInt32(), "ProposalResponsePayloads do not match", nil), "endorsement validation failed"), consent.EINTERNAL, true, "ENDORSEMENT_MISMATCH"},
		{"a peer that cannot be dialled is unavailable",
			pkgerrors.Wrap(status.New(status.EndorserClientStatus, status.ConnectionFailed.ToInt32(), "dialing connection on target [127.0.0.1:7051]: connection is in TRANSIENT_FAILURE", nil), "Transaction processing for endorser"), consent.EUNAVAILABLE, true, "unavailable"},
		{"an orderer that cannot be dialled is unavailable",
			status.New(status.OrdererClientStatus, status.ConnectionFailed.ToInt32(), "dial 127.0.0.1:7050", nil), consent.EUNAVAILABLE, true, ""},
		{"gRPC Unavailable is unavailable",
			status.NewFromGRPCStatus(grpcstatus.New(codes.Unavailable, "connection refused")), consent.EUNAVAILABLE, true, ""},
		{"an SDK timeout is unavailable",
			status.New(status.ClientStatus, status.Timeout.ToInt32(), "request timed out or been cancelled", nil), consent.EUNAVAILABLE, true, ""},
		{"no endorsement plan (a peer restarting) is unavailable",
			errors.New("Failed to get endorsing peers: error getting channel response for channel [medshare]: no endorsement combination can be satisfied"), consent.EUNAVAILABLE, true, ""},
		{"an orderer without a leader is unavailable",
			status.New(status.OrdererServerStatus, int32(common.Status_SERVICE_UNAVAILABLE), "no Raft leader", nil), consent.EUNAVAILABLE, true, ""},
		{"the caller's deadline is unavailable, not retried",
			context.DeadlineExceeded, consent.EUNAVAILABLE, false, ""},
		{"anything else is internal, without the SDK's text",
			errors.New("access denied: channel [medshare] creator org [Mallory]"), consent.EINTERNAL, false, "fabric request failed"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.note, " ", "_"), func(t *testing.T) {
			f := classify(tt.err)
			if f.err.Code != tt.code || f.retry != tt.retry {
				t.Errorf("classify = %s, want code %s, retry %t", f.describe(), tt.code, tt.retry)
			}
			if !strings.Contains(f.err.Message, tt.message) {
				t.Errorf("message %q lacks %q", f.err.Message, tt.message)
			}
			if f.err.Err == nil {
				t.Errorf("the SDK error is not kept as the cause")
			}
			// People never see the SDK's wording.
			for _, leak := range []string{"Description", "endorser [", "TRANSIENT_FAILURE", "Mallory", "Raft"} {
				if strings.Contains(f.err.Message, leak) {
					t.Errorf("message %q leaks %q", f.err.Message, leak)
				}
			}
		})
	}
}

func TestParseChaincodeMessage(t *testing.T) {
	tests := []struct {
		note string
		msg  string
		ok   bool
		code string
		text string
	}{
		{"the whole message", `{"code":"conflict","message":"taken"}`, true, consent.ECONFLICT, "taken"},
		{"embedded, with text after it", `x: {"code":"invalid","message":"a } brace"} - y`, true, consent.EINVALID, "a } brace"},
		{"a missing message falls back to the code", `{"code":"not_found"}`, true, consent.ENOTFOUND, "not_found"},
		{"no JSON", `chaincode exploded`, false, "", ""},
		{"broken JSON", `{"code":"conflict","message":`, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.note, " ", "_"), func(t *testing.T) {
			e, ok := parseChaincodeMessage(tt.msg)
			if ok != tt.ok {
				t.Fatalf("ok = %t, want %t", ok, tt.ok)
			}
			if ok && (e.Code != tt.code || e.Message != tt.text) {
				t.Errorf("got %s / %q, want %s / %q", e.Code, e.Message, tt.code, tt.text)
			}
		})
	}
}

func TestValidationFailure(t *testing.T) {
	for code := range pb.TxValidationCode_name {
		c := pb.TxValidationCode(code)
		if c == pb.TxValidationCode_VALID {
			continue
		}
		f := validationFailure(c, errors.New("cause"))
		conflict := c == pb.TxValidationCode_MVCC_READ_CONFLICT || c == pb.TxValidationCode_PHANTOM_READ_CONFLICT
		switch {
		case conflict && (f.err.Code != consent.ECONFLICT || !f.retry):
			t.Errorf("%s: %s, want a retried conflict", c, f.describe())
		case !conflict && (f.err.Code != consent.EINTERNAL || f.retry):
			t.Errorf("%s: %s, want a final internal error", c, f.describe())
		}
		if !strings.Contains(f.err.Message, c.String()) {
			t.Errorf("%s: message %q does not name the code", c, f.err.Message)
		}
	}
}
