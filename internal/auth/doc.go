// Package auth verifies who is on the other end: JWT connection tokens (HMAC,
// RSA or ECDSA), their channel grants, and server API keys. It must never
// import hub, session, transport or server.
package auth
