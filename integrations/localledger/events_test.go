package localledger

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/medshare/medshare/consent"
)

func TestSubscribe(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		l := MustOpen(t, Options{})
		svc := consent.NewService(l)
		MustRegister(t, svc, "before") // committed before subscribing: not delivered
		events := l.Subscribe(ctx)
		var want []consent.Event
		for _, id := range []string{"a", "b", "c"} {
			org, rcpt, err := svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: id, Name: "Org", Type: consent.OrgLab})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, consent.Event{Op: consent.OpRegisterOrg, TxID: rcpt.TxID, Block: rcpt.Block,
				Time: testNow().Truncate(time.Microsecond), Payload: MustJSON(t, org)})
		}
		// A rejected tx publishes nothing.
		if _, _, err := svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: "a", Name: "Org", Type: consent.OrgLab}); err == nil {
			t.Fatal("duplicate registration succeeded")
		}
		var got []consent.Event
		for range want {
			got = append(got, <-events)
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b json.RawMessage) bool { return string(a) == string(b) })); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		select {
		case e := <-events:
			t.Errorf("unexpected event %+v", e)
		default:
		}
	})

	t.Run("ClosedWhenContextEnds", func(t *testing.T) {
		l := MustOpen(t, Options{})
		sctx, cancel := context.WithCancel(ctx)
		events := l.Subscribe(sctx)
		cancel()
		for range events { // ends only once the channel is closed
		}
	})

	t.Run("SlowSubscriberDropped", func(t *testing.T) {
		l := MustOpen(t, Options{})
		slow := l.Subscribe(ctx)
		const n = subscriberBuffer + 1
		var wg sync.WaitGroup
		var failed atomic.Int64
		work := make(chan int)
		for range 32 {
			wg.Go(func() {
				for i := range work {
					args := MustJSON(t, consent.RegisterOrgArgs{ID: fmt.Sprintf("org-%d", i), Name: "Org", Type: consent.OrgLab})
					if _, _, err := l.Submit(ctx, consent.OpRegisterOrg, args); err != nil {
						t.Errorf("submit %d: %v", i, err)
						failed.Add(1)
					}
				}
			})
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
		if failed.Load() > 0 { // fewer events than the buffer holds: draining would never end
			t.Fatalf("%d submits failed", failed.Load())
		}
		got := 0
		for range slow {
			got++
		}
		if got != subscriberBuffer {
			t.Errorf("slow subscriber got %d events before its channel closed, want %d", got, subscriberBuffer)
		}
		// The ledger kept committing regardless.
		orgs, err := consent.NewService(l).Orgs(ctx)
		if err != nil || len(orgs) != n {
			t.Errorf("Orgs = %d, %v; want %d", len(orgs), err, n)
		}
	})
}
