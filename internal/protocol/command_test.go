package protocol

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecodeCommands(t *testing.T) {
	tests := []struct {
		name    string
		frame   string
		wantOps []string // ops of the commands returned, in order
		badID   uint64   // id of the BadCommand; only checked when badCode != 0
		badCode int      // 0 = no BadCommand
	}{
		{"connect", `{"id":1,"op":"connect","token":"t"}`, []string{"connect"}, 0, 0},
		{"unknown fields ignored", `{"id":1,"op":"ping","future":{"x":[1,2]}}`, []string{"ping"}, 0, 0},
		{"batch of JSON lines", "{\"id\":1,\"op\":\"ping\"}\n{\"id\":2,\"op\":\"subscribe\",\"channel\":\"a\"}\r\n\n  {\"id\":3,\"op\":\"publish\",\"channel\":\"a\",\"data\":1}\n", []string{"ping", "subscribe", "publish"}, 0, 0},
		{"empty frame", "", nil, 0, 0},
		{"only blank lines", "\n \n\t\n", nil, 0, 0},
		{"broken JSON", `{"id":1,"op":`, nil, 1, 101},
		{"broken JSON after id", `{"id":7,"op":"ping","x":}`, nil, 7, 101},
		{"wrong field type keeps id", `{"id":8,"op":42}`, nil, 8, 101},
		{"id not readable", `{"op":"ping","id":"x"}`, nil, 0, 101},
		{"not an object", `[1,2,3]`, nil, 0, 101},
		{"null", `null`, nil, 0, 101},
		{"missing id", `{"op":"ping"}`, nil, 0, 101},
		{"missing op", `{"id":4}`, nil, 4, 101},
		{"unknown op", `{"id":5,"op":"teleport"}`, nil, 5, 102},
		{"invalid UTF-8", "{\"id\":6,\"op\":\"ping\",\"client\":\"\xff\"}", nil, 0, 101},
		{"bad channel", `{"id":9,"op":"subscribe","channel":"a b"}`, nil, 9, 111},
		{"empty channel", `{"id":9,"op":"history","channel":""}`, nil, 9, 111},
		{"negative limit", `{"id":10,"op":"history","channel":"a","limit":-1}`, nil, 10, 101},
		{"publish without data", `{"id":11,"op":"publish","channel":"a"}`, nil, 11, 114},
		{"refresh without token", `{"id":12,"op":"refresh"}`, nil, 12, 101},
		{"rpc without method", `{"id":13,"op":"rpc"}`, nil, 13, 101},
		{"rpc method too long", `{"id":13,"op":"rpc","method":"` + strings.Repeat("m", 65) + `"}`, nil, 13, 101},
		{"good then bad line", "{\"id\":1,\"op\":\"ping\"}\n{\"id\":2,\"op\":\"nope\"}\n{\"id\":3,\"op\":\"ping\"}", []string{"ping"}, 2, 102},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, bad := DecodeCommands([]byte(tt.frame), nil)
			var ops []string
			for _, c := range cmds {
				ops = append(ops, c.Op)
			}
			if strings.Join(ops, ",") != strings.Join(tt.wantOps, ",") {
				t.Errorf("ops %v, want %v", ops, tt.wantOps)
			}
			switch {
			case tt.badCode == 0 && bad != nil:
				t.Errorf("unexpected bad command %+v (%v)", bad, bad.Err)
			case tt.badCode != 0 && bad == nil:
				t.Errorf("no bad command, want error %d", tt.badCode)
			case tt.badCode != 0:
				if bad.Err.Code != tt.badCode || bad.ID != tt.badID {
					t.Errorf("bad command id %d error %v, want id %d code %d", bad.ID, bad.Err, tt.badID, tt.badCode)
				}
			}
		})
	}
}

func TestDecodeCommandsReusesDst(t *testing.T) {
	dst := make([]Command, 0, 4)
	cmds, bad := DecodeCommands([]byte("{\"id\":1,\"op\":\"ping\"}\n{\"id\":2,\"op\":\"ping\"}"), dst)
	if bad != nil || len(cmds) != 2 || cmds[1].ID != 2 {
		t.Fatalf("got %+v, %+v", cmds, bad)
	}
	if &cmds[0] != &dst[:1][0] {
		t.Error("DecodeCommands did not append into dst's backing array")
	}
}

func TestValidateChannel(t *testing.T) {
	tests := []struct {
		ch string
		ok bool
	}{
		{"a", true},
		{"chat:lobby", true},
		{"user:alice#notifications", true},
		{"A-Z_a.z:0@9=/,#", true},
		{strings.Repeat("x", MaxChannelLength), true},
		{strings.Repeat("x", MaxChannelLength+1), false},
		{"", false},
		{"with space", false},
		{"quote\"", false},
		{"star*", false},
		{"ünicode", false},
		{"nul\x00", false},
	}
	for _, tt := range tests {
		if err := ValidateChannel(tt.ch); (err == nil) != tt.ok {
			t.Errorf("ValidateChannel(%q) = %v, want ok=%v", tt.ch, err, tt.ok)
		} else if err != nil && err.Code != ErrBadChannel.Code {
			t.Errorf("ValidateChannel(%q) code %d, want %d", tt.ch, err.Code, ErrBadChannel.Code)
		}
	}
}

func TestNamespace(t *testing.T) {
	for ch, want := range map[string]string{"chat:lobby": "chat", "lobby": "", "a:b:c": "a", ":x": ""} {
		if got := Namespace(ch); got != want {
			t.Errorf("Namespace(%q) = %q, want %q", ch, got, want)
		}
	}
}

func TestErrorCodesAreDistinct(t *testing.T) {
	seen := map[int]string{}
	for _, e := range []*Error{ErrInternal, ErrBadRequest, ErrUnknownOp, ErrNotConnected, ErrPermissionDenied,
		ErrAlreadyConnected, ErrAlreadySubscribed, ErrNotSubscribed, ErrTooManySubs, ErrRateLimited, ErrMessageTooLarge,
		ErrBadChannel, ErrTokenExpired, ErrBadToken, ErrBadData, ErrUnavailable, ErrUnknownMethod, ErrNotFound, ErrConflict} {
		if prev, dup := seen[e.Code]; dup {
			t.Errorf("code %d used by %q and %q", e.Code, prev, e.Message)
		}
		seen[e.Code] = e.Message
		if e.WithMessage("x").Code != e.Code || e.WithMessage("x") == e {
			t.Errorf("WithMessage of %d must copy and keep the code", e.Code)
		}
	}
	for _, d := range []Disconnect{DisconnectSlowConsumer, DisconnectNoPong, DisconnectTokenExpired, DisconnectForceReconnect, DisconnectShutdown} {
		if !d.Reconnect {
			t.Errorf("disconnect %d should ask to reconnect", d.Code)
		}
	}
	for _, d := range []Disconnect{DisconnectBadRequest, DisconnectUnauthorized, DisconnectKicked, DisconnectConnLimit, DisconnectConnectTimeout, DisconnectRateLimit} {
		if d.Reconnect || d.Code < 4500 {
			t.Errorf("disconnect %d should not ask to reconnect", d.Code)
		}
	}
}

func TestErrorIsByCode(t *testing.T) {
	err := fmt.Errorf("chat: load room: %w", ErrNotFound.WithMessage("no such room"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatal("a wrapped 117 with its own message is not ErrNotFound")
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, errors.New("not found")) {
		t.Fatal("a 117 matched another error")
	}
	var nilErr *Error
	if nilErr.Is(ErrNotFound) || ErrNotFound.Is(nilErr) {
		t.Fatal("a nil *Error matched")
	}
}
