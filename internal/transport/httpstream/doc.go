// Package httpstream serves Sori's fallback transports for clients that
// cannot use WebSocket: Server-Sent Events or HTTP long polling downstream,
// HTTP POST upstream, all carrying protocol v1 JSON unchanged. An HTTP session
// outlives any single request, so a dropped stream or poll resumes without
// losing a frame. It knows sessions only through session.Transport and must
// never import chat, store or server.
package httpstream
