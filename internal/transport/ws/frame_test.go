package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/httphead"
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

func TestValidUTF8Prefix(t *testing.T) {
	for in, want := range map[string]bool{
		"":                 true,
		"abc":              true,
		"a\xe2\x82":        true, // € cut short
		"a\xf0\x9f\x98":    true, // 😀 cut short
		"a\xe2":            true,
		"a\xff":            false,
		"\xe2\x82\xac\x80": false, // stray continuation byte
		"a\xc0\xaf":        false, // overlong
		"\xed\xa0\x80":     false, // surrogate
		"a\xe2\x28":        false, // a bad second byte, not merely unfinished
	} {
		if got := validUTF8Prefix([]byte(in)); got != want {
			t.Errorf("validUTF8Prefix(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestDeflateRoundTrip(t *testing.T) {
	for _, msg := range []string{"", "a", strings.Repeat("sori ", 10000)} {
		z := compress(nil, []byte(msg))
		out, err := decompress(z, 1<<20)
		if err != nil || string(out) != msg {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", len(msg), len(out), err)
		}
	}
	bomb := compress(nil, make([]byte, 1<<20))
	if _, err := decompress(bomb, 64<<10); !errors.Is(err, errInflatedTooLarge) {
		t.Fatalf("1 MiB of zeros under a 64 KiB limit: %v, want errInflatedTooLarge", err)
	}
	if _, err := decompress([]byte{0xff, 0xff, 0xff}, 1<<20); err == nil {
		t.Fatal("garbage inflated without an error")
	}
}

func TestNegotiateDeflate(t *testing.T) {
	tests := []struct {
		offer  string
		accept bool
	}{
		{"permessage-deflate", true},
		{"permessage-deflate; client_max_window_bits", true}, // what browsers and Node's ws send
		{"permessage-deflate; client_max_window_bits=10", true},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"permessage-deflate; server_max_window_bits=15", true},
		{"permessage-deflate; server_max_window_bits=10", false}, // we cannot compress with a smaller window
		{"permessage-deflate; client_max_window_bits=99", false}, // malformed: declined, not fatal
		{"x-webkit-deflate-frame", false},
	}
	for _, tt := range tests {
		opts, ok := httphead.ParseOptions([]byte(tt.offer), nil)
		if !ok || len(opts) != 1 {
			t.Fatalf("parse %q", tt.offer)
		}
		got, err := negotiateDeflate(opts[0])
		if err != nil {
			t.Fatalf("%q: %v", tt.offer, err)
		}
		accepted := string(got.Name) == "permessage-deflate"
		if accepted != tt.accept {
			t.Errorf("%q: accepted %v, want %v", tt.offer, accepted, tt.accept)
		}
		if accepted && (!strings.Contains(got.String(), "server_no_context_takeover") || !strings.Contains(got.String(), "client_no_context_takeover")) {
			t.Errorf("%q: answer %s must disable context takeover both ways", tt.offer, got.String())
		}
	}
}
