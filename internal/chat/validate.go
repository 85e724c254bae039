package chat

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sori-dev/sori/internal/protocol"
)

// Limits of what users may write.
const (
	MaxRoomName    = 64   // bytes
	MaxRoomTitle   = 100  // characters
	MaxTopic       = 500  // characters
	MaxMessageText = 4000 // characters
	MaxEmoji       = 32   // bytes: one emoji with modifiers, or a short :name:
	MaxFileName    = 255  // bytes
	MaxSearchQuery = 200  // bytes
)

func badRequest(msg string) *protocol.Error { return protocol.ErrBadRequest.WithMessage(msg) }

// ValidateRoomName checks a room's slug: 1–64 ASCII letters, digits, '-' or
// '_', starting with a letter or digit.
func ValidateRoomName(name string) *protocol.Error {
	if name == "" || len(name) > MaxRoomName {
		return badRequest("room name must be 1 to 64 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_') {
			return badRequest("room name may hold only letters, digits, '-' and '_', and must start with a letter or digit")
		}
	}
	return nil
}

// checkText validates user text: valid UTF-8, at most max characters, no
// control characters except, when multiline, newline and tab; and not only
// whitespace when required.
func checkText(field, s string, max int, required, multiline bool) *protocol.Error {
	if !utf8.ValidString(s) {
		return badRequest(field + " must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return badRequest(field + " must be at most " + strconv.Itoa(max) + " characters")
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return badRequest(field + " must not contain control characters")
		}
	}
	if required && strings.TrimSpace(s) == "" {
		return badRequest(field + " must not be empty")
	}
	return nil
}

// ValidateTitle checks a room title (may be empty).
func ValidateTitle(s string) *protocol.Error {
	return checkText("title", s, MaxRoomTitle, false, false)
}

// ValidateTopic checks a room topic (may be empty).
func ValidateTopic(s string) *protocol.Error { return checkText("topic", s, MaxTopic, false, false) }

// ValidateMessageText checks a message body: 1–4000 characters, newlines
// and tabs allowed, other control characters not.
func ValidateMessageText(s string) *protocol.Error {
	return checkText("text", s, MaxMessageText, true, true)
}

// ValidateEmoji checks a reaction: 1–32 bytes of printable UTF-8 without
// spaces.
func ValidateEmoji(s string) *protocol.Error {
	if s == "" || len(s) > MaxEmoji {
		return badRequest("emoji must be 1 to 32 bytes")
	}
	if perr := checkText("emoji", s, MaxEmoji, true, false); perr != nil {
		return perr
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return badRequest("emoji must not contain spaces")
	}
	return nil
}

// ValidateFileName checks an uploaded file's name: a plain name (no path),
// 1–255 bytes, no control characters and no bidirectional formatting
// characters, which would let "invoice\u202Efdp.exe" display as
// "invoiceexe.pdf" in the room and in the browser's download bar.
func ValidateFileName(s string) *protocol.Error {
	if s == "" || len(s) > MaxFileName {
		return badRequest("file name must be 1 to 255 bytes")
	}
	if perr := checkText("file name", s, MaxFileName, true, false); perr != nil {
		return perr
	}
	if strings.ContainsAny(s, `/\`) || s == "." || s == ".." {
		return badRequest("file name must not contain a path")
	}
	if strings.IndexFunc(s, isBidiControl) >= 0 {
		return badRequest("file name must not contain bidirectional formatting characters")
	}
	return nil
}

// isBidiControl reports whether r is an explicit bidirectional formatting
// character (Unicode's Bidi_Control property): marks, embeddings, overrides
// and isolates.
func isBidiControl(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }

// ValidateQuery checks a search query.
func ValidateQuery(s string) *protocol.Error {
	if len(s) > MaxSearchQuery {
		return badRequest("query must be at most 200 bytes")
	}
	return checkText("query", s, MaxSearchQuery, true, false)
}

// ParseID parses a positive decimal id (room id, message seq) as written in
// a URL or channel name: digits only, no sign, no leading zero.
func ParseID(s string) (int64, bool) {
	if s == "" || len(s) > 18 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// MaxClientID bounds a message's client_id, in bytes.
const MaxClientID = 64

// ValidateClientID checks a message's idempotency key: empty (none), or
// 1–64 ASCII letters, digits, '_' or '-'.
func ValidateClientID(s string) *protocol.Error {
	if len(s) > MaxClientID {
		return badRequest("client_id must be at most 64 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '_' && c != '-' {
			return badRequest("client_id may hold only letters, digits, '_' and '-'")
		}
	}
	return nil
}
