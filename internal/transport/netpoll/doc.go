// Package netpoll tells a callback when a socket becomes readable (data, the
// peer's FIN or an error) without a goroutine waiting on it: one epoll
// instance and one goroutine serve every watched socket of a Watcher. The
// HTTP fallback transports use it to notice that the client of a parked SSE
// stream or long poll went away. It must never import any other Sori package.
package netpoll
