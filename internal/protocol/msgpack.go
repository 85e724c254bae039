package protocol

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// The binary codec (subprotocol SubprotocolMsgpack, docs/protocol.md "Binary
// codec"): the same commands, replies and pushes as sori.v1, each one
// MessagePack map with the JSON field names as keys, in WebSocket binary
// frames. The one difference: a "data" value (publication and rpc payloads,
// which the server stores and forwards as JSON) is a bin holding the value's
// JSON text, so the server never converts payloads between the two forms.
//
// MessagePack is written by hand (about 400 lines, no dependency): the format
// is small and stable, the server needs only a command decoder and a
// JSON→MessagePack transcoder for what it sends, and a generated Protobuf
// codec would have added a schema compiler to the build and the JS SDK.

// SubprotocolMsgpack is the WebSocket subprotocol name of the binary codec.
const SubprotocolMsgpack = "sori.v1.msgpack"

var errMsgpack = errors.New("malformed MessagePack")

// mpReader reads MessagePack values from a byte slice; any malformed or
// truncated input sets err and makes every later read return zero values.
type mpReader struct {
	b   []byte
	err error
}

func (r *mpReader) fail() { r.err = errMsgpack; r.b = nil }

func (r *mpReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *mpReader) byte1() byte {
	p := r.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *mpReader) uintN(n int) uint64 {
	p := r.take(n)
	switch len(p) {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	case 8:
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// mapLen reads a map header.
func (r *mpReader) mapLen() int {
	switch c := r.byte1(); {
	case c&0xf0 == 0x80:
		return int(c & 0x0f)
	case c == 0xde:
		return int(r.uintN(2))
	case c == 0xdf:
		return int(r.uintN(4))
	}
	r.fail()
	return 0
}

// bytesOf reads a str or bin and returns its bytes (a view of the input).
func (r *mpReader) bytesOf() (p []byte, isStr bool) {
	c := r.byte1()
	var n uint64
	switch {
	case c&0xe0 == 0xa0:
		n, isStr = uint64(c&0x1f), true
	case c == 0xd9 || c == 0xc4:
		n, isStr = r.uintN(1), c == 0xd9
	case c == 0xda || c == 0xc5:
		n, isStr = r.uintN(2), c == 0xda
	case c == 0xdb || c == 0xc6:
		n, isStr = r.uintN(4), c == 0xdb
	default:
		r.fail()
		return nil, false
	}
	return r.take(int(n)), isStr
}

// str reads a str (valid UTF-8).
func (r *mpReader) str() string {
	p, isStr := r.bytesOf()
	if r.err == nil && (!isStr || !utf8.Valid(p)) {
		r.fail()
	}
	return string(p)
}

// uint reads a non-negative integer.
func (r *mpReader) uint() uint64 {
	c := r.byte1()
	switch {
	case c <= 0x7f:
		return uint64(c)
	case c >= 0xcc && c <= 0xcf:
		return r.uintN(1 << (c - 0xcc))
	case c >= 0xd0 && c <= 0xd3:
		v := r.uintN(1 << (c - 0xd0))
		shift := 64 - 8*(1<<(c-0xd0))
		if int64(v<<shift)>>shift < 0 {
			r.fail()
		}
		return v
	}
	r.fail()
	return 0
}

func (r *mpReader) bool() bool {
	switch r.byte1() {
	case 0xc2:
		return false
	case 0xc3:
		return true
	}
	r.fail()
	return false
}

// skip reads past one value of any type, nested at most depth levels.
func (r *mpReader) skip(depth int) {
	if depth == 0 {
		r.fail()
		return
	}
	c := r.byte1()
	var n int // elements to skip after the header
	switch {
	case r.err != nil:
		return
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
	case c&0xf0 == 0x80:
		n = 2 * int(c&0x0f)
	case c&0xf0 == 0x90:
		n = int(c & 0x0f)
	case c&0xe0 == 0xa0:
		r.take(int(c & 0x1f))
	case c == 0xc4 || c == 0xd9:
		r.take(int(r.uintN(1)))
	case c == 0xc5 || c == 0xda:
		r.take(int(r.uintN(2)))
	case c == 0xc6 || c == 0xdb:
		r.take(int(r.uintN(4)))
	case c == 0xca:
		r.take(4)
	case c == 0xcb:
		r.take(8)
	case c >= 0xcc && c <= 0xcf:
		r.take(1 << (c - 0xcc))
	case c >= 0xd0 && c <= 0xd3:
		r.take(1 << (c - 0xd0))
	case c == 0xdc:
		n = int(r.uintN(2))
	case c == 0xdd:
		n = int(r.uintN(4))
	case c == 0xde:
		n = 2 * int(r.uintN(2))
	case c == 0xdf:
		n = 2 * int(r.uintN(4))
	case c == 0xd4, c == 0xd5, c == 0xd6, c == 0xd7, c == 0xd8: // fixext 1–16
		r.take(1 + 1<<(c-0xd4))
	case c == 0xc7:
		r.take(1 + int(r.uintN(1)))
	case c == 0xc8:
		r.take(1 + int(r.uintN(2)))
	case c == 0xc9:
		r.take(1 + int(r.uintN(4)))
	default: // 0xc1, never used
		r.fail()
	}
	if n > len(r.b) { // every element takes at least one byte
		r.fail()
	}
	for i := 0; i < n && r.err == nil; i++ {
		r.skip(depth - 1)
	}
}

// DecodeCommandsMsgpack parses one inbound binary frame: one MessagePack map
// per command, several concatenated for a batch. Its contract is
// DecodeCommands's: the commands before the first bad one, and for the bad
// one a *BadCommand with whatever id could be read. A "data" value is a bin
// (or str) holding JSON text, which must be valid JSON.
func DecodeCommandsMsgpack(frame []byte, dst []Command) ([]Command, *BadCommand) {
	r := mpReader{b: frame}
	for len(r.b) > 0 {
		var cmd Command
		if err := r.command(&cmd); err != nil {
			return dst, &BadCommand{ID: cmd.ID, Err: err}
		}
		if err := cmd.Validate(); err != nil {
			return dst, &BadCommand{ID: cmd.ID, Err: err}
		}
		dst = append(dst, cmd)
	}
	return dst, nil
}

func (r *mpReader) command(cmd *Command) *Error {
	n := r.mapLen()
	for i := 0; i < n && r.err == nil; i++ {
		key, _ := r.bytesOf()
		switch string(key) {
		case "id":
			cmd.ID = r.uint()
		case "op":
			cmd.Op = r.str()
		case "token":
			cmd.Token = r.str()
		case "client":
			cmd.Client = r.str()
		case "channel":
			cmd.Channel = r.str()
		case "recover":
			cmd.Recover = r.bool()
		case "epoch":
			cmd.Epoch = r.str()
		case "offset":
			cmd.Offset = r.uint()
		case "limit":
			v := r.uint()
			if v > math.MaxInt32 {
				v = math.MaxInt32
			}
			cmd.Limit = int(v)
		case "data":
			p, _ := r.bytesOf()
			if r.err == nil && !json.Valid(p) {
				return ErrBadData.WithMessage("data is not JSON text")
			}
			cmd.Data = append(json.RawMessage(nil), p...)
		case "method":
			cmd.Method = r.str()
		default:
			r.skip(32) // unknown fields are ignored, as in JSON
		}
	}
	if r.err != nil {
		return ErrBadRequest.WithMessage("malformed MessagePack command")
	}
	return nil
}

// TranscodeJSON appends the MessagePack form of a frame the server encoded
// as JSON (a reply or a push; several JSON values separated by newlines
// become several MessagePack values). Objects become maps, arrays arrays,
// integers ints, other numbers float64; the value of every "data" key is kept
// as its JSON text in a bin. Input that is not JSON is an error (the server
// never sends any).
func TranscodeJSON(b, frame []byte) ([]byte, error) {
	t := jsonScanner{s: frame}
	for {
		t.space()
		if t.i == len(t.s) {
			return b, nil
		}
		var err error
		if b, err = t.value(b, 64); err != nil {
			return b, err
		}
	}
}

var errJSON = errors.New("protocol: not JSON")

type jsonScanner struct {
	s []byte
	i int
}

func (t *jsonScanner) space() {
	for t.i < len(t.s) && (t.s[t.i] == ' ' || t.s[t.i] == '\n' || t.s[t.i] == '\r' || t.s[t.i] == '\t') {
		t.i++
	}
}

func (t *jsonScanner) value(b []byte, depth int) ([]byte, error) {
	t.space()
	if t.i >= len(t.s) || depth == 0 {
		return b, errJSON
	}
	switch c := t.s[t.i]; {
	case c == '{':
		t.i++
		at := len(b)
		b = append(b, 0xdf, 0, 0, 0, 0)
		n := 0
		t.space()
		if t.i < len(t.s) && t.s[t.i] == '}' {
			t.i++
			return patchLen(b, at, 0x80, 0xde, n), nil
		}
		for {
			t.space()
			key, err := t.str()
			if err != nil {
				return b, err
			}
			b = appendMsgpackStr(b, key)
			t.space()
			if t.i >= len(t.s) || t.s[t.i] != ':' {
				return b, errJSON
			}
			t.i++
			if string(key) == "data" {
				t.space()
				start := t.i
				if _, err := t.value(nil, depth-1); err != nil {
					return b, err
				}
				b = appendMsgpackBin(b, t.s[start:t.i])
			} else if b, err = t.value(b, depth-1); err != nil {
				return b, err
			}
			n++
			t.space()
			if t.i >= len(t.s) {
				return b, errJSON
			}
			if t.s[t.i] == ',' {
				t.i++
				continue
			}
			if t.s[t.i] != '}' {
				return b, errJSON
			}
			t.i++
			return patchLen(b, at, 0x80, 0xde, n), nil
		}
	case c == '[':
		t.i++
		at := len(b)
		b = append(b, 0xdd, 0, 0, 0, 0)
		n := 0
		t.space()
		if t.i < len(t.s) && t.s[t.i] == ']' {
			t.i++
			return patchLen(b, at, 0x90, 0xdc, n), nil
		}
		for {
			var err error
			if b, err = t.value(b, depth-1); err != nil {
				return b, err
			}
			n++
			t.space()
			if t.i >= len(t.s) {
				return b, errJSON
			}
			if t.s[t.i] == ',' {
				t.i++
				continue
			}
			if t.s[t.i] != ']' {
				return b, errJSON
			}
			t.i++
			return patchLen(b, at, 0x90, 0xdc, n), nil
		}
	case c == '"':
		s, err := t.str()
		if err != nil {
			return b, err
		}
		return appendMsgpackStr(b, s), nil
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]struct {
			text string
			code byte
		}{{"true", 0xc3}, {"false", 0xc2}, {"null", 0xc0}} {
			if len(t.s)-t.i >= len(lit.text) && string(t.s[t.i:t.i+len(lit.text)]) == lit.text {
				t.i += len(lit.text)
				return append(b, lit.code), nil
			}
		}
		return b, errJSON
	default:
		start := t.i
		for t.i < len(t.s) && (t.s[t.i] == '-' || t.s[t.i] == '+' || t.s[t.i] == '.' || t.s[t.i] == 'e' ||
			t.s[t.i] == 'E' || (t.s[t.i] >= '0' && t.s[t.i] <= '9')) {
			t.i++
		}
		num := string(t.s[start:t.i])
		if num == "" {
			return b, errJSON
		}
		if u, err := strconv.ParseUint(num, 10, 64); err == nil {
			return appendMsgpackUint(b, u), nil
		}
		if v, err := strconv.ParseInt(num, 10, 64); err == nil {
			return appendMsgpackInt(b, v), nil
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range: ±Inf or 0, as MessagePack can say
			return b, errJSON
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f)), nil
	}
}

