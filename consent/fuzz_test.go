package consent_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"

	"github.com/medshare/medshare/consent"
)

// FuzzApply feeds arbitrary arguments to every operation and query on a
// state holding orgs, a consent, an anchor and an access entry. The contract
// must never panic; it must answer valid JSON or a domain error that is not
// EINTERNAL (MemState never fails, so EINTERNAL would mean bad input slipped
// past validation); and it must be deterministic.
func FuzzApply(f *testing.F) {
	names := append(append([]string{}, ops...), queries...)
	names = append(names, "Bogus")
	for i, op := range names {
		if args, ok := validArgs()[op]; ok {
			b, err := json.Marshal(args)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
		}
	}
	f.Add(uint8(0), []byte(`{}}`))
	f.Fuzz(func(t *testing.T, opIndex uint8, args []byte) {
		op := names[int(opIndex)%len(names)]
		w1, w2 := seeded(t), seeded(t)
		out, err := w1.apply(op, args)
		if err != nil {
			if out != nil {
				t.Errorf("%s: result %q alongside error %v", op, out, err)
			}
			if code := consent.ErrorCode(err); code == consent.EINTERNAL || code == "" {
				t.Errorf("%s(%q): error %v has code %q", op, args, err, code)
			}
		} else if !json.Valid(out) {
			t.Errorf("%s(%q): result is not JSON: %q", op, args, out)
		}
		out2, err2 := w2.apply(op, args)
		if !bytes.Equal(out, out2) || consent.ErrorCode(err) != consent.ErrorCode(err2) {
			t.Errorf("%s(%q): not deterministic: %q/%v then %q/%v", op, args, out, err, out2, err2)
		}
		if !maps.EqualFunc(w1.st.Data, w2.st.Data, bytes.Equal) {
			t.Errorf("%s(%q): not deterministic: states differ", op, args)
		}
	})
}
