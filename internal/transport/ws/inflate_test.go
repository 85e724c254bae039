package ws

import (
	"errors"
	"fmt"
)

// inflateTracking is a small, independent raw-deflate decoder (RFC 1951)
// written for tests: besides the output it reports the longest
// back-reference distance the stream uses, which compress/flate cannot tell.
// A permessage-deflate peer that asked for server_max_window_bits=N can only
// inflate what never refers more than 2^N bytes back (RFC 7692 §7.1.2.1).
// p is a message as it travels on the wire (the trailing 00 00 ff ff
// removed, §7.2.1).
func inflateTracking(p []byte) (out []byte, maxDist int, err error) {
	d := &inflater{in: append(append([]byte(nil), p...), 0x00, 0x00, 0xff, 0xff)}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("inflate: %v", r)
		}
	}()
	for {
		if d.pos >= len(d.in) {
			return d.out, d.maxDist, nil
		}
		final := d.bits(1)
		switch d.bits(2) {
		case 0:
			d.stored()
		case 1:
			d.codes(fixedTables())
		case 2:
			d.codes(d.dynamicTables())
		default:
			return nil, 0, errors.New("inflate: reserved block type")
		}
		if final == 1 {
			return d.out, d.maxDist, nil
		}
	}
}

type inflater struct {
	in      []byte
	pos     int
	bitbuf  uint32
	nbits   uint
	out     []byte
	maxDist int
}

func (d *inflater) bits(n uint) int {
	for d.nbits < n {
		if d.pos >= len(d.in) {
			panic("truncated")
		}
		d.bitbuf |= uint32(d.in[d.pos]) << d.nbits
		d.pos++
		d.nbits += 8
	}
	v := int(d.bitbuf & (1<<n - 1))
	d.bitbuf >>= n
	d.nbits -= n
	return v
}

func (d *inflater) stored() {
	d.bitbuf, d.nbits = 0, 0
	if d.pos+4 > len(d.in) {
		panic("truncated stored header")
	}
	n := int(d.in[d.pos]) | int(d.in[d.pos+1])<<8
	if nn := int(d.in[d.pos+2]) | int(d.in[d.pos+3])<<8; nn != ^n&0xffff {
		panic("stored length check")
	}
	d.pos += 4
	if d.pos+n > len(d.in) {
		panic("truncated stored block")
	}
	d.out = append(d.out, d.in[d.pos:d.pos+n]...)
	d.pos += n
}

// huffman is a canonical Huffman code: count[len] codes of each length and
// symbols in code order.
type huffman struct {
	count  [16]int
	symbol []int
}

func newHuffman(lengths []int) *huffman {
	h := &huffman{symbol: make([]int, 0, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	var offs [16]int
	for l := 1; l < 16; l++ {
		offs[l] = offs[l-1] + h.count[l-1]
	}
	h.symbol = make([]int, len(lengths))
	for s, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = s
			offs[l]++
		}
	}
	return h
}

func (d *inflater) decode(h *huffman) int {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		code |= d.bits(1)
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+(code-first)]
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	panic("bad code")
}

var (
	lengthBase  = []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = []uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = []int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = []uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

func fixedTables() (*huffman, *huffman) {
	l := make([]int, 288)
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	dl := make([]int, 30)
	for i := range dl {
		dl[i] = 5
	}
	return newHuffman(l), newHuffman(dl)
}

func (d *inflater) dynamicTables() (*huffman, *huffman) {
	nlen, ndist, ncode := d.bits(5)+257, d.bits(5)+1, d.bits(4)+4
	order := []int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	cl := make([]int, 19)
	for i := 0; i < ncode; i++ {
		cl[order[i]] = d.bits(3)
	}
	ch := newHuffman(cl)
	lengths := make([]int, 0, nlen+ndist)
	for len(lengths) < nlen+ndist {
		sym := d.decode(ch)
		switch {
		case sym < 16:
			lengths = append(lengths, sym)
		case sym == 16:
			prev := lengths[len(lengths)-1]
			for range 3 + d.bits(2) {
				lengths = append(lengths, prev)
			}
		case sym == 17:
			for range 3 + d.bits(3) {
				lengths = append(lengths, 0)
			}
		default:
			for range 11 + d.bits(7) {
				lengths = append(lengths, 0)
			}
		}
	}
	return newHuffman(lengths[:nlen]), newHuffman(lengths[nlen:])
}

func (d *inflater) codes(lit, dist *huffman) {
	for {
		sym := d.decode(lit)
		switch {
		case sym < 256:
			d.out = append(d.out, byte(sym))
		case sym == 256:
			return
		default:
			sym -= 257
			n := lengthBase[sym] + d.bits(lengthExtra[sym])
			ds := d.decode(dist)
			back := distBase[ds] + d.bits(distExtra[ds])
			if back > len(d.out) {
				panic("distance beyond the start of the message")
			}
			d.maxDist = max(d.maxDist, back)
			for range n {
				d.out = append(d.out, d.out[len(d.out)-back])
			}
		}
	}
}
