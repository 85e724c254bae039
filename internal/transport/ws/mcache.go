package ws

import (
	"sync"
	"unsafe"

	"github.com/sori-dev/sori/internal/protocol"
)

// mcache holds the MessagePack form of recently written publications, so
// that a publication delivered to many binary-codec connections is
// transcoded once, not once per connection. It works as zcache does: entries
// are keyed by the identity of the publication frame's bytes (immutable, kept
// alive by the entry), one mutex per slot, never held while transcoding.
// The transcoded slice is shared and never modified, so zcache can key the
// compressed form by its identity in turn.
type mcache struct {
	slots [zcacheSlots]mslot
}

type mslot struct {
	mu   sync.Mutex
	data []byte // the JSON frame, kept alive by the entry
	m    []byte // its MessagePack form
}

func (mc *mcache) transcode(data []byte) []byte {
	p := unsafe.SliceData(data)
	a := uintptr(unsafe.Pointer(p))
	s := &mc.slots[(a>>4^a>>12)%zcacheSlots]
	s.mu.Lock()
	if unsafe.SliceData(s.data) == p && len(s.data) == len(data) {
		m := s.m
		s.mu.Unlock()
		return m
	}
	s.mu.Unlock()
	m := transcode(data)
	s.mu.Lock()
	s.data, s.m = data, m
	s.mu.Unlock()
	return m
}

// transcode converts a frame the session queued (JSON) to the binary codec.
// The session only queues JSON it encoded itself; should a frame ever fail
// to convert, the peer gets an internal-error reply instead of bytes it
// cannot decode.
func transcode(data []byte) []byte {
	m, err := protocol.TranscodeJSON(make([]byte, 0, len(data)+len(data)/8), data)
	if err != nil {
		m, _ = protocol.TranscodeJSON(nil, protocol.EncodeError(0, protocol.ErrInternal))
	}
	return m
}
