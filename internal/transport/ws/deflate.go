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

// negotiateDeflate accepts a client's permessage-deflate offer, forcing no
// context takeover both ways.
func negotiateDeflate(opt httphead.Option) (httphead.Option, error) {
	if !bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) {
		return httphead.Option{}, nil
	}
	var p wsflate.Parameters
	if err := p.Parse(opt); err != nil {
		return httphead.Option{}, nil // decline a malformed offer rather than fail the handshake
	}
	// compress/flate always uses a 32 KiB window, so decline an offer that
	// asks the server for a smaller one. client_max_window_bits needs nothing
	// from us (we inflate any window); browsers and Node's ws send it without
	// a value, which wsflate reports as 1.
	if p.ServerMaxWindowBits.Defined() && p.ServerMaxWindowBits < 15 {
		return httphead.Option{}, nil
	}
	accept := wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
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

// compress appends the compressed form of p to dst.
func compress(dst, p []byte) []byte {
	buf := bytes.NewBuffer(dst)
	w := flateWriters.Get().(*flate.Writer)
	w.Reset(buf)
	_, _ = w.Write(p) // writes to a bytes.Buffer cannot fail
	_ = w.Flush()
	flateWriters.Put(w)
	out := buf.Bytes()
	return bytes.TrimSuffix(out, deflateTail)
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
