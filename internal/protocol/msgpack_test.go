package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// mpValue decodes one MessagePack value into the shapes encoding/json gives
// for JSON (map[string]any, []any, float64, string, bool, nil); a bin under
// "data" is JSON text and decodes as JSON. Test-only: it is the reference
// the codec is compared with.
func mpValue(r *mpReader, key string) any {
	if r.err != nil || len(r.b) == 0 {
		r.fail()
		return nil
	}
	c := r.b[0]
	switch {
	case c <= 0x7f || (c >= 0xcc && c <= 0xcf):
		return float64(r.uint())
	case c >= 0xe0:
		r.byte1()
		return float64(int8(c))
	case c >= 0xd0 && c <= 0xd3:
		r.byte1()
		size := 1 << (c - 0xd0)
		v := r.uintN(size)
		shift := 64 - 8*size
		return float64(int64(v<<shift) >> shift)
	case c == 0xcb:
		r.byte1()
		return math.Float64frombits(r.uintN(8))
	case c == 0xc0:
		r.byte1()
		return nil
	case c == 0xc2 || c == 0xc3:
		return r.bool()
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf:
		n := r.mapLen()
		m := map[string]any{}
		for i := 0; i < n && r.err == nil; i++ {
			k := r.str()
			m[k] = mpValue(r, k)
		}
		return m
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
		a := []any{}
		for i := 0; i < n && r.err == nil; i++ {
			a = append(a, mpValue(r, ""))
		}
		return a
	}
	p, isStr := r.bytesOf()
	if key == "data" && !isStr {
		var v any
		if err := json.Unmarshal(p, &v); err != nil {
			r.fail()
		}
		return v
	}
	return string(p)
}

func jsonValues(t *testing.T, frame []byte) []any {
	t.Helper()
	var out []any
	d := json.NewDecoder(bytes.NewReader(frame))
	for d.More() {
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("%s: %v", frame, err)
		}
		out = append(out, v)
	}
	return out
}

func mpValues(t testing.TB, m []byte) []any {
	t.Helper()
	r := mpReader{b: m}
	var out []any
	for len(r.b) > 0 && r.err == nil {
		out = append(out, mpValue(&r, ""))
	}
	if r.err != nil {
		t.Fatalf("%x: %v", m, r.err)
	}
	return out
}

// TestTranscodeJSONMatchesJSON: every frame the server sends decodes from
// MessagePack to the same value as from JSON, "data" included.
func TestTranscodeJSONMatchesJSON(t *testing.T) {
	many := map[string]int{}
	for i := range 40 {
		many[fmt.Sprintf("k%02d", i)] = i
	}
	manyJSON, _ := json.Marshal(many)
	long := strings.Repeat("x", 70000)
	frames := [][]byte{
		AppendPublication(nil, "chat:lobby", &Publication{Offset: 42, Data: json.RawMessage(`{"text":"hé \"quoted\" \u2028","n":[1,-2,3.5e10,-0.25]}`), User: "alice", Time: 1700000000000}),
		AppendPublication(nil, "x", &Publication{Offset: 1 << 40, Data: json.RawMessage(`"just a string"`)}),
		EncodeReply(Reply{ID: 7, Result: ConnectResult{Client: "c1", User: "bob", Version: "v", Ping: 25}}),
		EncodeReply(Reply{ID: 8, Result: HistoryResult{Epoch: "e", Offset: 3, Publications: []Publication{
			{Offset: 1, Data: json.RawMessage(`{}`)}, {Offset: 2, Data: json.RawMessage(`[]`)}, {Offset: 3, Data: json.RawMessage(`null`)}}}}),
		EncodeError(9, ErrBadChannel.WithMessage("tab\there, newline\nthere, <html> & \\")),
		EncodeJoinLeave(PushJoin, "room", ClientInfo{User: "u", Client: "c"}),
		EncodeDisconnect(DisconnectShutdown),
		EncodeUnsubscribe("ch", 2001, "kicked"),
		manyJSON,
		[]byte(`{"id":1,"result":{"s":"` + long + `","neg":[-1,-32,-33,-128,-129,-32768,-32769,-2147483648,-2147483649,-9223372036854775808],"big":[127,128,255,256,65535,65536,4294967295,4294967296,18446744073709551615]}}`),
		[]byte("{\"a\":1}\n{\"b\":[true,false,null]}"),
	}
	for _, f := range frames {
		m, err := TranscodeJSON(nil, f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want, got := jsonValues(t, f), mpValues(t, m)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%.200s:\n json    %.300v\n msgpack %.300v", f, want, got)
		}
		back, err := MsgpackToJSON(nil, m)
		if err != nil {
			t.Fatalf("%.200s: back to JSON: %v", f, err)
		}
		if again := jsonValues(t, back); !reflect.DeepEqual(want, again) {
			t.Errorf("%.200s: back to JSON as %.300s", f, back)
		}
	}
	for _, bad := range []string{`{"a":}`, `[1,2`, `{"a" 1}`, `tru`, `"open`, `{"a":1,}x`} {
		if _, err := TranscodeJSON(nil, []byte(bad)); err == nil {
			t.Errorf("%s: transcoded without an error", bad)
		}
	}
}

