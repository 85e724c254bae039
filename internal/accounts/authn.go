package accounts

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/store"
)

// Cookie and header names of browser sessions. The REST layer sets the
// cookies; Authenticate and Require read them.
const (
	SessionCookie = "sori_session" // HttpOnly: the session token
	CSRFCookie    = "sori_csrf"    // readable by the page's script, echoed in CSRFHeader
	CSRFHeader    = "X-CSRF-Token"
)

// Authenticate tells who sent r: an "Authorization: Bearer" API token or JWT
// first, else the session cookie. It returns ErrNotLoggedIn (or a token
// error) when neither proves a user. It does not check CSRF; Require does.
func (s *Service) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	if tok := bearer(r.Header.Get("Authorization")); tok != "" {
		if strings.HasPrefix(tok, tokenPrefix) {
			return s.fromSession(ctx, tok, store.SessionAPI, MethodToken)
		}
		return s.fromJWT(ctx, tok)
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return s.fromSession(ctx, c.Value, store.SessionWeb, MethodCookie)
	}
	return Identity{}, ErrNotLoggedIn
}

func (s *Service) fromSession(ctx context.Context, tok string, kind store.SessionKind, m Method) (Identity, error) {
	sess, err := s.st.GetSession(ctx, tok)
	if errors.Is(err, store.ErrNotFound) || err == nil && sess.Kind != kind {
		return Identity{}, ErrNotLoggedIn.WithMessage("session or token unknown or expired; log in again")
	}
	if err != nil {
		return Identity{}, err
	}
	u, err := s.st.GetUser(ctx, sess.UserID)
	if err != nil {
		return Identity{}, err
	}
	if u.Disabled { // a session made while the account was being disabled
		return Identity{}, ErrNotLoggedIn.WithMessage("this account is disabled")
	}
	return Identity{User: u, Method: m, SessionID: sess.ID, CSRFToken: sess.CSRFToken}, nil
}

func (s *Service) fromJWT(ctx context.Context, tok string) (Identity, error) {
	if s.cfg.Verifier == nil {
		return Identity{}, protocol.ErrBadToken
	}
	claims, err := s.cfg.Verifier.Verify(tok)
	if errors.Is(err, auth.ErrTokenExpired) {
		return Identity{}, protocol.ErrTokenExpired
	}
	if errors.Is(err, auth.ErrCheckUnavailable) {
		return Identity{}, protocol.ErrStoreDown
	}
	if err != nil {
		return Identity{}, protocol.ErrBadToken
	}
	u, err := s.UserForSubject(ctx, claims.User())
	if err != nil {
		return Identity{}, err
	}
	return Identity{User: u, Method: MethodJWT}, nil
}

// HandlerFunc is an HTTP handler that runs for an authenticated user.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, id Identity)

// Require authenticates the request and, for a cookie session, checks the
// CSRF token on every unsafe method: the X-CSRF-Token header must equal the
// session's token (compared in constant time). A cross-site page can make the
// browser send the cookie, but cannot read the token to put in the header.
// Bearer-authenticated requests need no CSRF check: browsers never attach
// bearer tokens on their own.
func (s *Service) Require(next HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.Authenticate(r.Context(), r)
		if err != nil {
			s.WriteAuthError(w, r, err)
			return
		}
		if id.Method == MethodCookie && !safeMethod(r.Method) {
			got := r.Header.Get(CSRFHeader)
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(id.CSRFToken)) != 1 {
				httpx.WriteError(w, ErrCSRF)
				return
			}
		}
		next(w, r, id)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// WriteError answers a failed account request: a numbered error with its
// status, anything else 500 and a log line naming the path.
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	perr := httpx.ProtocolError(err)
	if perr == nil {
		s.log.Error("accounts request failed", "path", r.URL.Path, "err", err)
		perr = protocol.ErrInternal
	}
	httpx.WriteError(w, perr)
}

// WriteAuthError answers a request whose credentials did not prove a user:
// 401 with a challenge, unless the failure was the server's own.
func (s *Service) WriteAuthError(w http.ResponseWriter, r *http.Request, err error) {
	perr := httpx.ProtocolError(err)
	if perr == nil {
		s.WriteError(w, r, err)
		return
	}
	if perr.Code == protocol.ErrStoreDown.Code { // the token was not judged: come back
		w.Header().Set("Retry-After", "1")
		httpx.WriteError(w, perr)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="sori"`)
	httpx.WriteErrorStatus(w, http.StatusUnauthorized, perr)
}

func bearer(h string) string {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
