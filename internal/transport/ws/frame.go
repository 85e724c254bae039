package ws

import (
	"encoding/binary"
	"errors"
	"io"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Opcodes (RFC 6455 §5.2).
const (
	opContinuation byte = 0x0
	opText         byte = 0x1
	opBinary       byte = 0x2
	opClose        byte = 0x8
	opPing         byte = 0x9
	opPong         byte = 0xA
)

// header is a decoded frame header.
type header struct {
	fin    bool
	rsv1   bool
	rsv23  bool
	op     byte
	masked bool
	length int64
	mask   [4]byte
}

var errReservedLength = errors.New("ws: 64-bit length with the most significant bit set")

// readHeader reads a frame header into h using scratch (at least 12 bytes),
// so that it allocates nothing.
func readHeader(r io.Reader, scratch []byte, h *header) error {
	b := scratch[:2]
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	h.fin = b[0]&0x80 != 0
	h.rsv1 = b[0]&0x40 != 0
	h.rsv23 = b[0]&0x30 != 0
	h.op = b[0] & 0x0f
	h.masked = b[1]&0x80 != 0
	n := b[1] & 0x7f
	extra := 0
	switch n {
	case 126:
		extra = 2
	case 127:
		extra = 8
	}
	if h.masked {
		extra += 4
	}
	h.length = int64(n)
	if extra == 0 {
		return nil
	}
	b = scratch[:extra]
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	switch n {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b))
		b = b[2:]
	case 127:
		v := binary.BigEndian.Uint64(b)
		if v>>63 != 0 {
			return errReservedLength
		}
		h.length = int64(v)
		b = b[8:]
	}
	if h.masked {
		copy(h.mask[:], b)
	}
	return nil
}

// appendHeader appends an unmasked server frame header (servers never mask,
// RFC 6455 §5.1).
func appendHeader(b []byte, op byte, rsv1 bool, length int) []byte {
	first := 0x80 | op
	if rsv1 {
		first |= 0x40
	}
	switch {
	case length <= 125:
		return append(b, first, byte(length))
	case length <= 0xffff:
		return append(b, first, 126, byte(length>>8), byte(length))
	default:
		b = append(b, first, 127)
		return binary.BigEndian.AppendUint64(b, uint64(length))
	}
}

// unmaskAt applies the client's masking key to p, the part of a payload that
// starts offset bytes into it (RFC 6455 §5.3).
func unmaskAt(p []byte, key [4]byte, offset int) { ws.Cipher(p, key, offset) }

// closeBody encodes a close frame body: status code then UTF-8 reason, cut to
// fit the 125-byte control frame limit without splitting a character.
func closeBody(code int, reason string) []byte {
	if code == 0 {
		return nil
	}
	const maxReason = 123
	if len(reason) > maxReason {
		i := maxReason
		for i > 0 && !utf8.RuneStart(reason[i]) {
			i--
		}
		reason = reason[:i]
	}
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, uint16(code))
	return append(b, reason...)
}

// validCloseCode reports whether a peer may send code (RFC 6455 §7.4.1; 1004–1006,
// 1015 and unassigned 1xxx codes must not appear on the wire).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