// TestDecodeCommandsMsgpackMatchesJSON: a command encoded in either codec
// decodes to the same Command, or fails with the same numbered error.
func TestDecodeCommandsMsgpackMatchesJSON(t *testing.T) {
	for _, line := range []string{
		`{"id":1,"op":"connect","token":"tok","client":"js/1.0"}`,
		`{"id":2,"op":"subscribe","channel":"chat:lobby","recover":true,"epoch":"ab","offset":17}`,
		`{"id":3,"op":"publish","channel":"news","data":{"text":"hi","n":[1,2]}}`,
		`{"id":4,"op":"history","channel":"news","limit":50}`,
		`{"id":5,"op":"rpc","method":"call.join","data":{"room":1}}`,
		`{"id":6,"op":"publish","channel":"bad channel!","data":1}`,
		`{"id":7,"op":"nope"}`,
		`{"id":8,"op":"publish","channel":"news"}`,
		`{"op":"ping"}`,
	} {
		var cmd Command
		if err := json.Unmarshal([]byte(line), &cmd); err != nil {
			t.Fatal(err)
		}
		want, wantBad := DecodeCommands([]byte(line), nil)
		got, gotBad := DecodeCommandsMsgpack(AppendCommandMsgpack(nil, &cmd), nil)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: msgpack %+v, json %+v", line, got, want)
		}
		if (wantBad == nil) != (gotBad == nil) || (wantBad != nil && (wantBad.ID != gotBad.ID || wantBad.Err.Code != gotBad.Err.Code)) {
			t.Errorf("%s: msgpack bad %+v, json bad %+v", line, gotBad, wantBad)
		}
	}

	// A batch is concatenated maps; decoding stops at the first bad one and
	// names its id.
	batch := AppendCommandMsgpack(nil, &Command{ID: 1, Op: OpPing})
	batch = AppendCommandMsgpack(batch, &Command{ID: 2, Op: OpPing})
	cmds, bad := DecodeCommandsMsgpack(append(batch, 0x82, 0xa2, 'i', 'd', 0x03, 0xa2, 'o', 'p', 0xc1), nil)
	if len(cmds) != 2 || bad == nil || bad.ID != 3 || bad.Err.Code != ErrBadRequest.Code {
		t.Fatalf("batch with a malformed third command: %d commands, bad %+v", len(cmds), bad)
	}
	// data must be JSON text; unknown fields (any type) are skipped.
	m := []byte{0x84, 0xa2, 'i', 'd', 0x05, 0xa2, 'o', 'p', 0xa7, 'p', 'u', 'b', 'l', 'i', 's', 'h',
		0xa7, 'c', 'h', 'a', 'n', 'n', 'e', 'l', 0xa1, 'c', 0xa4, 'd', 'a', 't', 'a', 0xc4, 0x02, '{', '}'}
	m[0] = 0x85
	m = append(m, 0xa1, 'z', 0x92, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0xa1, 'q', 0xc0)
	if cmds, bad := DecodeCommandsMsgpack(m, nil); bad != nil || len(cmds) != 1 || string(cmds[0].Data) != "{}" {
		t.Fatalf("publish with an unknown field: %+v %+v", cmds, bad)
	}
	m = AppendCommandMsgpack(nil, &Command{ID: 6, Op: OpPublish, Channel: "c", Data: json.RawMessage("{nope")})
	if _, bad := DecodeCommandsMsgpack(m, nil); bad == nil || bad.ID != 6 || bad.Err.Code != ErrBadData.Code {
		t.Fatalf("publish with data that is not JSON: %+v", bad)
	}
	// Strings must be UTF-8 str, not bin.
	m = []byte{0x82, 0xa2, 'i', 'd', 0x07, 0xa2, 'o', 'p', 0xc4, 0x04, 'p', 'i', 'n', 'g'}
	if _, bad := DecodeCommandsMsgpack(m, nil); bad == nil || bad.ID != 7 || bad.Err.Code != ErrBadRequest.Code {
		t.Fatalf("op as bin: %+v", bad)
	}
}

