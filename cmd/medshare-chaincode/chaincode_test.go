package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hyperledger/fabric-protos-go/msp"
	"github.com/medshare/medshare/consent"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// ref returns a well-formed pseudonym for name.
func ref(name string) string {
	h := sha256.Sum256([]byte(name))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// mustOK invokes op and fails the test unless it succeeds; it returns the payload.
func mustOK(tb testing.TB, s *fakeStub, txID, op, arg string) []byte {
	tb.Helper()
	res := s.invoke(Chaincode{}, txID, op, arg)
	if res.Status != 200 {
		tb.Fatalf("%s: status %d: %s", op, res.Status, res.Message)
	}
	if s.open != 0 {
		tb.Fatalf("%s left %d range iterators open", op, s.open)
	}
	return res.Payload
}

// TestInvoke runs register, grant, query and revoke through the host and
// checks results, persisted state and the one event per committed change.
func TestInvoke(t *testing.T) {
	s := newFakeStub()
	s.txTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	patient := ref("p-7")

	mustOK(t, s, "tx1", consent.OpRegisterOrg, `{"id":"hospital-b","name":"Hospital B","type":"hospital"}`)
	grant := `{"id":"c-1","patientRef":"` + patient + `","grantee":{"org":"hospital-b"},"categories":["lab"],"purposes":["TREAT"]}`
	mustOK(t, s, "tx2", consent.OpGrantConsent, grant)

	var orgs []consent.Org
	if err := json.Unmarshal(mustOK(t, s, "q1", consent.QueryListOrgs, `{}`), &orgs); err != nil || len(orgs) != 1 || orgs[0].ID != "hospital-b" {
		t.Fatalf("ListOrgs = %+v, %v; want hospital-b", orgs, err)
	}
	// The patient index holds empty values, which Fabric would delete.
	var list []consent.Consent
	if err := json.Unmarshal(mustOK(t, s, "q2", consent.QueryListConsents, `{"patientRef":"`+patient+`"}`), &list); err != nil || len(list) != 1 || list[0].ID != "c-1" {
		t.Fatalf("ListConsents by patient = %+v, %v; want c-1", list, err)
	}
	if list[0].Tx != "tx2" || !list[0].CreatedAt.Equal(time.Date(2025, 1, 2, 3, 4, 7, 0, time.UTC)) {
		t.Errorf("consent tx %q at %v; want tx2 at the stub's timestamp", list[0].Tx, list[0].CreatedAt)
	}

	var revoked consent.Consent
	if err := json.Unmarshal(mustOK(t, s, "tx3", consent.OpRevokeConsent, `{"id":"c-1","by":"`+patient+`"}`), &revoked); err != nil || revoked.Status != consent.StatusRevoked {
		t.Fatalf("RevokeConsent = %+v, %v; want revoked", revoked, err)
	}
	var got consent.Consent
	if err := json.Unmarshal(mustOK(t, s, "q3", consent.QueryGetConsent, `{"id":"c-1"}`), &got); err != nil || got.Status != consent.StatusRevoked || got.Version != 2 {
		t.Fatalf("GetConsent = %+v, %v; want revoked version 2", got, err)
	}

	var names []string
	for _, e := range s.events {
		names = append(names, e.EventName)
	}
	if want := "RegisterOrg,GrantConsent,RevokeConsent"; strings.Join(names, ",") != want {
		t.Errorf("events = %v; want %s", names, want)
	}
	if !json.Valid(s.events[2].Payload) || !strings.Contains(string(s.events[2].Payload), `"revoked"`) {
		t.Errorf("revoke event payload = %s; want the revoked consent", s.events[2].Payload)
	}
}

// TestInvokeErrors checks that failures come back as {"code","message"}
// carrying the consent error code, and emit no event.
func TestInvokeErrors(t *testing.T) {
	for _, tc := range []struct {
		note, op, arg, code string
	}{
		{"unknown org", consent.QueryGetOrg, `{"id":"nobody"}`, consent.ENOTFOUND},
		{"duplicate org", consent.OpRegisterOrg, `{"id":"h","name":"H","type":"hospital"}`, consent.ECONFLICT},
		{"unknown operation", "Steal", `{}`, consent.EINVALID},
		{"malformed JSON", consent.OpRegisterOrg, `{"id":`, consent.EINVALID},
		{"revoke by someone else", consent.OpRevokeConsent, `{"id":"c-1","by":"` + ref("mallory") + `"}`, consent.EFORBIDDEN},
	} {
		t.Run(tc.note, func(t *testing.T) {
			s := newFakeStub()
			mustOK(t, s, "tx1", consent.OpRegisterOrg, `{"id":"h","name":"H","type":"hospital"}`)
			mustOK(t, s, "tx2", consent.OpGrantConsent, `{"id":"c-1","patientRef":"`+ref("p")+`","grantee":{"org":"h"},"categories":["lab"],"purposes":["TREAT"]}`)
			events := len(s.events)
			res := s.invoke(Chaincode{}, "tx3", tc.op, tc.arg)
			var p ErrorPayload
			if err := json.Unmarshal([]byte(res.Message), &p); err != nil {
				t.Fatalf("status %d, message %q is not an error payload: %v", res.Status, res.Message, err)
			}
			if res.Status != 500 || p.Code != tc.code || p.Message == "" {
				t.Errorf("status %d, payload %+v; want 500 with code %s", res.Status, p, tc.code)
			}
			if len(s.events) != events {
				t.Errorf("a failed %s emitted an event", tc.op)
			}
		})
	}
}

// TestInvokeArgCount rejects calls without exactly one JSON argument.
func TestInvokeArgCount(t *testing.T) {
	s := newFakeStub()
	s.args = [][]byte{[]byte(consent.QueryListOrgs)}
	res := Chaincode{}.Invoke(s)
	if res.Status != 500 || !strings.Contains(res.Message, `"code":"invalid"`) {
		t.Errorf("Invoke with no argument = %d %q; want an invalid error", res.Status, res.Message)
	}
}

// TestStateCreator decodes the submitter's MSP id from its serialized identity.
func TestStateCreator(t *testing.T) {
	s := newFakeStub()
	raw, err := proto.Marshal(protoadapt.MessageV2Of(&msp.SerializedIdentity{Mspid: "HospitalMSP", IdBytes: []byte("cert")}))
	if err != nil {
		t.Fatal(err)
	}
	s.creator = raw
	if got := (State{Stub: s}).Creator(); got != "HospitalMSP" {
		t.Errorf("Creator() = %q; want HospitalMSP", got)
	}
}

// TestStateRange checks order, the [start, end) bounds, early stop and that
// the iterator is closed on every path.
func TestStateRange(t *testing.T) {
	s := newFakeStub()
	st := State{Stub: s}
	for _, k := range []string{"a/3", "a/1", "b/1", "a/2"} {
		if err := st.Put(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	err := st.Range("a/", "a/\x7f", func(k string, v []byte) error {
		keys = append(keys, k)
		if k == "a/2" {
			return consent.ErrStopRange
		}
		return nil
	})
	if err != nil || strings.Join(keys, ",") != "a/1,a/2" || s.open != 0 {
		t.Errorf("Range = %v, %v, %d open; want a/1,a/2, nil, 0 open", keys, err, s.open)
	}
	boom := errors.New("boom")
	if err := st.Range("a/", "b/", func(string, []byte) error { return boom }); !errors.Is(err, boom) || s.open != 0 {
		t.Errorf("Range error = %v, %d open; want boom, 0 open", err, s.open)
	}
}

// TestStateEmptyValue round-trips an empty value, which Fabric would
// otherwise turn into a delete.
func TestStateEmptyValue(t *testing.T) {
	st := State{Stub: newFakeStub()}
	if err := st.Put("k", []byte{}); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Get("k"); err != nil || v == nil || len(v) != 0 {
		t.Errorf("Get after Put(empty) = %q, %v; want a present empty value", v, err)
	}
	if v, _ := st.Get("missing"); v != nil {
		t.Errorf("Get(missing) = %q; want nil", v)
	}
}
