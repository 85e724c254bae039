// Package accounts owns who a chat user is: sign-up and login with argon2id
// password hashes, browser sessions (cookie + CSRF token), API bearer tokens,
// connection tokens minted for logged-in users, externally minted JWTs
// accepted as chat identities, the rules that revoke them, and the limits on
// password attempts. Its HTTP endpoints are in accounts/rest.
//
// Authenticating a request stays here (Authenticate, Require): reading the
// bearer header and the session cookie, and checking the CSRF header against
// the session, are part of what a credential is, not of routing. Every HTTP
// surface (accounts/rest, chat/rest) must authenticate the same way, and
// keeping the cookie name, the bearer parsing and the CSRF rule beside the
// session lookup they guard means no surface can accept a cookie without the
// CSRF check. Setting cookies, decoding bodies and routes are accounts/rest's.
//
// It sits on store and auth and must never import chat, hub, session or
// server.
package accounts
