package accounts

import (
	"unicode"
	"unicode/utf8"

	"github.com/sori-dev/sori/internal/protocol"
)

// Username and password limits.
const (
	MinUsername = 2
	MaxUsername = 32
	MinPassword = 8
	MaxPassword = 256 // bytes; bounds the work an attacker can hand to argon2
)

// ValidateUsername checks a username: 2–32 ASCII letters, digits, '_', '-'
// or '.', starting with a letter or digit. Keeping names to ASCII makes the
// case-insensitive uniqueness of the store exact (no Unicode confusables) and
// lets a username be the subject of a connection token and a channel name
// part as is.
func ValidateUsername(name string) *protocol.Error {
	if len(name) < MinUsername || len(name) > MaxUsername {
		return protocol.ErrBadRequest.WithMessage("username must be 2 to 32 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-' && c != '.') {
			return protocol.ErrBadRequest.WithMessage("username may hold only letters, digits, '_', '-' and '.', and must start with a letter or digit")
		}
	}
	return nil
}

// ValidatePassword checks a new password: 8–256 bytes of valid UTF-8 without
// control characters. There is no composition rule: length is what counts.
func ValidatePassword(pw string) *protocol.Error {
	if len(pw) > MaxPassword {
		return protocol.ErrBadRequest.WithMessage("password must be at most 256 bytes")
	}
	if !utf8.ValidString(pw) {
		return protocol.ErrBadRequest.WithMessage("password must be valid UTF-8")
	}
	if utf8.RuneCountInString(pw) < MinPassword {
		return protocol.ErrBadRequest.WithMessage("password must be at least 8 characters")
	}
	for _, r := range pw {
		if unicode.IsControl(r) {
			return protocol.ErrBadRequest.WithMessage("password must not contain control characters")
		}
	}
	return nil
}

// validText reports whether s is valid UTF-8 without control characters.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
