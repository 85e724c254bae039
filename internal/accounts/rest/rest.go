// Package rest is the accounts REST API under /api/v1/auth and /api/v1/me
// (docs/api.md): sign-up, login and logout, the user's profile and password,
// connection tokens and API tokens. It decodes requests, sets and clears the
// session cookies, charges password attempts to the client's address, and
// answers in JSON; who a user is and every credential rule stay in accounts.
// It must never import chat, hub, session, transport or server.
package rest

import (
	"net/http"

	"github.com/sori-dev/sori/internal/accounts"
)

// API serves the account endpoints. It is safe for concurrent use: it holds
// no state of its own beyond the accounts service, which is.
type API struct {
	acc *accounts.Service
}

// New returns the API of acc.
func New(acc *accounts.Service) *API { return &API{acc: acc} }

// Routes registers the account endpoints (see docs/api.md) with handle.
func (a *API) Routes(handle func(pattern string, h http.Handler)) {
	handle("GET /api/v1/auth/registration", http.HandlerFunc(a.handleRegistration))
	handle("POST /api/v1/auth/signup", http.HandlerFunc(a.handleSignup))
	handle("POST /api/v1/auth/login", http.HandlerFunc(a.handleLogin))
	handle("POST /api/v1/auth/logout", a.acc.Require(a.handleLogout))
	handle("POST /api/v1/auth/logout-all", a.acc.Require(a.handleLogoutAll))
	handle("GET /api/v1/me", a.acc.Require(a.handleMe))
	handle("PATCH /api/v1/me", a.acc.Require(a.handlePatchMe))
	handle("PUT /api/v1/me/avatar", a.acc.Require(a.handlePutAvatar))
	handle("DELETE /api/v1/me/avatar", a.acc.Require(a.handleDeleteAvatar))
	handle("GET /api/v1/users/{username}", a.acc.Require(a.handleProfile))
	handle("GET /api/v1/users/{username}/avatar", a.acc.Require(a.handleAvatar))
	handle("PUT /api/v1/me/password", a.acc.Require(a.handleChangePassword))
	handle("POST /api/v1/auth/connect-token", a.acc.Require(a.handleConnectToken))
	handle("GET /api/v1/auth/tokens", a.acc.Require(a.handleListTokens))
	handle("POST /api/v1/auth/tokens", a.acc.Require(a.handleCreateToken))
	handle("DELETE /api/v1/auth/tokens/{id}", a.acc.Require(a.handleRevokeToken))
}
