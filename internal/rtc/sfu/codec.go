package sfu

// Codec is the kind of payload a track carries, as far as forwarding cares:
// where its keyframes are.
type Codec uint8

// Codecs the forwarder knows.
const (
	// CodecAudio: every packet is a switch point (audio has no layers and
	// needs no keyframe).
	CodecAudio Codec = iota
	// CodecVP8: keyframes from the VP8 payload descriptor and header (RFC 7741).
	CodecVP8
	// CodecH264: keyframes are IDR or SPS NAL units (RFC 6184), alone, at the
	// start of an FU-A, or inside a STAP-A.
	CodecH264
)

// IsKeyframeStart reports whether payload is the first packet of a keyframe,
// the only place where a subscriber can start decoding a new layer.
func (c Codec) IsKeyframeStart(payload []byte) bool {
	switch c {
	case CodecAudio:
		return true
	case CodecVP8:
		return vp8KeyframeStart(payload)
	case CodecH264:
		return h264KeyframeStart(payload)
	}
	return false
}

// vp8KeyframeStart parses the VP8 payload descriptor (RFC 7741 §4.2) and, for
// the first packet of partition 0 (S=1, PID=0), the P bit of the VP8 frame
// header: 0 means a key frame.
func vp8KeyframeStart(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	b0 := p[0]
	s := b0&0x10 != 0
	pid := b0 & 0x07
	if !s || pid != 0 {
		return false
	}
	i := 1
	if b0&0x80 != 0 { // X: extension byte follows
		if len(p) < 2 {
			return false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: PictureID, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			i++
		}
	}
	if len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0
}

// H.264 NAL unit types that matter here.
const (
	naluIDR   = 5
	naluSPS   = 7
	naluSTAPA = 24
	naluFUA   = 28
)

// h264KeyframeStart reports an IDR slice or an SPS at the start of an access
// unit: a single NAL unit of type 5 or 7, a STAP-A holding one, or the first
// fragment (S bit) of an FU-A of one. Detecting keyframes wrong makes layer
// switches wait forever or start on a frame that cannot be decoded.
func h264KeyframeStart(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case naluIDR, naluSPS:
		return true
	case naluSTAPA:
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if nt := p[i] & 0x1f; nt == naluIDR || nt == naluSPS {
				return true
			}
			i += size
		}
	case naluFUA:
		if len(p) < 2 {
			return false
		}
		fu := p[1]
		nt := fu & 0x1f
		return fu&0x80 != 0 && (nt == naluIDR || nt == naluSPS)
	}
	return false
}
