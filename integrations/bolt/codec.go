package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/medshare/medshare/records"
)

// recordCodec is the first byte of every encoded record. Records are
// encoded in binary rather than JSON because ciphertext dominates their
// size and base64 would add a third to it.
const recordCodec = 1

// metaCodec is the first byte of every encoded record metadata: a record
// without its content (Ciphertext, WrappedDEK, Salt), as the listing
// indexes keep it.
const metaCodec = 2

// errCorrupt reports a value that does not decode.
var errCorrupt = errors.New("corrupt record encoding")

// encodeRecord returns r as: codec byte, then every field in declaration
// order; strings and byte slices length-prefixed (uvarint), byte slices
// with length+1 so nil survives; ints as varints; CreatedAt in
// time.MarshalBinary form.
func encodeRecord(r *records.Record) ([]byte, error) { return encode(r, recordCodec) }

// decodeRecord parses what encodeRecord wrote. The result shares no memory
// with b, which bbolt only lends for the life of a transaction.
func decodeRecord(b []byte) (*records.Record, error) { return decode(b, recordCodec) }

// encodeMeta returns r's metadata as: codec byte, then every field of
// Record but Ciphertext, WrappedDEK and Salt, in declaration order and
// encoded as encodeRecord encodes them.
func encodeMeta(r *records.Record) ([]byte, error) { return encode(r, metaCodec) }

// decodeMeta parses what encodeMeta wrote into a record whose Ciphertext,
// WrappedDEK and Salt are nil. The result shares no memory with b.
func decodeMeta(b []byte) (*records.Record, error) { return decode(b, metaCodec) }

// encode writes r under codec: recordCodec with its content, metaCodec
// without.
func encode(r *records.Record, codec byte) ([]byte, error) {
	at, err := r.CreatedAt.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode createdAt: %w", err)
	}
	content := codec == recordCodec
	e := encoder{b: make([]byte, 0, 192)}
	if content {
		e.b = make([]byte, 0, 128+len(r.Ciphertext)+len(r.WrappedDEK)+len(r.Salt))
	}
	e.b = append(e.b, codec)
	e.string(r.ID)
	e.int(int64(r.Version))
	e.string(r.Patient)
	e.string(r.PatientRef)
	e.string(r.Category)
	e.string(r.ContentType)
	e.string(r.Org)
	e.string(r.AuthorRef)
	e.bytes(at)
	e.string(r.Status)
	if content {
		e.bytes(r.Ciphertext)
		e.bytes(r.WrappedDEK)
	}
	e.int(int64(r.KEKVersion))
	if content {
		e.bytes(r.Salt)
	}
	e.string(r.Hash)
	e.int(int64(r.Size))
	e.string(r.AnchorTx)
	e.b = binary.AppendUvarint(e.b, r.AnchorBlock)
	return e.b, nil
}

// decode parses what encode wrote under codec.
func decode(b []byte, codec byte) (*records.Record, error) {
	if len(b) == 0 || b[0] != codec {
		return nil, errCorrupt
	}
	content := codec == recordCodec
	d := decoder{b: b[1:]}
	r := &records.Record{}
	r.ID = d.string()
	r.Version = d.int()
	r.Patient = d.string()
	r.PatientRef = d.string()
	r.Category = d.string()
	r.ContentType = d.string()
	r.Org = d.string()
	r.AuthorRef = d.string()
	at := d.bytes()
	r.Status = d.string()
	if content {
		r.Ciphertext = d.bytes()
		r.WrappedDEK = d.bytes()
	}
	r.KEKVersion = d.int()
	if content {
		r.Salt = d.bytes()
	}
	r.Hash = d.string()
	r.Size = d.int()
	r.AnchorTx = d.string()
	r.AnchorBlock = d.uvarint()
	if d.err != nil || len(d.b) != 0 {
		return nil, errCorrupt
	}
	if err := r.CreatedAt.UnmarshalBinary(at); err != nil {
		return nil, errCorrupt
	}
	return r, nil
}

// encoder appends fields to b.
type encoder struct{ b []byte }

func (e *encoder) string(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bytes(p []byte) {
	if p == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(p))+1)
	e.b = append(e.b, p...)
}

func (e *encoder) int(v int64) { e.b = binary.AppendVarint(e.b, v) }

// decoder consumes fields from b; after the first error every read returns
// a zero value and err stays set.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 || int64(int(v)) != v {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

// next returns the next n bytes, still pointing into b.
func (d *decoder) next(n uint64) []byte {
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string() string { return string(d.next(d.uvarint())) }

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	return bytes.Clone(d.next(n - 1))
}
