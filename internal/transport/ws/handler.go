package ws

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/sori-dev/sori/internal/protocol"
	"github.com/sori-dev/sori/internal/session"
	"github.com/sori-dev/sori/internal/transport"
	"github.com/sori-dev/sori/internal/transport/netpoll"
)

// Options configures the WebSocket endpoint. Zero values take the defaults
// listed with each field.
type Options struct {
	MaxMessageSize int           // bytes per inbound message, after inflating; default 64 KiB
	IdleTimeout    time.Duration // no frame at all for this long closes the connection; default 2× ping interval
	WriteTimeout   time.Duration // one write may block this long; default 10s
	CloseTimeout   time.Duration // how long a closing handshake may take; default 2s
	Compression    bool          // accept permessage-deflate offers
	// Poll parks idle connections in an epoll poller instead of a goroutine
	// each (Linux; elsewhere, and for connections that do not expose their
	// socket, the reader waits on a goroutine as without it).
	Poll bool
	// WritePool writes for every connection from a few shared goroutines
	// (GOMAXPROCS) with non-blocking writes, instead of a goroutine per
	// connection each time its queue fills (Linux; writepool.go).
	WritePool   bool
	CompressMin int // frames shorter than this are sent uncompressed; default 128 bytes
	Origins     transport.OriginPolicy
	Logger      *slog.Logger

	zc *zcache // publications deflated once for every connection (nil: per connection)
	mc *mcache // publications transcoded to MessagePack once for every binary connection

	// handle processes a complete message; nil = text messages go to
	// Conn.Handle and binary ones are refused (sori.v1 is a text protocol).
	handle func(p session.Conn, op byte, data []byte) (protocol.Disconnect, bool)
}

func (o *Options) setDefaults(pingInterval time.Duration) {
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 64 << 10
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * pingInterval
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 2 * time.Second
	}
	if o.CompressMin <= 0 {
		o.CompressMin = 128
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.handle == nil {
		o.handle = handleProtocol
	}
	if o.Compression && o.zc == nil {
		o.zc = new(zcache)
	}
	if o.mc == nil {
		o.mc = new(mcache)
	}
}

func handleProtocol(p session.Conn, op byte, data []byte) (protocol.Disconnect, bool) {
	if op != opText {
		return protocol.DisconnectUnsupportedData, true
	}
	return p.Handle(data)
}

// msgpackPeer is a peer that decodes other codecs (session.Session).
type msgpackPeer interface {
	HandleWith(frame []byte, decode func([]byte, []protocol.Command) ([]protocol.Command, *protocol.BadCommand)) (protocol.Disconnect, bool)
}

// handleMsgpack handles a message of the binary codec (sori.v1.msgpack):
// binary frames only.
func handleMsgpack(p session.Conn, op byte, data []byte) (protocol.Disconnect, bool) {
	mp, ok := p.(msgpackPeer)
	if op != opBinary || !ok {
		return protocol.DisconnectUnsupportedData, true
	}
	return mp.HandleWith(data, protocol.DecodeCommandsMsgpack)
}

// Handler serves the WebSocket endpoint for a session node.
type Handler struct {
	node     *session.Node
	opts     Options
	upgrader ws.HTTPUpgrader
	pl       *netpoll.Poller[conn] // nil without Options.Poll
	wp       *writePool            // nil without Options.WritePool
}

// NewHandler returns the http.Handler of the /ws endpoint.
func NewHandler(node *session.Node, opts Options) *Handler {
	opts.setDefaults(node.Config().PingInterval)
	h := &Handler{node: node, opts: opts}
	if opts.Poll && netpoll.Supported {
		h.pl = newPoller(&h.opts)
	}
	if opts.WritePool && writePoolSupported {
		h.wp = newWritePool()
	}
	h.upgrader = ws.HTTPUpgrader{
		Timeout:  opts.WriteTimeout,
		Protocol: func(p string) bool { return p == protocol.Subprotocol || p == protocol.SubprotocolMsgpack },
	}
	return h
}

// ServeHTTP upgrades the request and runs the connection until it ends. A
// refused upgrade gets a plain HTTP status: 403 for a foreign Origin, 400
// (from the upgrader) for a malformed handshake.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.opts.Origins.Check(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this endpoint speaks WebSocket (RFC 6455) only", http.StatusBadRequest)
		return
	}
	u := h.upgrader
	var offer deflateOffer
	if h.opts.Compression {
		u.Negotiate = offer.negotiate // per handshake: it accepts one offer at most
	}
	nc, rw, hs, err := u.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		h.opts.Logger.Debug("websocket handshake refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := &conn{nc: nc, opts: &h.opts, deflate: offer.accepted, deflateBits: offer.bits,
		binary: hs.Protocol == protocol.SubprotocolMsgpack}
	if h.pl != nil || h.wp != nil {
		if rc := netpoll.RawConn(nc); rc != nil {
			c.sock, c.pl, c.wp = rc, h.pl, h.wp
		}
	}
	if rw != nil && rw.Reader.Buffered() > 0 {
		c.br = rw.Reader
	}
	// Accept attaches the session to c (conn.Attach) before anything else can reach it.
	if s, refused := h.node.Accept(c, transport.ClientIP(r)); s == nil {
		body := closeBody(refused.Code, refused.Reason)
		_ = nc.SetWriteDeadline(time.Now().Add(h.opts.CloseTimeout))
		_, _ = nc.Write(append(appendHeader(nil, opClose, false, len(body)), body...))
		// The client may already have sent its first frames: closing with
		// them unread would reset the connection under the close frame.
		lingerClose(nc, h.opts.CloseTimeout)
		return
	}
	// The reader runs on a fresh goroutine and ServeHTTP returns, so that
	// net/http's per-connection state (two 4 KiB bufio buffers, the request,
	// the response and a stack grown by the handshake) becomes garbage
	// instead of staying pinned for the connection's lifetime: measured at
	// 10k idle connections, about 10 KiB per connection.
	go c.readLoop()
}
