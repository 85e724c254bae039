package ws

import "unicode/utf8"

// utf8Stream validates UTF-8 as it arrives, in pieces of any size: a text
// message is refused (1007) at its first invalid byte, even when that byte
// is in the middle of a frame whose rest has not arrived (RFC 6455 §8.1),
// and a code point may be split anywhere across frames and reads. The zero
// value is ready for a new message.
type utf8Stream struct {
	need   uint8 // continuation bytes still expected for the current code point
	lo, hi byte  // the range allowed for the next continuation byte
}

// write validates p, the next bytes of the message, and reports whether
// everything so far is valid UTF-8 or a prefix of it.
func (s *utf8Stream) write(p []byte) bool {
	// Finish a code point begun in an earlier piece.
	for s.need > 0 && len(p) > 0 {
		if !s.step(p[0]) {
			return false
		}
		p = p[1:]
	}
	if len(p) == 0 {
		return true
	}
	// The complete code points go to the fast validator; an unfinished one
	// at the end is checked byte by byte and carried over.
	cut := len(p)
	for back := 1; back <= 3 && back <= len(p); back++ {
		if b := p[len(p)-back]; utf8.RuneStart(b) {
			if seqLen(b) > back {
				cut = len(p) - back
			}
			break
		}
	}
	if !utf8.Valid(p[:cut]) {
		return false
	}
	for _, b := range p[cut:] {
		if !s.step(b) {
			return false
		}
	}
	return true
}

// complete reports whether the message ended on a code point boundary.
func (s *utf8Stream) complete() bool { return s.need == 0 }

// seqLen is the length of the UTF-8 sequence a lead byte starts; 1 for bytes
// that cannot start one (the validator refuses those).
func seqLen(b byte) int {
	switch {
	case b >= 0xF0 && b <= 0xF4:
		return 4
	case b >= 0xE0 && b <= 0xEF:
		return 3
	case b >= 0xC2 && b <= 0xDF:
		return 2
	}
	return 1
}

// step advances over one byte (RFC 3629 §4: the ranges exclude overlong
// forms, surrogates and code points above U+10FFFF as early as their
// second byte).
func (s *utf8Stream) step(b byte) bool {
	if s.need > 0 {
		if b < s.lo || b > s.hi {
			return false
		}
		s.need--
		s.lo, s.hi = 0x80, 0xBF
		return true
	}
	s.lo, s.hi = 0x80, 0xBF
	switch {
	case b < 0x80:
	case b >= 0xC2 && b <= 0xDF:
		s.need = 1
	case b == 0xE0:
		s.need, s.lo = 2, 0xA0
	case b == 0xED:
		s.need, s.hi = 2, 0x9F
	case b >= 0xE1 && b <= 0xEF:
		s.need = 2
	case b == 0xF0:
		s.need, s.lo = 3, 0x90
	case b == 0xF4:
		s.need, s.hi = 3, 0x8F
	case b >= 0xF1 && b <= 0xF3:
		s.need = 3
	default:
		return false
	}
	return true
}
