package accounts

import (
	"encoding/binary"
	"testing"
)

// webp builds a minimal WebP header of the given first chunk.
func webp(chunk string, payload []byte) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WEBP" + chunk)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func TestAvatarTypeWebP(t *testing.T) {
	vp8l := func(w, h int) []byte {
		p := []byte{0x2f, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(p[1:], uint32(w-1)|uint32(h-1)<<14)
		return webp("VP8L", append(p, make([]byte, 20)...))
	}
	vp8x := func(w, h int) []byte {
		p := make([]byte, 30)
		w, h = w-1, h-1
		p[4], p[5], p[6] = byte(w), byte(w>>8), byte(w>>16)
		p[7], p[8], p[9] = byte(h), byte(h>>8), byte(h>>16)
		return webp("VP8X", p)
	}
	vp8 := func(w, h int) []byte {
		p := []byte{0, 0, 0, 0x9d, 0x01, 0x2a, 0, 0, 0, 0}
		binary.LittleEndian.PutUint16(p[6:], uint16(w))
		binary.LittleEndian.PutUint16(p[8:], uint16(h))
		return webp("VP8 ", append(p, make([]byte, 20)...))
	}
	for name, c := range map[string]struct {
		b  []byte
		ok bool
	}{
		"lossless 64":      {vp8l(64, 64), true},
		"lossless 5000":    {vp8l(5000, 10), false},
		"extended 4096":    {vp8x(4096, 4096), true},
		"extended 16384":   {vp8x(16384, 16), false},
		"lossy 100x50":     {vp8(100, 50), true},
		"lossy 0 wide":     {vp8(0, 50), false},
		"lossy bad start":  {webp("VP8 ", make([]byte, 30)), false},
		"unknown chunk":    {webp("ABCD", make([]byte, 30)), false},
		"riff not webp":    {[]byte("RIFF\x00\x00\x00\x00WAVEfmt " + string(make([]byte, 30))), false},
		"svg (script)":     {[]byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), false},
		"gif header alone": {[]byte("GIF89a"), false},
	} {
		ct, ok := AvatarType(c.b)
		if ok != c.ok || ok && ct != "image/webp" {
			t.Errorf("%s: AvatarType = %q %t, want ok=%t", name, ct, ok, c.ok)
		}
	}
}
