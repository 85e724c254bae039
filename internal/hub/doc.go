// Package hub owns channels: subscriptions, fan-out of publications, history
// with offsets and epochs, and presence. It knows nothing of HTTP, WebSocket or
// sessions: a subscriber is anything that can take an encoded frame without
// blocking. It must never import transport, session or server.
package hub
