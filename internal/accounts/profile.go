package accounts

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // image.DecodeConfig of GIF avatars
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// Profile limits.
const (
	MaxDisplayName = 64      // characters of a display name
	MaxAvatar      = 1 << 20 // bytes of an avatar image
	MaxAvatarSide  = 4096    // pixels of an avatar's width or height
)

// Profile changes a user may make (display name, avatar set or removed,
// together): ProfileChangeRate a minute on average, ProfileChangeBurst at
// once. Each change is signalled to every room of the user (Config.OnProfile)
// and an avatar is up to MaxAvatar bytes written to the store, so a script
// looping on PATCH /me would otherwise flood its rooms and the database.
// Per server process, like the chat's typing and upload limits.
const (
	ProfileChangeRate  = 10 // a minute
	ProfileChangeBurst = 10
)

// AllowProfileChange charges one profile change to userID. When its bucket
// is empty it returns false and how long until the next change is allowed.
// The REST layer charges it before it reads the request body.
func (s *Service) AllowProfileChange(userID int64) (time.Duration, bool) {
	return s.profileChanges.Allow(strconv.FormatInt(userID, 10))
}

// Errors of profile changes.
var (
	ErrAvatarTooLarge = protocol.ErrMessageTooLarge.WithMessage("an avatar must be at most 1 MiB")
	ErrAvatarType     = protocol.ErrBadRequest.WithMessage("an avatar must be a PNG, JPEG, GIF or WebP image of at most 4096×4096 pixels (the type is read from the bytes)")
	errNoAvatar       = protocol.ErrNotFound.WithMessage("this user has no avatar")
	errNoSuchUser     = protocol.ErrNotFound.WithMessage("no such user")
)

// ValidateDisplayName checks a display name (already trimmed of
// surrounding spaces): at most 64 characters of valid UTF-8 without control
// or format characters. Format characters (bidirectional overrides,
// zero-width joiners and spaces) are refused because they let one name
// render as another's; "" clears the name.
func ValidateDisplayName(name string) *protocol.Error {
	if !utf8.ValidString(name) {
		return protocol.ErrBadRequest.WithMessage("display_name must be valid UTF-8")
	}
	if utf8.RuneCountInString(name) > MaxDisplayName {
		return protocol.ErrBadRequest.WithMessage("display_name must be at most 64 characters")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return protocol.ErrBadRequest.WithMessage("display_name must not contain control or invisible formatting characters")
		}
	}
	return nil
}

// SetDisplayName sets userID's display name (surrounding spaces trimmed;
// "" clears it) and returns the updated user.
func (s *Service) SetDisplayName(ctx context.Context, userID int64, name string) (store.User, error) {
	name = strings.TrimSpace(name)
	if perr := ValidateDisplayName(name); perr != nil {
		return store.User{}, perr
	}
	u, err := s.st.SetDisplayName(ctx, userID, name)
	if err != nil {
		return store.User{}, fmt.Errorf("accounts: set display name: %w", err)
	}
	s.profileChanged(ctx, u)
	return u, nil
}

// SetAvatar checks an uploaded avatar and stores it for userID. Its type is
// sniffed from the bytes, never taken from the client, and must be PNG,
// JPEG, GIF or WebP; PNG, JPEG and GIF headers must also decode, and every
// image must be at most MaxAvatarSide on each side, so a stored avatar is a
// picture a browser shows, not another file under an image's name.
func (s *Service) SetAvatar(ctx context.Context, userID int64, data []byte) (store.User, error) {
	if len(data) > MaxAvatar {
		return store.User{}, ErrAvatarTooLarge
	}
	ct, ok := AvatarType(data)
	if !ok {
		return store.User{}, ErrAvatarType
	}
	u, err := s.st.SetAvatar(ctx, userID, store.Avatar{ContentType: ct, Data: data})
	if err != nil {
		return store.User{}, fmt.Errorf("accounts: set avatar: %w", err)
	}
	s.profileChanged(ctx, u)
	return u, nil
}

