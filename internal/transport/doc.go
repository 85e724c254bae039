// Package transport holds what every transport shares: the client-IP and
// Origin checks made before a session starts. Subpackages implement the
// transports (ws; sse and long polling). Transports know sessions only through
// session.Transport and must never import chat, store or server.
package transport
