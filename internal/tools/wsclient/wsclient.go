// Package wsclient holds what the load tools' minimal WebSocket clients
// (bench's and perf's) share: the RFC 6455 opening handshake on a raw
// connection and the client frame writer. Each tool keeps its own frame
// reader, since they differ on purpose (bench answers pings; perf also reads
// the raw-TCP harness's length-prefixed frames). It must never import other
// Sori packages: the tools measure a server from outside, as a client does.
package wsclient

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// Opcodes of the frames the load clients write (RFC 6455 §5.2).
const (
	OpText  byte = 0x1
	OpClose byte = 0x8
	OpPong  byte = 0xA
)

// Handshake sends the opening handshake for path to host over nc, asking for
// subprotocol unless it is "", and reads the server's answer through br,
// which must read from nc: it leaves br at the first frame. timeout bounds
// the exchange; nc has no deadline afterwards.
func Handshake(nc net.Conn, br *bufio.Reader, host, path, subprotocol string, timeout time.Duration) error {
	_ = nc.SetDeadline(time.Now().Add(timeout))
	defer nc.SetDeadline(time.Time{})
	// A fixed key is enough: the answer only proves the server speaks
	// WebSocket, and the load tools trust the server they measure.
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13" +
		"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if subprotocol != "" {
		req += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		return fmt.Errorf("wsclient: handshake: %w", err)
	}
	status, err := br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("wsclient: handshake: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101")) {
		return fmt.Errorf("wsclient: handshake: status %q", bytes.TrimSpace(status))
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("wsclient: handshake: %w", err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
	}
}

// AppendFrame appends one final client frame of opcode op carrying payload
// to b and returns the extended slice. The frame is masked with a zero key:
// RFC 6455 requires client frames to be masked and allows any key, and the
// server's unmasking costs the same for every key, so the load tools skip
// the XOR.
func AppendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}
