package wsclient

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveOnce accepts one connection on a loopback port, hands the request it
// reads to got and writes answer; the connection stays open until the test
// ends.
func serveOnce(t *testing.T, answer string) (addr string, got <-chan *http.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reqs := make(chan *http.Request, 1)
	done := make(chan struct{})
	served := make(chan struct{})
	t.Cleanup(func() { close(done); _ = ln.Close(); <-served })
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			close(reqs)
			return
		}
		reqs <- r
		_, _ = io.WriteString(c, answer)
		<-done
	}()
	return ln.Addr().String(), reqs
}

// Handshake sends a valid opening handshake and leaves the reader at the
// first frame, which the server may send right behind its headers.
func TestHandshake(t *testing.T) {
	for _, sub := range []string{"sori.v1", ""} {
		answer := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"
		addr, got := serveOnce(t, answer)
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		if err := Handshake(nc, br, addr, "/ws", sub, 10*time.Second); err != nil {
			t.Fatalf("subprotocol %q: %v", sub, err)
		}
		r, ok := <-got
		if !ok {
			t.Fatalf("subprotocol %q: the server could not read the request", sub)
		}
		h := r.Header
		if r.Method != "GET" || r.URL.Path != "/ws" || r.Host != addr || !strings.EqualFold(h.Get("Upgrade"), "websocket") ||
			!strings.EqualFold(h.Get("Connection"), "Upgrade") || h.Get("Sec-WebSocket-Version") != "13" ||
			h.Get("Sec-WebSocket-Key") == "" || h.Get("Sec-WebSocket-Protocol") != sub {
			t.Fatalf("subprotocol %q: request %s %s host %q headers %v", sub, r.Method, r.URL, r.Host, h)
		}
		if first, err := br.Peek(4); err != nil || string(first) != "\x81\x02hi" {
			t.Fatalf("subprotocol %q: after the handshake the reader holds %q (%v), want the first frame", sub, first, err)
		}
	}
}

// A server that does not switch protocols is an error naming its status.
func TestHandshakeRefused(t *testing.T) {
	addr, _ := serveOnce(t, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	err = Handshake(nc, bufio.NewReader(nc), addr, "/nope", "sori.v1", 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "404 Not Found") {
		t.Fatalf("Handshake with a 404 answer: %v, want an error naming the status", err)
	}
}

// AppendFrame writes a final, masked frame with each of the three length
// encodings, which a reader following RFC 6455 §5.2 takes apart again.
func TestAppendFrame(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		payload := bytes.Repeat([]byte{'x'}, n)
		f := AppendFrame([]byte("keep"), OpText, payload)
		if string(f[:4]) != "keep" {
			t.Fatalf("%d bytes: the slice's start was overwritten", n)
		}
		f = f[4:]
		if f[0] != 0x80|OpText || f[1]&0x80 == 0 {
			t.Fatalf("%d bytes: header % x, want FIN, text, masked", n, f[:2])
		}
		size, rest := uint64(f[1]&0x7f), f[2:]
		switch size {
		case 126:
			size, rest = uint64(binary.BigEndian.Uint16(rest)), rest[2:]
		case 127:
			size, rest = binary.BigEndian.Uint64(rest), rest[8:]
		}
		key, body := rest[:4], rest[4:]
		for i := range body {
			body[i] ^= key[i%4]
		}
		if size != uint64(n) || !bytes.Equal(body, payload) {
			t.Fatalf("%d bytes: frame says %d bytes and carries %d", n, size, len(body))
		}
	}
}
