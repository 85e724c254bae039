package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// Ops a client may send.
const (
	OpConnect     = "connect"
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
	OpPublish     = "publish"
	OpHistory     = "history"
	OpPresence    = "presence"
	OpPing        = "ping"
	OpRefresh     = "refresh"
	OpRPC         = "rpc" // a call to a server module (calls signaling, chat actions)
)

// Command is one client command. The fields used depend on Op; unknown JSON
// fields are ignored so that newer clients can talk to older servers.
type Command struct {
	ID uint64 `json:"id"`
	Op string `json:"op"`

	// connect, refresh
	Token  string `json:"token,omitempty"`
	Client string `json:"client,omitempty"` // client library name and version, for logs

	// subscribe, unsubscribe, publish, history, presence
	Channel string `json:"channel,omitempty"`

	// subscribe with recover, history since a position
	Recover bool   `json:"recover,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
	Offset  uint64 `json:"offset,omitempty"`

	// history
	Limit int `json:"limit,omitempty"`

	// publish, rpc
	Data json.RawMessage `json:"data,omitempty"`

	// rpc: the module method, such as "call.join"
	Method string `json:"method,omitempty"`
}

// MaxChannelLength bounds a channel name in bytes.
const MaxChannelLength = 255

// DecodeCommands parses one inbound frame. A frame holds one JSON command or
// several separated by newlines (JSON lines), so a client can batch commands.
// It returns the commands parsed before the first bad one and, for the bad
// one, a *BadCommand carrying whatever id could be read, so that the caller can
// answer it. It never panics on any input.
func DecodeCommands(frame []byte, dst []Command) ([]Command, *BadCommand) {
	if !utf8.Valid(frame) {
		return dst, &BadCommand{Err: ErrBadRequest.WithMessage("frame is not valid UTF-8")}
	}
	for len(frame) > 0 {
		var line []byte
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			line, frame = frame, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var cmd Command
		if err := json.Unmarshal(line, &cmd); err != nil {
			return dst, &BadCommand{ID: salvageID(line), Err: ErrBadRequest.WithMessage("malformed JSON command")}
		}
		if err := cmd.Validate(); err != nil {
			return dst, &BadCommand{ID: cmd.ID, Err: err}
		}
		dst = append(dst, cmd)
	}
	return dst, nil
}

// BadCommand describes a command that could not be decoded or validated.
type BadCommand struct {
	ID  uint64 // 0 when no id could be read
	Err *Error
}

// Validate checks the fields every op needs, independent of server state.
func (c *Command) Validate() *Error {
	if c.ID == 0 {
		return ErrBadRequest.WithMessage("command needs a non-zero id")
	}
	switch c.Op {
	case OpConnect, OpPing:
	case OpRefresh:
		if c.Token == "" {
			return ErrBadRequest.WithMessage("refresh needs a token")
		}
	case OpSubscribe, OpUnsubscribe, OpHistory, OpPresence:
		if err := ValidateChannel(c.Channel); err != nil {
			return err
		}
		if c.Limit < 0 {
			return ErrBadRequest.WithMessage("limit must not be negative")
		}
	case OpPublish:
		if err := ValidateChannel(c.Channel); err != nil {
			return err
		}
		if len(c.Data) == 0 {
			return ErrBadData.WithMessage("publish needs data")
		}
	case OpRPC:
		if c.Method == "" || len(c.Method) > 64 {
			return ErrBadRequest.WithMessage("rpc needs a method of 1-64 bytes")
		}
		if len(c.Data) > 0 && !json.Valid(c.Data) {
			return ErrBadData
		}
	case "":
		return ErrBadRequest.WithMessage("command needs an op")
	default:
		return ErrUnknownOp.WithMessage("unknown op " + quoteShort(c.Op))
	}
	return nil
}

// ValidateChannel checks a channel name: 1–255 bytes of printable ASCII
// letters, digits and the punctuation "_-.:@=/#,". A namespace is the part
// before the first ':'.
func ValidateChannel(ch string) *Error {
	if len(ch) == 0 || len(ch) > MaxChannelLength {
		return ErrBadChannel.WithMessage("channel name must be 1-255 bytes")
	}
	for i := 0; i < len(ch); i++ {
		c := ch[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '-' || c == '.' || c == ':' || c == '@' || c == '=' || c == '/' || c == '#' || c == ',':
		default:
			return ErrBadChannel.WithMessage("channel name has a character outside [A-Za-z0-9_-.:@=/#,]")
		}
	}
	return nil
}

// Namespace returns the namespace of a channel: the part before the first ':',
// or "" when there is none.
func Namespace(ch string) string {
	if i := strings.IndexByte(ch, ':'); i >= 0 {
		return ch[:i]
	}
	return ""
}

// salvageID reads the "id" of a command whose other fields are malformed, so
// the error reply can still be matched by the client.
func salvageID(line []byte) uint64 {
	var probe struct {
		ID uint64 `json:"id"`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return 0
		}
		if key == "id" {
			if err := dec.Decode(&probe.ID); err != nil {
				return 0
			}
			return probe.ID
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return 0
		}
	}
	return 0
}

func quoteShort(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
