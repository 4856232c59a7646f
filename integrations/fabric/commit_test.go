package fabric

import (
	"context"
	"testing"
	"time"

	pb "github.com/hyperledger/fabric-protos-go/peer"
	"github.com/hyperledger/fabric-sdk-go/pkg/common/providers/fab"
)

func TestCommitAwait(t *testing.T) {
	committed := &fab.TxStatusEvent{TxID: "t", TxValidationCode: pb.TxValidationCode_VALID, BlockNumber: 9}
	tests := []struct {
		note   string
		event  bool // the event service delivers the status
		closed bool // the event service closes the channel
		polls  int  // polls before the peers know the tx; -1: never
		want   uint64
		err    bool
	}{
		{note: "the event comes first", event: true, polls: -1, want: 9},
		{note: "a late event is overtaken by polling the peers", polls: 2, want: 9},
		{note: "a closed event channel is an error", closed: true, polls: -1, err: true},
		{note: "neither before the deadline is an error", polls: -1, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.note, func(t *testing.T) {
			ch := make(chan *fab.TxStatusEvent, 1)
			if tt.event {
				ch <- committed
			}
			if tt.closed {
				close(ch)
			}
			calls := 0
			h := &commitHandler{poll: func(context.Context, string) (*fab.TxStatusEvent, bool) {
				calls++
				return committed, tt.polls >= 0 && calls > tt.polls
			}, after: 20 * time.Millisecond, every: 10 * time.Millisecond}
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			ev, err := h.await(ctx, "t", ch)
			if (err != nil) != tt.err {
				t.Fatalf("await: %v, want error %t", err, tt.err)
			}
			if !tt.err && ev.BlockNumber != tt.want {
				t.Errorf("block %d, want %d", ev.BlockNumber, tt.want)
			}
		})
	}
}
