package protocol

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// randomString mixes ASCII controls, JSON specials, HTML specials, multi-byte
// runes, U+2028/2029 and invalid UTF-8 bytes.
func randomString(r *rand.Rand) string {
	pieces := []string{"a", "Z", "0", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f",
		"é", "€", "😀", "\u2028", "\u2029", "\ufffd", "\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80"}
	var b strings.Builder
	n := r.IntN(24)
	for range n {
		if r.IntN(4) == 0 {
			b.WriteByte(byte(r.IntN(256)))
		} else {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
	}
	return b.String()
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fixed := []string{"", "plain", "\b\f", "<script>&", "\xff\xfe", "line\u2028sep\u2029", "\x00\x01\x1f"}
	for i := 0; i < 20000; i++ {
		s := randomString(r)
		if i < len(fixed) {
			s = fixed[i]
		}
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendPublicationIsValidJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		p := Publication{Offset: r.Uint64(), Data: json.RawMessage(`{"v":[1,"x",null]}`), User: randomString(r), Time: r.Int64()}
		ch := "chat:" + strings.Repeat("a", r.IntN(5)+1)
		b := AppendPublication([]byte("prefix"), ch, &p)
		if !strings.HasPrefix(string(b), "prefix") {
			t.Fatal("AppendPublication overwrote its destination")
		}
		var got struct {
			Push    string          `json:"push"`
			Channel string          `json:"channel"`
			Offset  uint64          `json:"offset"`
			Data    json.RawMessage `json:"data"`
			User    string          `json:"user"`
			Time    int64           `json:"time"`
		}
		if err := json.Unmarshal(b[len("prefix"):], &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", b, err)
		}
		var wantUser string // what encoding/json makes of the same (maybe invalid UTF-8) string
		u, _ := json.Marshal(p.User)
		_ = json.Unmarshal(u, &wantUser)
		if got.Push != PushPublication || got.Channel != ch || got.Offset != p.Offset || string(got.Data) != string(p.Data) ||
			got.User != wantUser || got.Time != p.Time {
			t.Fatalf("round trip of %+v gave %+v", p, got)
		}
	}
}

func TestAppendPublicationOmitsEmpty(t *testing.T) {
	got := string(AppendPublication(nil, "feed:btc", &Publication{Offset: 3, Data: json.RawMessage(`1`)}))
	if want := `{"push":"pub","channel":"feed:btc","offset":3,"data":1}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestEncodeReply(t *testing.T) {
	tests := []struct {
		name  string
		reply Reply
		want  string
	}{
		{"result", Reply{ID: 1, Result: PublishResult{Epoch: "e", Offset: 2}}, `{"id":1,"result":{"epoch":"e","offset":2}}`},
		{"error", Reply{ID: 2, Error: ErrNotSubscribed}, `{"id":2,"error":{"code":107,"message":"not subscribed"}}`},
		{"unencodable result", Reply{ID: 3, Result: func() {}}, `{"id":3,"error":{"code":100,"message":"internal server error"}}`},
	}
	for _, tt := range tests {
		if got := string(EncodeReply(tt.reply)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestEncodePushes(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{string(EncodeJoinLeave(PushJoin, "chat:a", ClientInfo{User: "bob", Client: "c1"})), `{"push":"join","channel":"chat:a","info":{"user":"bob","client":"c1"}}`},
		{string(EncodeUnsubscribe("chat:a", 2000, "bye")), `{"push":"unsub","channel":"chat:a","code":2000,"reason":"bye"}`},
		{string(EncodeDisconnect(DisconnectSlowConsumer)), `{"push":"disconnect","code":4001,"reason":"slow consumer, resume","reconnect":true}`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
		if !utf8.ValidString(tt.got) || !json.Valid([]byte(tt.got)) {
			t.Errorf("%s is not valid JSON", tt.got)
		}
	}
}

func BenchmarkAppendString(b *testing.B) {
	s := "chat:lobby-with-a-rather-long-name/and#suffix"
	buf := make([]byte, 0, 128)
	b.Run("AppendString", func(b *testing.B) {
		for b.Loop() {
			buf = AppendString(buf[:0], s)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			buf, _ = json.Marshal(s)
		}
	})
}
