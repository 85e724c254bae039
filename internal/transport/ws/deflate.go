package ws

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"sync"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws/wsflate"
)

// permessage-deflate (RFC 7692). Sori negotiates no context takeover in both
// directions: each message is compressed on its own, so a connection keeps no
// compressor state (tens of KiB) while idle, and compressors come from a pool.

// deflateOffer negotiates permessage-deflate for one handshake. A client may
// list several offers in order of preference (RFC 7692 §5.1); the server
// accepts at most one, the first it can honour.
type deflateOffer struct {
	accepted bool
	bits     uint8 // the server window granted, 8–15
}

// negotiate is the upgrader's callback, called once per offered extension.
func (n *deflateOffer) negotiate(opt httphead.Option) (httphead.Option, error) {
	if n.accepted || !bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) {
		return httphead.Option{}, nil
	}
	var p wsflate.Parameters
	if err := p.Parse(opt); err != nil {
		return httphead.Option{}, nil // decline a malformed offer rather than fail the handshake
	}
	// client_max_window_bits needs nothing from us (we inflate any window);
	// browsers and Node's ws send it without a value, which wsflate reports
	// as 1. server_max_window_bits=N is honoured by never referring more
	// than 2^N bytes back (see compress), and must be echoed (§7.1.2.1).
	accept := wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	n.bits = 15
	if p.ServerMaxWindowBits.Defined() {
		accept.ServerMaxWindowBits = p.ServerMaxWindowBits
		n.bits = uint8(p.ServerMaxWindowBits)
	}
	n.accepted = true
	return accept.Option(), nil
}

var (
	flateWriters = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed) // error only for a bad level
		return w
	}}
	flateReaders = sync.Pool{New: func() any { return flate.NewReader(nil) }}
)

// deflateTail is what a sync flush ends with; RFC 7692 §7.2.1 removes it from
// the wire and §7.2.2 appends it again before inflating.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// compress appends the compressed form of p to dst, for a peer that allows a
// window of 2^bits bytes. compress/flate always uses a 32 KiB window, so for
// a smaller one p is compressed in pieces of at most 2^bits bytes, each with
// a fresh compressor: no back-reference can then reach further back than the
// start of its piece. Each piece ends with a sync flush (a byte-aligned empty
// stored block), so the pieces concatenate into one valid deflate stream.
func compress(dst, p []byte, bits int) []byte {
	buf := bytes.NewBuffer(dst)
	w := flateWriters.Get().(*flate.Writer)
	piece := len(p)
	if bits >= 8 && bits < 15 {
		piece = 1 << bits
	}
	for {
		n := min(piece, len(p))
		w.Reset(buf)
		_, _ = w.Write(p[:n]) // writes to a bytes.Buffer cannot fail
		_ = w.Flush()
		p = p[n:]
		if len(p) == 0 {
			break
		}
	}
	flateWriters.Put(w)
	return bytes.TrimSuffix(buf.Bytes(), deflateTail)
}

var errInflatedTooLarge = errors.New("ws: inflated message exceeds the size limit")

// decompress inflates a compressed message, refusing to produce more than max
// bytes (a small frame can inflate to gigabytes).
func decompress(p []byte, max int) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateTail), bytes.NewReader([]byte{0x01, 0x00, 0x00, 0xff, 0xff}))
	r := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(r)
	if err := r.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(max) {
		return nil, errInflatedTooLarge
	}
	return out.Bytes(), nil
}
