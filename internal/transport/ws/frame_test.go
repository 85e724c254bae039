package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws/wsflate"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 1 << 20} {
		for _, rsv1 := range []bool{false, true} {
			b := appendHeader(nil, opText, rsv1, n)
			var h header
			if err := readHeader(bytes.NewReader(b), make([]byte, 14), &h); err != nil {
				t.Fatalf("len %d: %v", n, err)
			}
			if !h.fin || h.rsv1 != rsv1 || h.rsv23 || h.op != opText || h.masked || h.length != int64(n) {
				t.Fatalf("len %d rsv1 %v: read back %+v", n, rsv1, h)
			}
			// The shortest length encoding (RFC 6455 §5.2).
			want := 2
			if n > 125 {
				want = 4
			}
			if n > 0xffff {
				want = 10
			}
			if len(b) != want {
				t.Fatalf("len %d: header of %d bytes, want %d", n, len(b), want)
			}
		}
	}
}

func TestReadHeader(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    header
		wantErr error
	}{
		{"masked short", []byte{0x81, 0x85, 1, 2, 3, 4}, header{fin: true, op: opText, masked: true, length: 5, mask: [4]byte{1, 2, 3, 4}}, nil},
		{"16-bit length", []byte{0x02, 0xFE, 0x01, 0x00, 9, 9, 9, 9}, header{op: opBinary, masked: true, length: 256, mask: [4]byte{9, 9, 9, 9}}, nil},
		{"64-bit length", append([]byte{0x80, 0x7F}, binary.BigEndian.AppendUint64(nil, 1<<40)...), header{fin: true, op: opContinuation, length: 1 << 40}, nil},
		{"reserved length bit", append(binary.BigEndian.AppendUint64([]byte{0x81, 0xFF}, 1<<63), 1, 2, 3, 4), header{}, errReservedLength},
		{"rsv bits", []byte{0xF1, 0x00}, header{fin: true, rsv1: true, rsv23: true, op: opText}, nil},
		{"truncated", []byte{0x81}, header{}, io.ErrUnexpectedEOF},
		{"truncated extension", []byte{0x81, 0xFE, 0x01}, header{}, io.ErrUnexpectedEOF},
		{"empty", nil, header{}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h header
			err := readHeader(bytes.NewReader(tt.in), make([]byte, 14), &h)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && h != tt.want {
				t.Fatalf("header %+v, want %+v", h, tt.want)
			}
		})
	}
}

func TestCloseBody(t *testing.T) {
	if closeBody(0, "x") != nil {
		t.Fatal("code 0 must give an empty body")
	}
	b := closeBody(4001, "slow")
	if binary.BigEndian.Uint16(b) != 4001 || string(b[2:]) != "slow" {
		t.Fatalf("body %q", b)
	}
	long := closeBody(1000, strings.Repeat("é", 100)) // 200 bytes of two-byte characters
	if len(long) > 125 || !utf8.Valid(long[2:]) {
		t.Fatalf("long reason: %d bytes, valid UTF-8 %v", len(long), utf8.Valid(long[2:]))
	}
}

func TestValidCloseCode(t *testing.T) {
	for code, want := range map[int]bool{999: false, 1000: true, 1003: true, 1004: false, 1005: false, 1006: false,
		1007: true, 1011: true, 1014: true, 1015: false, 1016: false, 2999: false, 3000: true, 4999: true, 5000: false} {
		if validCloseCode(code) != want {
			t.Errorf("validCloseCode(%d) = %v, want %v", code, !want, want)
		}
	}
}

// TestUTF8Stream checks the incremental validator against utf8.Valid on
// every way of cutting each input in two and three pieces, and that it
// refuses at the first byte no continuation can make valid (fail fast).
func TestUTF8Stream(t *testing.T) {
	for _, tt := range []struct {
		in     string
		failAt int // index of the first byte that must be refused; -1 = none
	}{
		{"", -1},
		{"abc", -1},
		{"a€b😀c", -1},
		{"a\xe2\x82", -1}, // € cut short: a valid prefix, incomplete at the end
		{"a\xf0\x9f\x98", -1},
		{"a\xff", 1},
		{"\xe2\x82\xac\x80", 3}, // stray continuation byte
		{"a\xc0\xaf", 1},        // overlong: C0 never starts a character
		{"\xe0\x80\x80", 1},     // overlong three-byte form, refused at its second byte
		{"\xed\xa0\x80", 1},     // surrogate, refused at its second byte
		{"\xf4\x90\x80\x80", 1}, // above U+10FFFF, refused at its second byte
		{"\xf5", 0},
		{"a\xe2\x28", 2}, // a bad second byte, not merely unfinished
	} {
		in := []byte(tt.in)
		// Byte by byte: where does it fail?
		var s utf8Stream
		failAt := -1
		for i := range in {
			if !s.write(in[i : i+1]) {
				failAt = i
				break
			}
		}
		if failAt != tt.failAt {
			t.Errorf("%q: refused at byte %d, want %d", tt.in, failAt, tt.failAt)
		}
		want := utf8.Valid(in)
		for i := 0; i <= len(in); i++ {
			for j := i; j <= len(in); j++ {
				var s utf8Stream
				got := s.write(in[:i]) && s.write(in[i:j]) && s.write(in[j:]) && s.complete()
				if got != want {
					t.Fatalf("%q cut at %d and %d: valid %v, want %v", tt.in, i, j, got, want)
				}
			}
		}
	}
}

