package ws

import (
	"sync"
	"unsafe"
)

// zcache holds the compressed form of recently written publications, so that
// a publication delivered to many permessage-deflate connections is deflated
// once instead of once per connection: without context takeover the output
// depends only on the bytes and the window, the same for every connection
// (issue 15).
//
// Entries are keyed by the identity of the frame's bytes, not their content:
// the hub encodes each publication once into a fresh slice that nobody
// modifies afterwards (session.Frame.Data), and an entry keeps that slice
// alive, so while the entry exists its address cannot name other bytes.
// Frames over zcacheMax bytes are not kept (bounding the cache at
// zcacheSlots × 2 × zcacheMax bytes). Safe for concurrent use: one mutex per
// slot, never held while compressing.
type zcache struct {
	slots [zcacheSlots]zslot
}

const (
	zcacheSlots = 256
	zcacheMax   = 16 << 10
)

type zslot struct {
	mu   sync.Mutex
	data []byte // the frame, kept alive by the entry
	bits uint8
	z    []byte // its compressed form; shared, never modified
}

// compress returns data deflated for a window of 2^bits bytes, from the
// cache when another connection already deflated the same frame. The result
// must not be modified.
func (zc *zcache) compress(data []byte, bits uint8) []byte {
	p := unsafe.SliceData(data)
	a := uintptr(unsafe.Pointer(p))
	s := &zc.slots[(a>>4^a>>12)%zcacheSlots]
	s.mu.Lock()
	if unsafe.SliceData(s.data) == p && len(s.data) == len(data) && s.bits == bits {
		z := s.z
		s.mu.Unlock()
		return z
	}
	s.mu.Unlock()
	z := compress(nil, data, int(bits))
	s.mu.Lock()
	s.data, s.bits, s.z = data, bits, z
	s.mu.Unlock()
	return z
}
