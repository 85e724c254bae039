// Package push sends Web Push notifications (RFC 8030) to the browsers of
// users who are not connected: payloads encrypted to each subscription's
// keys (RFC 8291, aes128gcm), requests signed with the server's VAPID key
// (RFC 8292, an ES256 JWT). It decides whether to send (nobody of the user
// connected for a grace period, never for muted rooms: the chat service
// only tells it of notices for members whose level is not "none"), keeps
// subscriptions bounded per user and drops the ones whose endpoint is gone
// (404, 410). Endpoints come from clients, so it sends only to allowed push
// service hosts over connections to public addresses (hosts.go): a user
// cannot point the server at an internal URL.
//
// It must never import session, transport, hub or server: it learns whether
// a user is connected through Config.Online.
package push