// TestUTF8StreamExhaustive compares the validator fed byte by byte with
// utf8.Valid on every sequence of up to two bytes and every three-byte one
// starting with a three- or four-byte lead.
func TestUTF8StreamExhaustive(t *testing.T) {
	check := func(p []byte) {
		var s utf8Stream
		ok := true
		for i := range p {
			if ok = s.write(p[i : i+1]); !ok {
				break
			}
		}
		if got := ok && s.complete(); got != utf8.Valid(p) {
			t.Fatalf("% x: valid %v, utf8.Valid %v", p, got, !got)
		}
		var whole utf8Stream
		if got := whole.write(p) && whole.complete(); got != utf8.Valid(p) {
			t.Fatalf("% x in one piece: valid %v, utf8.Valid %v", p, got, !got)
		}
	}
	for a := range 256 {
		check([]byte{byte(a)})
		for b := range 256 {
			check([]byte{byte(a), byte(b)})
			if a >= 0xE0 {
				for c := range 256 {
					check([]byte{byte(a), byte(b), byte(c)})
				}
			}
		}
	}
}

func TestDeflateRoundTrip(t *testing.T) {
	for _, msg := range []string{"", "a", strings.Repeat("sori ", 10000)} {
		z := compress(nil, []byte(msg), 15)
		out, err := decompress(z, 1<<20)
		if err != nil || string(out) != msg {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", len(msg), len(out), err)
		}
	}
	bomb := compress(nil, make([]byte, 1<<20), 15)
	if _, err := decompress(bomb, 64<<10); !errors.Is(err, errInflatedTooLarge) {
		t.Fatalf("1 MiB of zeros under a 64 KiB limit: %v, want errInflatedTooLarge", err)
	}
	if _, err := decompress([]byte{0xff, 0xff, 0xff}, 1<<20); err == nil {
		t.Fatal("garbage inflated without an error")
	}
}

func TestNegotiateDeflate(t *testing.T) {
	tests := []struct {
		offer string
		bits  int // the window granted; 0 = declined
	}{
		{"permessage-deflate", 15},
		{"permessage-deflate; client_max_window_bits", 15}, // what browsers and Node's ws send
		{"permessage-deflate; client_max_window_bits=10", 15},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15},
		{"permessage-deflate; server_max_window_bits=15", 15},
		{"permessage-deflate; server_max_window_bits=10", 10},
		{"permessage-deflate; server_max_window_bits=8", 8},
		{"permessage-deflate; server_max_window_bits=7", 0},  // malformed (8–15): declined, not fatal
		{"permessage-deflate; client_max_window_bits=99", 0}, // malformed
		{"x-webkit-deflate-frame", 0},
		{"permessage-deflate, permessage-deflate; server_max_window_bits=9", 15}, // one offer at most: the first
		{"permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits=9", 9},
	}
	for _, tt := range tests {
		opts, ok := httphead.ParseOptions([]byte(tt.offer), nil)
		if !ok {
			t.Fatalf("parse %q", tt.offer)
		}
		var n deflateOffer
		accepted := 0
		for _, o := range opts {
			got, err := n.negotiate(o)
			if err != nil {
				t.Fatalf("%q: %v", tt.offer, err)
			}
			if string(got.Name) != "permessage-deflate" {
				continue
			}
			accepted++
			if !strings.Contains(got.String(), "server_no_context_takeover") || !strings.Contains(got.String(), "client_no_context_takeover") {
				t.Errorf("%q: answer %s must disable context takeover both ways", tt.offer, got.String())
			}
			var p wsflate.Parameters
			if err := p.Parse(got); err != nil {
				t.Fatalf("%q: answer %s: %v", tt.offer, got.String(), err)
			}
			if tt.bits < 15 && int(p.ServerMaxWindowBits) != tt.bits {
				t.Errorf("%q: answer %s must echo the window (RFC 7692 §7.1.2.1)", tt.offer, got.String())
			}
		}
		switch {
		case tt.bits == 0 && (accepted != 0 || n.accepted):
			t.Errorf("%q: accepted, want declined", tt.offer)
		case tt.bits != 0 && (accepted != 1 || !n.accepted || int(n.bits) != tt.bits):
			t.Errorf("%q: %d offers accepted with window %d, want 1 with %d", tt.offer, accepted, n.bits, tt.bits)
		}
	}
}

// TestCompressSmallWindow: with a window under 32 KiB, the output inflates
// to the input and never refers further back than the window, checked by an
// independent decoder (inflate_test.go).
func TestCompressSmallWindow(t *testing.T) {
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, "word%d ", i%97)
	}
	msg := []byte(b.String())
	for bits := 8; bits <= 15; bits++ {
		z := compress(nil, msg, bits)
		out, far, err := inflateTracking(z)
		if err != nil || !bytes.Equal(out, msg) {
			t.Fatalf("bits %d: %d bytes back, %v", bits, len(out), err)
		}
		if far > 1<<bits {
			t.Fatalf("bits %d: a back-reference %d bytes back", bits, far)
		}
		if bits < 12 && far < 1<<(bits-1) {
			t.Fatalf("bits %d: longest reference %d: the input should use most of the window", bits, far)
		}
		if back, err := decompress(z, 1<<20); err != nil || !bytes.Equal(back, msg) {
			t.Fatalf("bits %d: compress/flate reads it back as %d bytes, %v", bits, len(back), err)
		}
	}
	// Without the pieces, compress/flate refers up to 32 KiB back: the check
	// above can fail.
	if _, far, _ := inflateTracking(compress(nil, msg, 15)); far <= 1<<10 {
		t.Fatalf("a 15-bit window used only %d bytes back; the input does not exercise the window", far)
	}
}
