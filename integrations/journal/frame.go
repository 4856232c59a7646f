package journal

// The frame format: encoding, decoding, scanning and torn tails.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/medshare/medshare/consent"
)

// maxFrame bounds a frame's payload; an access entry is well under 4 KiB,
// an anchored frame lists at most one batch of ids.
const maxFrame = 16 << 20

// frameHeader is the length and checksum in front of each payload.
const frameHeader = 8

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// frame is a payload.
type frame struct {
	T        string               `json:"t"` // "e" entry, "a" anchored
	Entry    *consent.AccessEntry `json:"e,omitempty"`
	Enqueued time.Time            `json:"q,omitzero"`
	IDs      []string             `json:"ids,omitempty"`
	Tx       string               `json:"tx,omitempty"`
	Block    uint64               `json:"b,omitempty"`
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 })
}

// scan calls fn with each frame of data, in order, and returns the length
// of the good prefix: less than len(data) when a torn tail follows it.
// EINTEGRITY for a bad frame followed by more data, or an undecodable one.
func scan(path string, data []byte, fn func(*frame)) (int, error) {
	off := 0
	for off < len(data) {
		payload, n, err := decodeFrame(data[off:])
		if err != nil {
			if !torn(data[off:]) {
				return off, consent.WrapError(consent.EINTEGRITY, err, "journal %s is corrupt at offset %d", path, off)
			}
			return off, nil
		}
		var fr frame
		if err := json.Unmarshal(payload, &fr); err != nil {
			return off, consent.WrapError(consent.EINTEGRITY, err, "journal %s: undecodable frame at offset %d", path, off)
		}
		if (fr.T != "e" || fr.Entry == nil) && fr.T != "a" {
			return off, consent.Errorf(consent.EINTEGRITY, "journal %s: unknown frame %q at offset %d", path, fr.T, off)
		}
		fn(&fr)
		off += n
	}
	return off, nil
}

// decodeFrame returns the payload of the frame at the start of b and the
// frame's length.
func decodeFrame(b []byte) ([]byte, int, error) {
	if len(b) < frameHeader {
		return nil, 0, errors.New("short frame header")
	}
	n := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if n == 0 || n > maxFrame {
		return nil, 0, fmt.Errorf("frame length %d out of range", n)
	}
	if uint64(len(b)-frameHeader) < uint64(n) {
		return nil, 0, errors.New("frame cut short")
	}
	payload := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(payload, crcTable) != sum {
		return nil, 0, errors.New("frame checksum mismatch")
	}
	return payload, frameHeader + int(n), nil
}

// torn reports whether rest, which starts with a bad frame, can be the
// remains of one unacknowledged write: nothing but zeros (preallocated
// space) lies beyond tornWindow bytes from its start, or beyond the frame
// its header claims when that is longer (a large frame is written alone).
func torn(rest []byte) bool {
	extent := uint64(tornWindow)
	if len(rest) >= frameHeader {
		if n := binary.LittleEndian.Uint32(rest); n > 0 && n <= maxFrame {
			extent = max(extent, uint64(n)+frameHeader)
		}
	}
	return extent >= uint64(len(rest)) || allZero(rest[extent:])
}

// encodeFrame returns fr as a frame.
func encodeFrame(fr *frame) ([]byte, error) {
	payload, err := json.Marshal(fr)
	if err != nil {
		return nil, consent.WrapError(consent.EINTERNAL, err, "encode journal frame")
	}
	if len(payload) > maxFrame {
		return nil, consent.Errorf(consent.ETOOLARGE, "journal frame of %d bytes is too large", len(payload))
	}
	b := make([]byte, frameHeader, frameHeader+len(payload))
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, crcTable))
	return append(b, payload...), nil
}
