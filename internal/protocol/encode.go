package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Push kinds the server sends without a command.
const (
	PushPublication = "pub"
	PushJoin        = "join"
	PushLeave       = "leave"
	PushUnsubscribe = "unsub"
	PushDisconnect  = "disconnect"
)

// Publication is one message in a channel, at an offset within its epoch.
type Publication struct {
	Offset uint64          `json:"offset"`
	Data   json.RawMessage `json:"data"`
	User   string          `json:"user,omitempty"` // publisher, empty for the server API
	Time   int64           `json:"time,omitempty"` // unix milliseconds when accepted
}

// ClientInfo describes one connection in presence and join/leave pushes.
type ClientInfo struct {
	User   string `json:"user"`
	Client string `json:"client"` // connection id, unique per server
}

// Reply is the single answer to a command: Result on success, Error otherwise.
type Reply struct {
	ID     uint64 `json:"id"`
	Result any    `json:"result,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

// ConnectResult answers connect.
type ConnectResult struct {
	Client    string `json:"client"`
	User      string `json:"user"`
	Version   string `json:"version"`
	ExpiresIn int64  `json:"expires_in,omitempty"` // seconds until the token expires; refresh before
	Ping      int64  `json:"ping"`                 // seconds between server pings
}

// SubscribeResult answers subscribe. When the client asked to recover,
// Publications holds what it missed, in order, and Recovered says whether that
// is everything; when Recovered is false the client must reload its state.
type SubscribeResult struct {
	Epoch        string        `json:"epoch"`
	Offset       uint64        `json:"offset"`
	Recoverable  bool          `json:"recoverable"`
	Recovered    bool          `json:"recovered,omitempty"`
	Publications []Publication `json:"publications,omitempty"`
}

// PublishResult answers publish.
type PublishResult struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
	// Duplicate is set when the publication repeated one the channel
	// already holds (an idempotent retry, see docs/protocol.md): Offset is
	// the earlier one's, and nothing was published again.
	Duplicate bool `json:"duplicate,omitempty"`
}

// HistoryResult answers history.
type HistoryResult struct {
	Epoch        string        `json:"epoch"`
	Offset       uint64        `json:"offset"` // the channel's latest offset
	Publications []Publication `json:"publications"`
}

// PresenceResult answers presence.
type PresenceResult struct {
	Clients []ClientInfo `json:"clients"`
}

// RefreshResult answers refresh.
type RefreshResult struct {
	ExpiresIn int64 `json:"expires_in,omitempty"`
}

// EncodeReply encodes a reply frame.
func EncodeReply(r Reply) []byte {
	b, err := json.Marshal(r)
	if err != nil { // only a Result holding a type json cannot encode
		b, _ = json.Marshal(Reply{ID: r.ID, Error: ErrInternal})
	}
	return b
}

// EncodeError encodes an error reply.
func EncodeError(id uint64, e *Error) []byte { return EncodeReply(Reply{ID: id, Error: e}) }

// AppendPublication appends the push frame for one publication. It is the hot
// path of fan-out: the frame is built once per publication and the same bytes
// go to every subscriber, so it avoids reflection.
//
//	{"push":"pub","channel":"chat:lobby","offset":42,"data":{...},"user":"alice","time":1700000000000}
func AppendPublication(b []byte, channel string, p *Publication) []byte {
	b = append(b, `{"push":"pub","channel":`...)
	b = AppendString(b, channel)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, p.Offset, 10)
	b = append(b, `,"data":`...)
	b = append(b, p.Data...)
	if p.User != "" {
		b = append(b, `,"user":`...)
		b = AppendString(b, p.User)
	}
	if p.Time != 0 {
		b = append(b, `,"time":`...)
		b = strconv.AppendInt(b, p.Time, 10)
	}
	return append(b, '}')
}

// EncodeJoinLeave encodes a join or leave push.
func EncodeJoinLeave(kind, channel string, info ClientInfo) []byte {
	b, _ := json.Marshal(struct {
		Push    string     `json:"push"`
		Channel string     `json:"channel"`
		Info    ClientInfo `json:"info"`
	}{kind, channel, info})
	return b
}

// EncodeUnsubscribe encodes a server-side unsubscribe push.
func EncodeUnsubscribe(channel string, code int, reason string) []byte {
	b, _ := json.Marshal(struct {
		Push    string `json:"push"`
		Channel string `json:"channel"`
		Code    int    `json:"code"`
		Reason  string `json:"reason"`
	}{PushUnsubscribe, channel, code, reason})
	return b
}

// EncodeDisconnect encodes a disconnect push, sent before closing on
// transports that have no close frame of their own.
func EncodeDisconnect(d Disconnect) []byte {
	b, _ := json.Marshal(struct {
		Push string `json:"push"`
		Disconnect
	}{PushDisconnect, d})
	return b
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, like
// encoding/json.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b': // encoding/json (Go 1.22+) writes these two short forms too
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