// patchLen rewrites the 5-byte container header at b[at:] for n elements
// in the shortest form (fix, then 16-bit; 32-bit stays as written).
func patchLen(b []byte, at int, fix, c16 byte, n int) []byte {
	switch {
	case n < 16:
		b[at] = fix | byte(n)
		return append(b[:at+1], b[at+5:]...)
	case n < 1<<16:
		b[at], b[at+1], b[at+2] = c16, byte(n>>8), byte(n)
		return append(b[:at+3], b[at+5:]...)
	}
	binary.BigEndian.PutUint32(b[at+1:], uint32(n))
	return b
}

// str reads a JSON string at t.i and returns its unescaped bytes.
func (t *jsonScanner) str() ([]byte, error) {
	if t.i >= len(t.s) || t.s[t.i] != '"' {
		return nil, errJSON
	}
	t.i++
	start := t.i
	for t.i < len(t.s) && t.s[t.i] != '"' && t.s[t.i] != '\\' {
		t.i++
	}
	if t.i < len(t.s) && t.s[t.i] == '"' && utf8.Valid(t.s[start:t.i]) {
		t.i++
		return t.s[start : t.i-1], nil // no escapes: a view of the input
	}
	// Escapes (or invalid UTF-8, which becomes U+FFFD as encoding/json
	// decodes it): let encoding/json unescape the whole string.
	end := t.i
	for end < len(t.s) && t.s[end] != '"' {
		if t.s[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(t.s) {
		return nil, errJSON
	}
	var s string
	if err := json.Unmarshal(t.s[start-1:end+1], &s); err != nil {
		return nil, errJSON
	}
	t.i = end + 1
	return []byte(s), nil
}

func appendMsgpackStr(b, s []byte) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

func appendMsgpackBin(b, p []byte) []byte {
	switch n := len(p); {
	case n < 1<<8:
		b = append(b, 0xc4, byte(n))
	case n < 1<<16:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, p...)
}

func appendMsgpackUint(b []byte, u uint64) []byte {
	switch {
	case u < 1<<7:
		return append(b, byte(u))
	case u < 1<<8:
		return append(b, 0xcc, byte(u))
	case u < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(u))
	case u < 1<<32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(u))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), u)
}

func appendMsgpackInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendMsgpackUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

// AppendCommandMsgpack appends cmd in the binary codec, as a client sends
// it (tests, load generators). Empty fields are left out, as in JSON.
func AppendCommandMsgpack(b []byte, cmd *Command) []byte {
	at := len(b)
	b = append(b, 0xdf, 0, 0, 0, 0)
	n := 0
	field := func(k string) { b = appendMsgpackStr(b, []byte(k)); n++ }
	str := func(k, v string) {
		if v != "" {
			field(k)
			b = appendMsgpackStr(b, []byte(v))
		}
	}
	field("id")
	b = appendMsgpackUint(b, cmd.ID)
	str("op", cmd.Op)
	str("token", cmd.Token)
	str("client", cmd.Client)
	str("channel", cmd.Channel)
	if cmd.Recover {
		field("recover")
		b = append(b, 0xc3)
	}
	str("epoch", cmd.Epoch)
	if cmd.Offset != 0 {
		field("offset")
		b = appendMsgpackUint(b, cmd.Offset)
	}
	if cmd.Limit > 0 {
		field("limit")
		b = appendMsgpackUint(b, uint64(cmd.Limit))
	}
	if len(cmd.Data) > 0 {
		field("data")
		b = appendMsgpackBin(b, cmd.Data)
	}
	str("method", cmd.Method)
	return patchLen(b, at, 0x80, 0xde, n)
}