// FuzzDecodeCommandsMsgpack checks the binary decoder's contract on any
// input, as FuzzDecodeCommands does for JSON: no panic, every command passes
// Validate and survives a round trip, a bad command carries a numbered error.
func FuzzDecodeCommandsMsgpack(f *testing.F) {
	f.Add(AppendCommandMsgpack(nil, &Command{ID: 1, Op: OpConnect, Token: "x"}))
	f.Add(AppendCommandMsgpack(nil, &Command{ID: 2, Op: OpPublish, Channel: "a:b", Data: json.RawMessage(`{"t":[1,"x"]}`)}))
	f.Add(AppendCommandMsgpack(AppendCommandMsgpack(nil, &Command{ID: 3, Op: OpPing}), &Command{ID: 4, Op: OpSubscribe, Channel: "c", Recover: true, Epoch: "e", Offset: 9, Limit: 3}))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa1, 'z', 0xdd, 0x7f, 0xff, 0xff, 0xff})
	f.Add(binary.BigEndian.AppendUint32([]byte{0x81, 0xa1, 'z', 0xc9}, 1<<31))
	f.Fuzz(func(t *testing.T, frame []byte) {
		cmds, bad := DecodeCommandsMsgpack(frame, nil)
		for i := range cmds {
			if err := cmds[i].Validate(); err != nil {
				t.Fatalf("returned command %+v fails Validate: %v", cmds[i], err)
			}
			again, bad := DecodeCommandsMsgpack(AppendCommandMsgpack(nil, &cmds[i]), nil)
			if bad != nil || len(again) != 1 || !reflect.DeepEqual(again[0], cmds[i]) {
				t.Fatalf("command %+v does not survive a round trip: %+v %+v", cmds[i], again, bad)
			}
		}
		if bad != nil {
			if bad.Err == nil || bad.Err.Code < 100 || bad.Err.Code > 199 || bad.Err.Message == "" {
				t.Fatalf("bad command without a numbered error: %+v", bad)
			}
		}
		// Whatever JSON the fuzzer finds transcodes to the same value.
		if json.Valid(frame) {
			m, err := TranscodeJSON(nil, frame)
			if err != nil {
				t.Fatalf("valid JSON %q not transcoded: %v", frame, err)
			}
			var want any
			if json.Unmarshal(frame, &want) != nil {
				return // a number beyond float64: encoding/json refuses it, the transcoder gives ±Inf
			}
			if got := mpValues(t, m); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("%q: msgpack %v, json %v", frame, got, want)
			}
		}
	})
}

// BenchmarkDecodePublish compares the cost of decoding one publish command
// in each codec (the inbound hot path of the many-rooms shape).
func BenchmarkDecodePublish(b *testing.B) {
	cmd := Command{ID: 123456, Op: OpPublish, Channel: "perf:room-42",
		Data: json.RawMessage(`{"t":1700000000000000000,"p":"0123456789012345678901234567890123456789"}`)}
	js, _ := json.Marshal(&cmd)
	mp := AppendCommandMsgpack(nil, &cmd)
	for _, c := range []struct {
		name   string
		frame  []byte
		decode func([]byte, []Command) ([]Command, *BadCommand)
	}{{"json", js, DecodeCommands}, {"msgpack", mp, DecodeCommandsMsgpack}} {
		b.Run(c.name, func(b *testing.B) {
			dst := make([]Command, 0, 1)
			b.SetBytes(int64(len(c.frame)))
			b.ReportAllocs()
			for b.Loop() {
				cmds, bad := c.decode(c.frame, dst[:0])
				if bad != nil || len(cmds) != 1 {
					b.Fatal(bad)
				}
			}
		})
	}
}
