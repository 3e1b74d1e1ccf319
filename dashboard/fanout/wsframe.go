package fanout

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// The client process reads the server's WebSocket frames itself (RFC 6455
// section 5) instead of through a library: it is a measuring instrument,
// and a parser over one buffer per connection, without a reader, context
// or lock per message, leaves the CPU to the server it measures.

// Opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// frameParser splits the bytes a server sends into messages: text and
// binary messages whole (fragments joined), control frames (ping, pong,
// close) as they come, also between the fragments of a message. Bytes are
// read into space() and announced with filled(); next() then returns each
// complete message. A payload is valid until the next call to next or space.
type frameParser struct {
	buf  []byte // buf[r:w] is read and not yet parsed
	r, w int
	max  int // largest message accepted

	frag   []byte // payload of a fragmented message so far
	fragOp byte   // its opcode; 0 when no message is fragmented
	need   int    // bytes the incomplete frame at buf[r:] needs in all
}

// errProtocol is wrapped by every violation of RFC 6455 by the server.
var errProtocol = errors.New("websocket protocol violation")

func newFrameParser(size, max int) *frameParser {
	return &frameParser{buf: make([]byte, size), max: max}
}

// space returns the free part of the buffer to read into, first moving the
// unparsed bytes to its start and growing it if the incomplete frame does
// not fit. Payloads returned by next before are invalid afterwards.
func (p *frameParser) space() []byte {
	if p.r == p.w {
		p.r, p.w = 0, 0
	} else if p.r > 0 && (len(p.buf)-p.w < 512 || p.need > len(p.buf)-p.r) {
		p.w = copy(p.buf, p.buf[p.r:p.w])
		p.r = 0
	}
	if p.need > len(p.buf) || p.w == len(p.buf) {
		nb := make([]byte, max(p.need, 2*len(p.buf)))
		p.w = copy(nb, p.buf[p.r:p.w])
		p.r = 0
		p.buf = nb
	}
	return p.buf[p.w:]
}

// filled announces n bytes read into the slice space returned.
func (p *frameParser) filled(n int) { p.w += n }

// next returns the next complete message or control frame; ok is false
// when more bytes are needed. After an error the connection is unusable.
func (p *frameParser) next() (op byte, payload []byte, ok bool, err error) {
	for {
		b := p.buf[p.r:p.w]
		if len(b) < 2 {
			p.need = 2
			return 0, nil, false, nil
		}
		fin := b[0]&0x80 != 0
		if b[0]&0x70 != 0 {
			return 0, nil, false, fmt.Errorf("%w: reserved bits %#x set without an extension", errProtocol, b[0]&0x70)
		}
		fop := b[0] & 0x0f
		if b[1]&0x80 != 0 {
			return 0, nil, false, fmt.Errorf("%w: a server frame is masked", errProtocol)
		}
		hl, n := 2, uint64(b[1]&0x7f)
		switch n {
		case 126:
			hl = 4
		case 127:
			hl = 10
		}
		if len(b) < hl {
			p.need = hl
			return 0, nil, false, nil
		}
		switch hl {
		case 4:
			n = uint64(binary.BigEndian.Uint16(b[2:]))
			if n < 126 {
				return 0, nil, false, fmt.Errorf("%w: length %d not in its shortest form", errProtocol, n)
			}
		case 10:
			n = binary.BigEndian.Uint64(b[2:])
			if n>>63 != 0 || n <= 0xffff {
				return 0, nil, false, fmt.Errorf("%w: 64-bit length %d", errProtocol, n)
			}
		}
		control := fop >= 0x8
		switch {
		case control && (!fin || n > 125):
			return 0, nil, false, fmt.Errorf("%w: control frame fragmented or over 125 bytes", errProtocol)
		case control && fop > opPong, !control && fop > opBinary:
			return 0, nil, false, fmt.Errorf("%w: reserved opcode %#x", errProtocol, fop)
		case fop == opContinuation && p.fragOp == 0:
			return 0, nil, false, fmt.Errorf("%w: continuation frame without a message to continue", errProtocol)
		case (fop == opText || fop == opBinary) && p.fragOp != 0:
			return 0, nil, false, fmt.Errorf("%w: new message inside a fragmented one", errProtocol)
		case n > uint64(p.max) || (fop == opContinuation && uint64(len(p.frag))+n > uint64(p.max)):
			return 0, nil, false, fmt.Errorf("message over %d bytes", p.max)
		}
		if uint64(len(b)) < uint64(hl)+n {
			p.need = hl + int(n)
			return 0, nil, false, nil
		}
		payload = b[hl : hl+int(n)]
		p.r += hl + int(n)
		p.need = 0
		switch {
		case control:
			if fop == opClose && n == 1 {
				return 0, nil, false, fmt.Errorf("%w: close frame with a 1-byte body", errProtocol)
			}
			return fop, payload, true, nil
		case fop != opContinuation && fin:
			return fop, payload, true, nil
		case fop != opContinuation:
			p.fragOp = fop
			p.frag = append(p.frag[:0], payload...)
		default:
			p.frag = append(p.frag, payload...)
			if fin {
				op, p.fragOp = p.fragOp, 0
				return op, p.frag, true, nil
			}
		}
	}
}

// appendClientFrame appends one masked frame from a client (RFC 6455
// section 5.3) with a fresh masking key.
func appendClientFrame(dst []byte, op byte, payload []byte) []byte {
	n := len(payload)
	dst = append(dst, 0x80|op)
	switch {
	case n <= 125:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	dst = append(dst, key[:]...)
	for i, c := range payload {
		dst = append(dst, c^key[i&3])
	}
	return dst
}
