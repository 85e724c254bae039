package accounts

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sori-dev/sori/internal/auth"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/ratelimit"
	"github.com/sori-dev/sori/internal/store"
)

// Cookie and header names of browser sessions.
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
			s.writeAuthErr(w, r, err)
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

func (s *Service) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	perr := httpx.ProtocolError(err)
	if perr == nil {
		s.log.Error("accounts request failed", "path", r.URL.Path, "err", err)
		perr = protocol.ErrInternal
	}
	httpx.WriteError(w, perr)
}

// writeAuthErr answers a request whose credentials did not prove a user:
// 401 with a challenge, unless the failure was the server's own.
func (s *Service) writeAuthErr(w http.ResponseWriter, r *http.Request, err error) {
	perr := httpx.ProtocolError(err)
	if perr == nil {
		s.writeErr(w, r, err)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="sori"`)
	httpx.WriteErrorStatus(w, http.StatusUnauthorized, perr)
}

// Routes registers the account endpoints (see docs/api.md) with handle.
func (s *Service) Routes(handle func(pattern string, h http.Handler)) {
	handle("POST /api/v1/auth/signup", http.HandlerFunc(s.handleSignup))
	handle("POST /api/v1/auth/login", http.HandlerFunc(s.handleLogin))
	handle("POST /api/v1/auth/logout", s.Require(s.handleLogout))
	handle("POST /api/v1/auth/logout-all", s.Require(s.handleLogoutAll))
	handle("GET /api/v1/me", s.Require(s.handleMe))
	handle("PUT /api/v1/me/password", s.Require(s.handleChangePassword))
	handle("POST /api/v1/auth/connect-token", s.Require(s.handleConnectToken))
	handle("GET /api/v1/auth/tokens", s.Require(s.handleListTokens))
	handle("POST /api/v1/auth/tokens", s.Require(s.handleCreateToken))
	handle("DELETE /api/v1/auth/tokens/{id}", s.Require(s.handleRevokeToken))
}

// UserJSON is a user as the API shows it.
type UserJSON struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	IsAdmin   bool      `json:"is_admin"`
	CreatedAt time.Time `json:"created_at"`
}

// UserView returns the public view of u (never its password hash).
func UserView(u store.User) UserJSON {
	return UserJSON{ID: u.ID, Username: u.Username, IsAdmin: u.IsAdmin, CreatedAt: u.CreatedAt}
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Kind "web" (default) answers with a session cookie; "api" with a
	// bearer token in the body, for scripts and SDKs.
	Kind  string `json:"kind"`
	Label string `json:"label"`
}

type loginResult struct {
	User      UserJSON `json:"user"`
	CSRFToken string   `json:"csrf_token,omitempty"`
	Token     string   `json:"token,omitempty"`
	TokenID   string   `json:"token_id,omitempty"`
}

// decodeCredentials reads a sign-up or login body, answering the request
// itself (and returning false) when the body is malformed.
func decodeCredentials(w http.ResponseWriter, r *http.Request) (credentials, bool) {
	var c credentials
	perr := httpx.DecodeJSON(w, r, &c)
	if perr == nil && c.Kind != "" && c.Kind != "web" && c.Kind != "api" {
		perr = protocol.ErrBadRequest.WithMessage(`kind must be "web" or "api"`)
	}
	if perr != nil {
		httpx.WriteError(w, perr)
		return credentials{}, false
	}
	return c, true
}

// Password attempts are rate limited before any argon2 work: per client
// address for sign-up, login and password change, and per username for
// login and password change. A successful login or change gives the
// username's token back, so that only failures use it up; the address's
// token is spent either way. Limiting by username lets anyone slow down
// logins to a name they know; that is the price of stopping guesses spread
// over many addresses, and the owner's existing sessions keep working.

// allowClient charges one attempt to r's client, answering 429 and
// returning false when its bucket is empty.
func (s *Service) allowClient(w http.ResponseWriter, r *http.Request) bool {
	wait, ok := s.clientAttempts.Allow(ratelimit.ClientKey(r))
	if !ok {
		httpx.WriteRateLimited(w, wait, "too many password attempts from this address; try again later")
	}
	return ok
}

// allowUser charges one attempt to the username key (see userKey),
// answering 429 and returning false when its bucket is empty. An empty key
// is not charged.
func (s *Service) allowUser(w http.ResponseWriter, key string) bool {
	if key == "" {
		return true
	}
	wait, ok := s.userAttempts.Allow(key)
	if !ok {
		httpx.WriteRateLimited(w, wait, "too many password attempts for this username; try again later")
	}
	return ok
}

// userKey is the rate limit key of a username: folded, since usernames are
// unique ignoring case. A name longer than any username is refused by
// Login without hashing, so it is not keyed (and cannot make a long key).
func userKey(name string) string {
	if len(name) > MaxUsername {
		return ""
	}
	return strings.ToLower(name)
}

func (s *Service) handleSignup(w http.ResponseWriter, r *http.Request) {
	if !s.allowClient(w, r) {
		return
	}
	c, ok := decodeCredentials(w, r)
	if !ok {
		return
	}
	u, err := s.SignUp(r.Context(), c.Username, c.Password)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.issue(w, r, u, c, http.StatusCreated)
}

func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !s.allowClient(w, r) {
		return
	}
	c, ok := decodeCredentials(w, r)
	if !ok {
		return
	}
	key := userKey(c.Username)
	if !s.allowUser(w, key) {
		return
	}
	u, err := s.Login(r.Context(), c.Username, c.Password)
	if err != nil {
		s.writeAuthErr(w, r, err)
		return
	}
	s.userAttempts.Refund(key)
	s.issue(w, r, u, c, http.StatusOK)
}

// issue answers a successful sign-up or login with a cookie session or an
// API token.
func (s *Service) issue(w http.ResponseWriter, r *http.Request, u store.User, c credentials, status int) {
	if c.Kind == "api" {
		tok, sess, err := s.CreateAPIToken(r.Context(), u, c.Label, 0)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		httpx.WriteJSON(w, status, loginResult{User: UserView(u), Token: tok, TokenID: sess.ID})
		return
	}
	tok, sess, err := s.StartSession(r.Context(), u)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.setCookies(w, r, tok, sess.CSRFToken, int(s.cfg.SessionTTL/time.Second))
	httpx.WriteJSON(w, status, loginResult{User: UserView(u), CSRFToken: sess.CSRFToken})
}

// setCookies sets (maxAge > 0) or clears (maxAge < 0) the session and CSRF
// cookies. Secure is set when the request came over TLS, directly or
// through a proxy that says so, so that plain-HTTP development on loopback
// still works.
func (s *Service) setCookies(w http.ResponseWriter, r *http.Request, tok, csrf string, maxAge int) {
	secure := r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: tok, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: csrf, Path: "/", MaxAge: maxAge,
		Secure: secure, SameSite: http.SameSiteLaxMode})
}

func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request, id Identity) {
	if id.SessionID != "" {
		if err := s.EndSession(r.Context(), id.SessionID); err != nil {
			s.writeErr(w, r, err)
			return
		}
	}
	if id.Method == MethodCookie {
		s.setCookies(w, r, "", "", -1)
	}
	httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// primary answers 403 (ErrNeedsLogin) and returns false unless id proved
// itself with a primary credential (a login session or an API token): a
// connection token never mints or changes credentials, so that a leaked one
// dies when it expires or when the user's credentials are revoked.
func primary(w http.ResponseWriter, id Identity) bool {
	if id.Method == MethodJWT {
		httpx.WriteError(w, ErrNeedsLogin)
		return false
	}
	return true
}

// handleLogoutAll revokes every credential of the user: sessions (this one
// too), API tokens, connection tokens; open connections close with 4501.
func (s *Service) handleLogoutAll(w http.ResponseWriter, r *http.Request, id Identity) {
	if !primary(w, id) {
		return
	}
	if err := s.LogOutEverywhere(r.Context(), id.User.ID); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if id.Method == MethodCookie {
		s.setCookies(w, r, "", "", -1)
	}
	httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

type meResult struct {
	User      UserJSON `json:"user"`
	Method    Method   `json:"auth"`
	CSRFToken string   `json:"csrf_token,omitempty"`
}

func (s *Service) handleMe(w http.ResponseWriter, _ *http.Request, id Identity) {
	httpx.WriteJSON(w, http.StatusOK, meResult{User: UserView(id.User), Method: id.Method, CSRFToken: id.CSRFToken})
}

type passwordChange struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// handleChangePassword needs the old password even from a logged-in user,
// so that a stolen session cannot take the account over. All sessions end;
// a cookie caller gets a fresh one.
func (s *Service) handleChangePassword(w http.ResponseWriter, r *http.Request, id Identity) {
	if !primary(w, id) || !s.allowClient(w, r) {
		return
	}
	var req passwordChange
	if perr := httpx.DecodeJSON(w, r, &req); perr != nil {
		httpx.WriteError(w, perr)
		return
	}
	key := userKey(id.User.Username)
	if !s.allowUser(w, key) {
		return
	}
	if _, err := s.Login(r.Context(), id.User.Username, req.OldPassword); err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.userAttempts.Refund(key)
	if err := s.SetPassword(r.Context(), id.User.ID, req.NewPassword); err != nil {
		s.writeErr(w, r, err)
		return
	}
	res := meResult{User: UserView(id.User), Method: id.Method}
	if id.Method == MethodCookie {
		tok, sess, err := s.StartSession(r.Context(), id.User)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		s.setCookies(w, r, tok, sess.CSRFToken, int(s.cfg.SessionTTL/time.Second))
		res.CSRFToken = sess.CSRFToken
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

type connectTokenResult struct {
	Token     string `json:"token"`
	User      string `json:"user"`
	ExpiresIn int64  `json:"expires_in"` // seconds
}

func (s *Service) handleConnectToken(w http.ResponseWriter, r *http.Request, id Identity) {
	if !primary(w, id) {
		return
	}
	tok, ttl, err := s.MintConnectionToken(id.User)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, connectTokenResult{Token: tok, User: id.User.Username, ExpiresIn: int64(ttl / time.Second)})
}

// TokenJSON is an API token as listed (its secret is shown only once, at
// creation).
type TokenJSON struct {
	ID        string     `json:"id"`
	Label     string     `json:"label"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Token     string     `json:"token,omitempty"`
}

func tokenView(ss store.Session) TokenJSON {
	t := TokenJSON{ID: ss.ID, Label: ss.Label, CreatedAt: ss.CreatedAt}
	if !ss.ExpiresAt.IsZero() {
		e := ss.ExpiresAt
		t.ExpiresAt = &e
	}
	return t
}

func (s *Service) handleListTokens(w http.ResponseWriter, r *http.Request, id Identity) {
	toks, err := s.ListAPITokens(r.Context(), id.User.ID)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	out := make([]TokenJSON, 0, len(toks))
	for _, t := range toks {
		out = append(out, tokenView(t))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

type createToken struct {
	Label      string `json:"label"`
	TTLSeconds int64  `json:"ttl_seconds"` // 0 = never expires
}

func (s *Service) handleCreateToken(w http.ResponseWriter, r *http.Request, id Identity) {
	if !primary(w, id) {
		return
	}
	var req createToken
	if perr := httpx.DecodeJSON(w, r, &req); perr != nil {
		httpx.WriteError(w, perr)
		return
	}
	if req.TTLSeconds < 0 || req.TTLSeconds > 10*365*24*3600 {
		httpx.WriteError(w, protocol.ErrBadRequest.WithMessage("ttl_seconds must be between 0 (never expires) and ten years"))
		return
	}
	tok, sess, err := s.CreateAPIToken(r.Context(), id.User, req.Label, time.Duration(req.TTLSeconds)*time.Second)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	v := tokenView(sess)
	v.Token = tok
	httpx.WriteJSON(w, http.StatusCreated, v)
}

func (s *Service) handleRevokeToken(w http.ResponseWriter, r *http.Request, id Identity) {
	if err := s.RevokeAPIToken(r.Context(), id.User.ID, r.PathValue("id")); err != nil {
		s.writeErr(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct{}{})
}
