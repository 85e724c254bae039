package rest

import (
	"net/http"
	"strings"
	"time"

	"github.com/sori-dev/sori/internal/accounts"
	"github.com/sori-dev/sori/internal/httpx"
	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/ratelimit"
	"github.com/sori-dev/sori/internal/store"
)

// UserJSON is a user as the API shows it.
type UserJSON struct {
	ID          int64     `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"` // "" = none: show the username
	AvatarURL   string    `json:"avatar_url"`   // "" = none
	IsAdmin     bool      `json:"is_admin"`
	CreatedAt   time.Time `json:"created_at"`
}

// UserView returns the public view of u (never its password hash).
func UserView(u store.User) UserJSON {
	return UserJSON{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, AvatarURL: accounts.AvatarURL(u),
		IsAdmin: u.IsAdmin, CreatedAt: u.CreatedAt}
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Kind "web" (default) answers with a session cookie; "api" with a
	// bearer token in the body, for scripts and SDKs.
	Kind  string `json:"kind"`
	Label string `json:"label"`
	// Invite is the invite code sign-up needs in invite mode.
	Invite string `json:"invite"`
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

// allowClient charges one password attempt to r's client, answering 429
// and returning false when its bucket is empty.
func (a *API) allowClient(w http.ResponseWriter, r *http.Request) bool {
	wait, ok := a.acc.AllowClientAttempt(ratelimit.ClientKey(r))
	if !ok {
		httpx.WriteRateLimited(w, wait, "too many password attempts from this address; try again later")
	}
	return ok
}

// allowUser charges one password attempt to the username, answering 429
// and returning false when its bucket is empty.
func (a *API) allowUser(w http.ResponseWriter, name string) bool {
	wait, ok := a.acc.AllowUserAttempt(name)
	if !ok {
		httpx.WriteRateLimited(w, wait, "too many password attempts for this username; try again later")
	}
	return ok
}

func (a *API) handleSignup(w http.ResponseWriter, r *http.Request) {
	if !a.allowClient(w, r) {
		return
	}
	c, ok := decodeCredentials(w, r)
	if !ok {
		return
	}
	u, err := a.acc.SignUp(r.Context(), c.Username, c.Password, c.Invite)
	if err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	a.issue(w, r, u, c, http.StatusCreated)
}

func (a *API) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !a.allowClient(w, r) {
		return
	}
	c, ok := decodeCredentials(w, r)
	if !ok {
		return
	}
	if !a.allowUser(w, c.Username) {
		return
	}
	u, err := a.acc.Login(r.Context(), c.Username, c.Password)
	if err != nil {
		a.acc.WriteAuthError(w, r, err)
		return
	}
	a.acc.RefundUserAttempt(c.Username)
	a.issue(w, r, u, c, http.StatusOK)
}

// issue answers a successful sign-up or login with a cookie session or an
// API token.
func (a *API) issue(w http.ResponseWriter, r *http.Request, u store.User, c credentials, status int) {
	if c.Kind == "api" {
		tok, sess, err := a.acc.CreateAPIToken(r.Context(), u, c.Label, 0)
		if err != nil {
			a.acc.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, status, loginResult{User: UserView(u), Token: tok, TokenID: sess.ID})
		return
	}
	tok, sess, err := a.acc.StartSession(r.Context(), u)
	if err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	a.setCookies(w, r, tok, sess.CSRFToken, int(a.acc.SessionTTL()/time.Second))
	httpx.WriteJSON(w, status, loginResult{User: UserView(u), CSRFToken: sess.CSRFToken})
}

// setCookies sets (maxAge > 0) or clears (maxAge < 0) the session and CSRF
// cookies. Secure is set when the request came over TLS, directly or
// through a proxy that says so, so that plain-HTTP development on loopback
// still works.
func (a *API) setCookies(w http.ResponseWriter, r *http.Request, tok, csrf string, maxAge int) {
	secure := r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
	http.SetCookie(w, &http.Cookie{Name: accounts.SessionCookie, Value: tok, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: accounts.CSRFCookie, Value: csrf, Path: "/", MaxAge: maxAge,
		Secure: secure, SameSite: http.SameSiteLaxMode})
}

