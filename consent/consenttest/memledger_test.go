package consenttest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/consent/consenttest"
)

func TestMemLedger(t *testing.T) {
	consenttest.Run(t, func(t *testing.T) consent.Ledger { return consenttest.NewMemLedger() })
}

func register(t *testing.T, l consent.Ledger, id string) consent.Receipt {
	t.Helper()
	args, _ := json.Marshal(consent.RegisterOrgArgs{ID: id, Name: "Org", Type: consent.OrgLab})
	_, rcpt, err := l.Submit(t.Context(), consent.OpRegisterOrg, args)
	if err != nil {
		t.Fatal(err)
	}
	return rcpt
}

func TestMemLedgerNow(t *testing.T) {
	// Transactions are stamped by the injected clock, in UTC.
	l := consenttest.NewMemLedger()
	defer l.Close()
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	l.Now = func() time.Time { return at }
	o, _, err := consent.NewService(l).RegisterOrg(t.Context(), consent.RegisterOrgArgs{ID: "o-1", Name: "O", Type: consent.OrgLab})
	if err != nil {
		t.Fatal(err)
	}
	if !o.CreatedAt.Equal(at) || o.CreatedAt.Location() != time.UTC {
		t.Errorf("createdAt = %v, want %v in UTC", o.CreatedAt, at)
	}
}

func TestMemLedgerSlowSubscriber(t *testing.T) {
	// A subscriber that never reads is dropped (its channel closed) rather
	// than stalling commits; a reading one keeps every event.
	l := consenttest.NewMemLedger()
	defer l.Close()
	slow := l.Subscribe(t.Context())
	fast := l.Subscribe(t.Context())
	done := make(chan int)
	go func() {
		n := 0
		for range fast {
			n++
		}
		done <- n
	}()
	const n = 300 // more than a subscriber's buffer
	for i := range n {
		register(t, l, fmt.Sprint("o-", i))
	}
	got := 0
	for range slow {
		got++
	}
	if got >= n {
		t.Errorf("slow subscriber got all %d events; want it dropped", got)
	}
	l.Close()
	if got := <-done; got != n {
		t.Errorf("reading subscriber got %d events, want %d", got, n)
	}
}

func TestMemLedgerClosed(t *testing.T) {
	// A closed ledger is unavailable, ends its subscriptions, and refuses
	// new ones with a closed channel.
	l := consenttest.NewMemLedger()
	ctx := t.Context()
	sub := l.Subscribe(ctx)
	rcpt := register(t, l, "o-1")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if ev, ok := <-sub; !ok || ev.TxID != rcpt.TxID {
		t.Errorf("first event = %+v, %v; want tx %q", ev, ok, rcpt.TxID)
	}
	if _, ok := <-sub; ok {
		t.Error("subscription open after Close")
	}
	if _, ok := <-l.Subscribe(ctx); ok {
		t.Error("Subscribe after Close delivered an event")
	}
	for name, err := range map[string]error{
		"Ping":     l.Ping(ctx),
		"Submit":   func() error { _, _, err := l.Submit(ctx, consent.OpRegisterOrg, []byte(`{}`)); return err }(),
		"Evaluate": func() error { _, err := l.Evaluate(ctx, consent.QueryListOrgs, []byte(`{}`)); return err }(),
	} {
		if code := consent.ErrorCode(err); code != consent.EUNAVAILABLE {
			t.Errorf("%s after Close: code %q (%v), want %q", name, code, err, consent.EUNAVAILABLE)
		}
	}
}

func TestMemLedgerCanceled(t *testing.T) {
	// A done context is refused before anything is applied.
	l := consenttest.NewMemLedger()
	defer l.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	args, _ := json.Marshal(consent.RegisterOrgArgs{ID: "o-1", Name: "O", Type: consent.OrgLab})
	if _, _, err := l.Submit(ctx, consent.OpRegisterOrg, args); consent.ErrorCode(err) != consent.EUNAVAILABLE {
		t.Errorf("Submit with canceled ctx: %v", err)
	}
	if _, err := consent.NewService(l).Org(t.Context(), "o-1"); consent.ErrorCode(err) != consent.ENOTFOUND {
		t.Errorf("org after canceled submit: %v", err)
	}
}

func ExampleNewMemLedger() {
	l := consenttest.NewMemLedger()
	defer l.Close()
	svc := consent.NewService(l)
	ctx := context.Background()
	_, rcpt, err := svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: "hosp-1", Name: "General", Type: consent.OrgHospital})
	fmt.Println(rcpt.Block, err)
	_, _, err = svc.RegisterOrg(ctx, consent.RegisterOrgArgs{ID: "hosp-1", Name: "Again", Type: consent.OrgHospital})
	fmt.Println(consent.ErrorCode(err))
	// Output:
	// 1 <nil>
	// conflict
}
