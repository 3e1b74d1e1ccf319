package spool

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// The segment file format (version 1):
//
//	segment = magic record*
//	magic   = "CPSPOOL1"                         8 bytes
//	record  = length:u32 crc:u32 body             big endian
//	body    = topicLen:u8 topic keyLen:u16 key value
//
// length counts the body bytes; crc is CRC-32C (Castagnoli) of the body. A
// record is either whole and checksummed or it is not a record: a crash in
// the middle of a write leaves a torn tail that Open cuts off.

const (
	segmentMagic = "CPSPOOL1"
	recordHeader = 8
	// MaxRecordBytes bounds one record's body: topic, key and value together.
	MaxRecordBytes = 256 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Message is one spooled event: the topic it belongs on, its partitioning
// key and its encoded bytes.
type Message struct {
	Topic string
	Key   []byte
	Value []byte
}

func (m *Message) bodyLen() int { return 1 + len(m.Topic) + 2 + len(m.Key) + len(m.Value) }

// appendRecord appends m's record encoding to dst.
func appendRecord(dst []byte, m *Message) ([]byte, error) {
	if len(m.Topic) == 0 || len(m.Topic) > 255 {
		return dst, fmt.Errorf("spool: topic must be 1..255 bytes, got %d", len(m.Topic))
	}
	if len(m.Key) > 0xffff {
		return dst, fmt.Errorf("spool: key must be at most 65535 bytes, got %d", len(m.Key))
	}
	n := m.bodyLen()
	if n > MaxRecordBytes {
		return dst, fmt.Errorf("%w: %d bytes exceeds %d", ErrTooLarge, n, MaxRecordBytes)
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = binary.BigEndian.AppendUint32(dst, 0) // checksum, filled in below
	body := len(dst)
	dst = append(dst, byte(len(m.Topic)))
	dst = append(dst, m.Topic...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(m.Key)))
	dst = append(dst, m.Key...)
	dst = append(dst, m.Value...)
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[body:], castagnoli))
	return dst, nil
}

// readRecord reads one record from r. It returns io.EOF at a clean end,
// io.ErrUnexpectedEOF for a torn tail and an ErrCorrupt error for bytes that
// are not a record. The returned message owns its slices.
func readRecord(r io.Reader, hdr *[recordHeader]byte) (Message, int, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Message{}, 0, err // io.EOF or io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 3 || n > MaxRecordBytes {
		return Message{}, 0, fmt.Errorf("%w: record length %d out of range", ErrCorrupt, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, 0, err
	}
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
		return Message{}, 0, fmt.Errorf("%w: record checksum mismatch", ErrCorrupt)
	}
	m, err := decodeBody(body)
	return m, recordHeader + int(n), err
}

func decodeBody(b []byte) (Message, error) {
	tl := int(b[0])
	if tl == 0 || 1+tl+2 > len(b) {
		return Message{}, fmt.Errorf("%w: topic length %d does not fit", ErrCorrupt, tl)
	}
	topic := string(b[1 : 1+tl])
	kl := int(binary.BigEndian.Uint16(b[1+tl:]))
	rest := b[1+tl+2:]
	if kl > len(rest) {
		return Message{}, fmt.Errorf("%w: key length %d does not fit", ErrCorrupt, kl)
	}
	return Message{Topic: topic, Key: rest[:kl:kl], Value: rest[kl:]}, nil
}
