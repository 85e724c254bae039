// Package netpoll tells a callback when a socket becomes readable (data, the
// peer's FIN or an error) without a goroutine waiting on it: one epoll
// instance and one goroutine serve every socket registered with a Poller.
// The WebSocket transport parks idle connections in a Poller (re-armed after
// each quiet spell, with a periodic deadline sweep); the HTTP fallback
// transports use a Watcher, a one-shot Poller, to notice that the client of a
// parked SSE stream or long poll went away. It must never import any other
// Sori package.
package netpoll
