// Package accounts owns who a chat user is: sign-up and login with argon2id
// password hashes, browser sessions (cookie + CSRF token), API bearer tokens,
// connection tokens minted for logged-in users, and externally minted JWTs
// accepted as chat identities. It sits on store and auth and must never import
// chat, hub, session or server.
package accounts
