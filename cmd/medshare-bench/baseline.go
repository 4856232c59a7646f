package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/integrations/bolt"
	"github.com/medshare/medshare/records"
)

// baseline is the harness's bare server, the yardstick medshare is measured
// against. It serves over net/http (medshare serves over Fiber on
// fasthttp; the harness may not import Fiber, see cmd/medshare's
// dependency rules) from its own bbolt record store on the same disk as the
// node's data dir:
//
//	GET  /bare/{id}     (a) bare read: store lookup by id + AES-GCM open
//	GET  /floor/{id}    (b) durable floor: (a) + one fsync'd ~300-byte append
//	POST /upload/enc    upload: envelope-encrypt (records.Seal) + store
//	POST /upload/plain  the same upload with encryption switched off
//
// No authentication, policy, ledger or access log: only the I/O and crypto
// that no implementation of medshare can avoid.
type baseline struct {
	store *bolt.RecordStore
	ring  *records.LocalKeyRing
	refs  *consent.Pseudonymizer
	ids   []string
	url   string
	srv   *http.Server

	mu    sync.Mutex // orders appends to floor
	floor *os.File
	entry []byte // the log-entry-sized record appended per floor read
}

// startBaseline seeds a store under dir with n records from corp (the same
// contents the node holds) and serves it on a loopback port.
func startBaseline(ctx context.Context, dir string, corp *corpus, n int) (*baseline, error) {
	b := &baseline{}
	var err error
	key, pepper := make([]byte, 32), make([]byte, 32)
	rand.Read(key)
	rand.Read(pepper)
	if b.ring, err = records.NewLocalKeyRing(map[int][]byte{1: key}, 1); err != nil {
		return nil, err
	}
	if b.refs, err = consent.NewPseudonymizer(pepper); err != nil {
		return nil, err
	}
	if b.store, err = bolt.Open(filepath.Join(dir, "store", "records.db")); err != nil {
		return nil, err
	}
	if b.floor, err = os.OpenFile(filepath.Join(dir, "floor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, err
	}
	b.entry = floorEntry()
	for i := range n {
		cat, content := corp.record(i)
		r, err := b.newRecord(patientID(i/recordsPerPatient), cat, content, true)
		if err != nil {
			return nil, err
		}
		if err := b.store.CreateRecord(ctx, r); err != nil {
			return nil, err
		}
		b.ids = append(b.ids, r.ID)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bare/{id}", func(w http.ResponseWriter, r *http.Request) { b.read(w, r, false) })
	mux.HandleFunc("GET /floor/{id}", func(w http.ResponseWriter, r *http.Request) { b.read(w, r, true) })
	mux.HandleFunc("POST /upload/{mode}", b.upload)
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	b.url = "http://" + ln.Addr().String()
	go b.srv.Serve(ln)
	return b, nil
}

// floorEntry is a 300-byte stand-in for an access-log entry, newline ended.
func floorEntry() []byte {
	e := fmt.Appendf(nil, `{"id":"a-%s","time":%q,"action":"read","recordId":"r-xxxxxxxxxxxxxxxxxxxxxxxxxx","actorRef":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","org":"hospital-b","purpose":"TREAT","decision":"allow","policyDigest":"`,
		rand.Text(), time.Now().UTC().Format(time.RFC3339Nano))
	for len(e) < 297 {
		e = append(e, 'x')
	}
	return append(e, '"', '}', '\n')
}

// read serves (a), or (b) when durable is set.
func (b *baseline) read(w http.ResponseWriter, req *http.Request, durable bool) {
	r, err := b.store.Record(req.Context(), req.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	content, err := records.Open(b.ring, r, r.Hash)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if durable {
		if err := b.appendEntry(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Content-Type", r.ContentType)
	w.Write(content)
}

// appendEntry appends one entry and fsyncs it. Appends are ordered by a
// mutex; fsyncs of concurrent requests run outside it, so the kernel can
// serve several with one journal commit.
func (b *baseline) appendEntry() error {
	b.mu.Lock()
	_, err := b.floor.Write(b.entry)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return b.floor.Sync()
}

// uploadBody is medshare's upload body.
type uploadBody struct {
	Patient     string          `json:"patient"`
	Category    string          `json:"category"`
	ContentType string          `json:"contentType"`
	Content     json.RawMessage `json:"content"`
}

// upload stores a record, encrypted (mode "enc") or in clear ("plain").
// Both compute the salted content hash medshare anchors: only the
// encryption differs.
func (b *baseline) upload(w http.ResponseWriter, req *http.Request) {
	var body uploadBody
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 12<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || len(body.Content) == 0 {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r, err := b.newRecord(body.Patient, body.Category, body.Content, req.PathValue("mode") == "enc")
	if err == nil {
		err = b.store.CreateRecord(req.Context(), r)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"id": r.ID, "version": r.Version, "hash": r.Hash})
}

// newRecord builds an anchored-status record of content, sealed under a
// fresh DEK when encrypt is set, stored in clear otherwise.
func (b *baseline) newRecord(patient, category string, content []byte, encrypt bool) (*records.Record, error) {
	r := &records.Record{
		ID: records.NewID("r-"), Version: 1, Patient: patient, PatientRef: b.refs.PatientRef(patient),
		Category: category, ContentType: "application/fhir+json", Org: "hospital-a",
		CreatedAt: time.Now().UTC(), Status: records.StatusAnchored,
	}
	if encrypt {
		return r, records.Seal(b.ring, r, content)
	}
	r.Salt = make([]byte, 16)
	rand.Read(r.Salt)
	r.Ciphertext, r.Hash, r.Size = content, records.ContentHash(r.Salt, content), len(content)
	return r, nil
}

// close stops serving and closes the store.
func (b *baseline) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(b.srv.Shutdown(ctx), b.store.Close(), b.floor.Close())
}