// RemoveAvatar removes userID's avatar.
func (s *Service) RemoveAvatar(ctx context.Context, userID int64) (store.User, error) {
	u, err := s.st.SetAvatar(ctx, userID, store.Avatar{})
	if err != nil {
		return store.User{}, fmt.Errorf("accounts: remove avatar: %w", err)
	}
	s.profileChanged(ctx, u)
	return u, nil
}

// profileChanged runs Config.OnProfile for u, whose profile changed.
func (s *Service) profileChanged(ctx context.Context, u store.User) {
	if s.cfg.OnProfile != nil {
		s.cfg.OnProfile(ctx, u)
	}
}

// Profile returns the user named name (404 if none).
func (s *Service) Profile(ctx context.Context, name string) (store.User, error) {
	u, err := s.st.GetUserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, errNoSuchUser
	}
	if err != nil {
		return store.User{}, fmt.Errorf("accounts: profile of %s: %w", name, err)
	}
	u.PasswordHash = ""
	return u, nil
}

// Avatar returns the avatar of the user named name and the user (404 if
// either is missing).
func (s *Service) Avatar(ctx context.Context, name string) (store.Avatar, store.User, error) {
	u, err := s.Profile(ctx, name)
	if err != nil {
		return store.Avatar{}, store.User{}, err
	}
	a, err := s.st.GetAvatar(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Avatar{}, store.User{}, errNoAvatar
	}
	if err != nil {
		return store.Avatar{}, store.User{}, fmt.Errorf("accounts: avatar of %s: %w", name, err)
	}
	return a, u, nil
}

// AvatarVersion is the version of u's avatar that its URL carries ("" when
// u has none): a new avatar gets a new URL, so a cached one is never shown
// in its place.
func AvatarVersion(u store.User) string {
	if u.AvatarAt.IsZero() {
		return ""
	}
	return strconv.FormatInt(u.AvatarAt.UnixMicro(), 36)
}

// AvatarURL is the path of u's avatar, "" when u has none.
func AvatarURL(u store.User) string {
	v := AvatarVersion(u)
	if v == "" {
		return ""
	}
	return "/api/v1/users/" + url.PathEscape(u.Username) + "/avatar?v=" + v
}

// AvatarType reports the image type of an avatar's bytes, and whether it
// is one Sori accepts (see SetAvatar).
func AvatarType(data []byte) (string, bool) {
	ct := http.DetectContentType(data)
	var w, h int
	switch ct {
	case "image/png", "image/jpeg", "image/gif":
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return "", false
		}
		w, h = cfg.Width, cfg.Height
	case "image/webp":
		var ok bool
		if w, h, ok = webpSize(data); !ok {
			return "", false
		}
	default:
		return "", false
	}
	return ct, w > 0 && h > 0 && w <= MaxAvatarSide && h <= MaxAvatarSide
}

// webpSize reads the canvas size from a WebP file's first chunk: VP8X
// (extended), VP8L (lossless) or VP8 (lossy). The standard library has no
// WebP decoder, and the header is all a size check needs.
func webpSize(b []byte) (w, h int, ok bool) {
	if len(b) < 30 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return 0, 0, false
	}
	chunk, p := string(b[12:16]), b[20:]
	u24 := func(x []byte) int { return int(x[0]) | int(x[1])<<8 | int(x[2])<<16 }
	switch chunk {
	case "VP8X":
		return 1 + u24(p[4:7]), 1 + u24(p[7:10]), true
	case "VP8L":
		if p[0] != 0x2f {
			return 0, 0, false
		}
		bits := binary.LittleEndian.Uint32(p[1:5])
		return 1 + int(bits&0x3fff), 1 + int(bits>>14&0x3fff), true
	case "VP8 ":
		// A key frame: 3-byte frame tag, start code 9d 01 2a, then 14-bit
		// width and height.
		if p[3] != 0x9d || p[4] != 0x01 || p[5] != 0x2a {
			return 0, 0, false
		}
		return int(binary.LittleEndian.Uint16(p[6:8]) & 0x3fff), int(binary.LittleEndian.Uint16(p[8:10]) & 0x3fff), true
	}
	return 0, 0, false
}