func (a *API) handleLogout(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	if id.SessionID != "" {
		if err := a.acc.EndSession(r.Context(), id.SessionID); err != nil {
			a.acc.WriteError(w, r, err)
			return
		}
	}
	if id.Method == accounts.MethodCookie {
		a.setCookies(w, r, "", "", -1)
	}
	httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// primary answers 403 (accounts.ErrNeedsLogin) and returns false unless id proved
// itself with a primary credential (a login session or an API token): a
// connection token never mints or changes credentials, so that a leaked one
// dies when it expires or when the user's credentials are revoked.
func primary(w http.ResponseWriter, id accounts.Identity) bool {
	if id.Method == accounts.MethodJWT {
		httpx.WriteError(w, accounts.ErrNeedsLogin)
		return false
	}
	return true
}

// handleLogoutAll revokes every credential of the user: sessions (this one
// too), API tokens, connection tokens; open connections close with 4501.
func (a *API) handleLogoutAll(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	if !primary(w, id) {
		return
	}
	if err := a.acc.LogOutEverywhere(r.Context(), id.User.ID); err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	if id.Method == accounts.MethodCookie {
		a.setCookies(w, r, "", "", -1)
	}
	httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

type meResult struct {
	User      UserJSON        `json:"user"`
	Method    accounts.Method `json:"auth"`
	CSRFToken string          `json:"csrf_token,omitempty"`
}

func (a *API) handleMe(w http.ResponseWriter, _ *http.Request, id accounts.Identity) {
	httpx.WriteJSON(w, http.StatusOK, meResult{User: UserView(id.User), Method: id.Method, CSRFToken: id.CSRFToken})
}

type passwordChange struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// handleChangePassword needs the old password even from a logged-in user,
// so that a stolen session cannot take the account over. All sessions end;
// a cookie caller gets a fresh one.
func (a *API) handleChangePassword(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	if !primary(w, id) || !a.allowClient(w, r) {
		return
	}
	var req passwordChange
	if perr := httpx.DecodeJSON(w, r, &req); perr != nil {
		httpx.WriteError(w, perr)
		return
	}
	if !a.allowUser(w, id.User.Username) {
		return
	}
	if _, err := a.acc.Login(r.Context(), id.User.Username, req.OldPassword); err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	a.acc.RefundUserAttempt(id.User.Username)
	if err := a.acc.SetPassword(r.Context(), id.User.ID, req.NewPassword); err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	res := meResult{User: UserView(id.User), Method: id.Method}
	if id.Method == accounts.MethodCookie {
		tok, sess, err := a.acc.StartSession(r.Context(), id.User)
		if err != nil {
			a.acc.WriteError(w, r, err)
			return
		}
		a.setCookies(w, r, tok, sess.CSRFToken, int(a.acc.SessionTTL()/time.Second))
		res.CSRFToken = sess.CSRFToken
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

type connectTokenResult struct {
	Token     string `json:"token"`
	User      string `json:"user"`
	ExpiresIn int64  `json:"expires_in"` // seconds
}

func (a *API) handleConnectToken(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	if !primary(w, id) {
		return
	}
	tok, ttl, err := a.acc.MintConnectionToken(id.User)
	if err != nil {
		a.acc.WriteError(w, r, err)
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

func (a *API) handleListTokens(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	toks, err := a.acc.ListAPITokens(r.Context(), id.User.ID)
	if err != nil {
		a.acc.WriteError(w, r, err)
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

func (a *API) handleCreateToken(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
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
	tok, sess, err := a.acc.CreateAPIToken(r.Context(), id.User, req.Label, time.Duration(req.TTLSeconds)*time.Second)
	if err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	v := tokenView(sess)
	v.Token = tok
	httpx.WriteJSON(w, http.StatusCreated, v)
}

func (a *API) handleRevokeToken(w http.ResponseWriter, r *http.Request, id accounts.Identity) {
	if err := a.acc.RevokeAPIToken(r.Context(), id.User.ID, r.PathValue("id")); err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct{}{})
}

// handleRegistration tells anyone the sign-up mode, so that a sign-up page
// can ask for an invite, or say there is no sign-up, before the attempt.
func (a *API) handleRegistration(w http.ResponseWriter, r *http.Request) {
	mode, _, err := a.acc.RegistrationMode(r.Context())
	if err != nil {
		a.acc.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"mode": string(mode)})
}
