// Package httpx holds the JSON plumbing shared by Sori's REST handlers (chat
// and accounts): numbered JSON errors in the server API's shape
// {"error":{"code":N,"message":"…"}}, status mapping and bounded JSON
// request decoding. It must never import chat, accounts, server or any other
// Sori package but protocol.
package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/sori-dev/sori/internal/protocol"
)

// MaxJSONBody bounds a JSON request body.
const MaxJSONBody = 64 << 10

type errorBody struct {
	Error *protocol.Error `json:"error"`
}

// WriteJSON writes v as a JSON response with status. Responses are never
// cached: they carry per-user data.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes e with the HTTP status that StatusOf picks for it.
func WriteError(w http.ResponseWriter, e *protocol.Error) {
	WriteJSON(w, StatusOf(e), errorBody{Error: e})
}

// WriteErrorStatus writes e with an explicit status (401 for a missing login).
func WriteErrorStatus(w http.ResponseWriter, status int, e *protocol.Error) {
	WriteJSON(w, status, errorBody{Error: e})
}

// WriteRateLimited answers 429 with error 109 and a Retry-After header of
// wait in whole seconds, rounded up (RFC 9110, section 10.2.3).
func WriteRateLimited(w http.ResponseWriter, wait time.Duration, message string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	WriteError(w, protocol.ErrRateLimited.WithMessage(message))
}

// StatusOf maps a numbered error to its HTTP status. It is the one table for
// every HTTP surface of the server (chat REST, accounts, the server API, the
// RTC config endpoint), so a code means the same status wherever it comes from.
//
// 115 ("not available for this channel/room": no history, no presence, uploads
// off) is 409, not 503: it is a property of the target that a retry will not
// change, and 503 would invite clients and proxies to retry.
func StatusOf(e *protocol.Error) int {
	switch e.Code {
	case protocol.ErrInternal.Code:
		return http.StatusInternalServerError
	case protocol.ErrPermissionDenied.Code:
		return http.StatusForbidden
	case protocol.ErrRateLimited.Code:
		return http.StatusTooManyRequests
	case protocol.ErrMessageTooLarge.Code:
		return http.StatusRequestEntityTooLarge
	case protocol.ErrTokenExpired.Code, protocol.ErrBadToken.Code:
		return http.StatusUnauthorized
	case protocol.ErrUnavailable.Code, protocol.ErrConflict.Code, protocol.ErrCallFull.Code,
		protocol.ErrAlreadySubscribed.Code, protocol.ErrAlreadyConnected.Code:
		return http.StatusConflict
	case protocol.ErrNotFound.Code:
		return http.StatusNotFound
	case protocol.ErrQuota.Code, protocol.ErrStorageLow.Code:
		return http.StatusInsufficientStorage
	case protocol.ErrStoreDown.Code:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// ProtocolError returns the *protocol.Error inside err, or nil.
func ProtocolError(err error) *protocol.Error {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr
	}
	return nil
}

// DecodeJSON reads r's body (at most MaxJSONBody bytes) into v. The body must
// be declared as JSON: a cross-site HTML form cannot send that content type
// without a CORS preflight, which closes the login-CSRF hole of form posts.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) *protocol.Error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		return protocol.ErrBadRequest.WithMessage("Content-Type must be application/json")
	}
	body := http.MaxBytesReader(w, r.Body, MaxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return protocol.ErrMessageTooLarge.WithMessage("request body too large")
		}
		return protocol.ErrBadRequest.WithMessage("body must be a JSON object of the documented shape")
	}
	if _, err := dec.Token(); err != io.EOF {
		return protocol.ErrBadRequest.WithMessage("body must hold exactly one JSON value")
	}
	return nil
}
