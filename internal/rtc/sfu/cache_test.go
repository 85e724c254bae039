package sfu

import (
	"bytes"
	"testing"
)

// TestLayerCacheKeepsPayloadsToSize: a cached payload is a copy of the
// payload's own size, not a view of the read buffer (which the read loop
// reuses) nor a buffer of the receive MTU; it is found by its SN until a
// packet 512 SNs later takes its slot; the baseline switch keeps the old
// receive-MTU capacity.
func TestLayerCacheKeepsPayloadsToSize(t *testing.T) {
	var l layer
	buf := bytes.Repeat([]byte{7}, receiveMTU)
	payload := buf[12:312] // a 300-byte payload after a 12-byte header
	kept := l.store(1000, true, payload, false)
	if cap(kept) >= 2*len(payload) {
		t.Errorf("a 300-byte payload is kept in %d bytes, want its size (Go rounds up to a size class)", cap(kept))
	}
	for i := range buf {
		buf[i] = 0 // the read loop's next packet
	}
	c, ok := l.get(1000)
	if !ok || !c.marker || len(c.payload) != 300 || c.payload[0] != 7 || c.payload[299] != 7 {
		t.Fatalf("get(1000) = %v (len %d), want the 300-byte payload of 7s with its marker", ok, len(c.payload))
	}
	if _, ok := l.get(1001); ok {
		t.Error("get(1001) found a packet never stored")
	}
	l.store(1000+cacheSize, false, []byte{1, 2, 3}, false)
	if _, ok := l.get(1000); ok {
		t.Error("get(1000) still found the packet after a packet 512 SNs later took its slot")
	}
	if c, ok := l.get(1000 + cacheSize); !ok || c.marker || !bytes.Equal(c.payload, []byte{1, 2, 3}) {
		t.Errorf("get(%d) = %v %+v", 1000+cacheSize, ok, c)
	}
	// Padding-only packets (an empty payload) are cached as empty, and found.
	l.store(5, false, nil, false)
	if c, ok := l.get(5); !ok || len(c.payload) != 0 {
		t.Errorf("an empty payload: get = %v %+v", ok, c)
	}
	if kept := l.store(6, false, payload, true); cap(kept) != receiveMTU || len(kept) != 300 {
		t.Errorf("the baseline keeps len %d cap %d, want 300 and %d", len(kept), cap(kept), receiveMTU)
	}
}
