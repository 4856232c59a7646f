package mongo

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/mongo/mongotest"
	"github.com/medshare/medshare/records"
)

// TestOutage stops the server under an open store: every method then fails
// with EUNAVAILABLE (the API's 503) within about the URI's server-selection
// timeout, and none with EINTERNAL. After a restart on the same address and
// files, the same store object works again and finds what it wrote before.
func TestOutage(t *testing.T) {
	srv := mongotest.StartServer(t)
	s := MustOpen(t, srv.URI()+"?serverSelectionTimeoutMS=1000", "medshare")
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	rec := func(id string) *records.Record {
		return &records.Record{ID: id, Version: 1, PatientRef: "ref-7", Category: "lab", Status: records.StatusPending,
			Ciphertext: []byte("sealed"), WrappedDEK: []byte("wrapped"), CreatedAt: now}
	}
	grant := func(id string) consent.Consent {
		return consent.Consent{ID: id, PatientRef: "ref-7", Grantee: consent.Grantee{Org: "hospital-b"}, Version: 1}
	}
	entry := func(id string) consent.AccessEntry {
		return consent.AccessEntry{ID: id, Time: now, PatientRef: "ref-7", Action: "read"}
	}
	if err := s.CreateRecord(ctx, rec("r-before")); err != nil {
		t.Fatalf("before the outage: %v", err)
	}
	if err := s.SaveAlias(ctx, "ref-7", "p-7"); err != nil {
		t.Fatalf("before the outage: %v", err)
	}
	srv.Stop()

	calls := []struct {
		note string
		call func(ctx context.Context) error
	}{
		{"Ping", s.Ping},
		{"CreateRecord", func(ctx context.Context) error { return s.CreateRecord(ctx, rec("r-during")) }},
		{"MarkAnchored", func(ctx context.Context) error { return s.MarkAnchored(ctx, "r-before", 1, "tx", 3) }},
		{"DeleteRecord", func(ctx context.Context) error { return s.DeleteRecord(ctx, "r-during", 1) }},
		{"Record", func(ctx context.Context) error { _, err := s.Record(ctx, "r-before"); return err }},
		{"Records", func(ctx context.Context) error {
			_, err := s.Records(ctx, records.RecordFilter{PatientRef: "ref-7"})
			return err
		}},
		{"PendingRecords", func(ctx context.Context) error { _, err := s.PendingRecords(ctx); return err }},
		{"SaveAlias", func(ctx context.Context) error { return s.SaveAlias(ctx, "ref-8", "p-8") }},
		{"Aliases", func(ctx context.Context) error { _, err := s.Aliases(ctx, []string{"ref-7"}); return err }},
		{"SaveConsent", func(ctx context.Context) error { return s.SaveConsent(ctx, grant("c-1")) }},
		{"StoredConsents", func(ctx context.Context) error {
			_, err := s.StoredConsents(ctx, consent.ConsentFilter{PatientRef: "ref-7"})
			return err
		}},
		{"SaveCheckpoint", func(ctx context.Context) error { return s.SaveCheckpoint(ctx, "consents", 3) }},
		{"Checkpoint", func(ctx context.Context) error { _, err := s.Checkpoint(ctx, "consents"); return err }},
		{"Enqueue", func(ctx context.Context) error { return s.Enqueue(ctx, entry("a-1")) }},
		{"PendingEntries", func(ctx context.Context) error { _, err := s.PendingEntries(ctx, 10); return err }},
		{"MarkEntriesAnchored", func(ctx context.Context) error { return s.MarkEntriesAnchored(ctx, []string{"a-1"}, "tx", 3) }},
		{"OutboxEntries", func(ctx context.Context) error { _, err := s.OutboxEntries(ctx, "ref-7", "", 10); return err }},
		{"ListPending", func(ctx context.Context) error { _, err := s.ListPending(ctx, "ref-7", "", 10); return err }},
	}
	// All at once: each waits out the server-selection timeout.
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() {
			start := time.Now()
			err := c.call(ctx)
			if got := consent.ErrorCode(err); got != consent.EUNAVAILABLE {
				t.Errorf("%s while down = %v (code %q), want %q", c.note, err, got, consent.EUNAVAILABLE)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("%s while down took %v", c.note, took)
			}
		})
	}
	wg.Wait()

	srv.Restart(t)
	r, err := s.Record(ctx, "r-before")
	if err != nil || r.ID != "r-before" {
		t.Fatalf("record written before the outage: %+v, %v", r, err)
	}
	if m, err := s.Aliases(ctx, []string{"ref-7"}); err != nil || m["ref-7"] != "p-7" {
		t.Fatalf("alias written before the outage: %v, %v", m, err)
	}
	for _, c := range calls {
		if err := c.call(ctx); err != nil {
			t.Errorf("%s after restart: %v", c.note, err)
		}
	}
}

// TestOutageUnderLoad stops the server while many operations queue for a
// small connection pool. The first network error clears the pool, and the
// operations waiting for a connection fail with the driver's unlabeled
// "connection pool was cleared" error, even after the driver's own retry:
// those too must be EUNAVAILABLE, not EINTERNAL (a 500).
func TestOutageUnderLoad(t *testing.T) {
	srv := mongotest.StartServer(t)
	s := MustOpen(t, srv.URI()+"?serverSelectionTimeoutMS=1000&maxPoolSize=2", "medshare")
	ctx, stop := context.WithCancel(t.Context())
	var (
		mu    sync.Mutex
		codes = map[string]int{}
		wrong []error
		wg    sync.WaitGroup
	)
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				var err error
				start := time.Now()
				if i%2 == 0 {
					_, err = s.Record(context.Background(), "r-none")
				} else {
					err = s.SaveAlias(context.Background(), fmt.Sprintf("ref-%d-%d", w, i), "p-1")
				}
				code := consent.ErrorCode(err)
				mu.Lock()
				codes[code]++
				if (code != "" && code != consent.ENOTFOUND && code != consent.EUNAVAILABLE) || time.Since(start) > 5*time.Second {
					wrong = append(wrong, fmt.Errorf("after %v: %w", time.Since(start), err))
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	srv.Stop()
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	t.Logf("outcomes by code: %v", codes)
	for _, err := range wrong {
		t.Error(err)
	}
	if codes[consent.EUNAVAILABLE] == 0 {
		t.Error("no operation saw the outage")
	}
}