// MsgpackToJSON appends the JSON form of MessagePack values in the binary
// codec (the inverse of TranscodeJSON): a bin under a "data" key is JSON text
// and is inserted as it is; other bins, extension types and non-string map
// keys are refused. Several values become JSON lines. For tools and tests.
func MsgpackToJSON(b, m []byte) ([]byte, error) {
	r := mpReader{b: m}
	for first := true; len(r.b) > 0; first = false {
		if !first {
			b = append(b, '\n')
		}
		b = r.toJSON(b, false, 64)
		if r.err != nil {
			return b, r.err
		}
	}
	return b, nil
}

func (r *mpReader) toJSON(b []byte, isData bool, depth int) []byte {
	if depth == 0 || len(r.b) == 0 {
		r.fail()
		return b
	}
	c := r.b[0]
	switch {
	case c <= 0x7f || (c >= 0xcc && c <= 0xcf):
		return strconv.AppendUint(b, r.uint(), 10)
	case c >= 0xe0:
		r.byte1()
		return strconv.AppendInt(b, int64(int8(c)), 10)
	case c >= 0xd0 && c <= 0xd3:
		r.byte1()
		size := 1 << (c - 0xd0)
		shift := 64 - 8*size
		return strconv.AppendInt(b, int64(r.uintN(size)<<shift)>>shift, 10)
	case c == 0xca:
		r.byte1()
		return strconv.AppendFloat(b, float64(math.Float32frombits(uint32(r.uintN(4)))), 'g', -1, 32)
	case c == 0xcb:
		r.byte1()
		f := math.Float64frombits(r.uintN(8))
		if math.IsInf(f, 0) || math.IsNaN(f) {
			r.fail()
			return b
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case c == 0xc0:
		r.byte1()
		return append(b, "null"...)
	case c == 0xc2 || c == 0xc3:
		return strconv.AppendBool(b, r.bool())
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf:
		n := r.mapLen()
		b = append(b, '{')
		for i := 0; i < n && r.err == nil; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			k := r.str()
			b = append(AppendString(b, k), ':')
			b = r.toJSON(b, k == "data", depth-1)
		}
		return append(b, '}')
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd:
		r.byte1()
		var n int
		switch c {
		case 0xdc:
			n = int(r.uintN(2))
		case 0xdd:
			n = int(r.uintN(4))
		default:
			n = int(c & 0x0f)
		}
		b = append(b, '[')
		for i := 0; i < n && r.err == nil; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.toJSON(b, false, depth-1)
		}
		return append(b, ']')
	}
	p, isStr := r.bytesOf()
	switch {
	case r.err != nil:
	case isStr && utf8.Valid(p):
		return AppendString(b, string(p))
	case !isStr && isData && json.Valid(p):
		return append(b, p...)
	default:
		r.fail()
	}
	return b
}
