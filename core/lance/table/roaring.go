package table

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Lance's BITMAP deletion files are 32-bit Roaring bitmaps in the portable
// serialization (RoaringFormatSpec), as written by roaring-rs:
//
//	cookie u32: 12346 (no run containers, then u32 container count) or
//	            12347 | (count-1)<<16 (then a run-container bitset)
//	count x (u16 key, u16 cardinality-1)
//	offsets: count x u32 (absent when run containers exist and count < 4)
//	containers: array (cardinality <= 4096: u16 values), bitmap (8 KiB),
//	            or run (u16 n, n x (u16 start, u16 length-1))

const (
	roaringCookieNoRun   = 12346
	roaringCookie        = 12347
	roaringNoOffsetLimit = 4
	roaringArrayMax      = 4096
)

func readRoaring(data []byte) ([]uint32, error) {
	r := &byteReader{b: data}
	h, err := readRoaringHeader(r)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for i, key := range h.keys {
		switch {
		case h.runs != nil && h.runs[i/8]&(1<<(i%8)) != 0:
			out, err = appendRunContainer(r, key, out)
		case h.cards[i] > roaringArrayMax:
			out, err = appendBitmapContainer(r, key, out)
		default:
			out, err = appendArrayContainer(r, key, h.cards[i], out)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// roaringHeader is what precedes the containers: each container's key
// (its high 16 bits, shifted into place) and cardinality, and the bitset of
// run containers (nil when there are none).
type roaringHeader struct {
	keys  []uint32
	cards []int
	runs  []byte
}

// readRoaringHeader reads the cookie, the descriptive header and the
// offsets (skipped: containers are read in order).
func readRoaringHeader(r *byteReader) (*roaringHeader, error) {
	cookie, err := r.u32()
	if err != nil {
		return nil, err
	}
	h := &roaringHeader{}
	var count int
	hasOffsets := true
	switch {
	case cookie == roaringCookieNoRun:
		c, err := r.u32()
		if err != nil {
			return nil, err
		}
		if c > 1<<16 {
			return nil, fmt.Errorf("roaring: %d containers", c)
		}
		count = int(c)
	case cookie&0xFFFF == roaringCookie:
		count = int(cookie>>16) + 1
		if h.runs, err = r.bytes((count + 7) / 8); err != nil {
			return nil, err
		}
		hasOffsets = count >= roaringNoOffsetLimit
	default:
		return nil, fmt.Errorf("roaring: bad cookie %#x", cookie)
	}
	h.keys, h.cards = make([]uint32, count), make([]int, count)
	for i := range h.keys {
		k, err := r.u16()
		if err != nil {
			return nil, err
		}
		c, err := r.u16()
		if err != nil {
			return nil, err
		}
		h.keys[i], h.cards[i] = uint32(k)<<16, int(c)+1
	}
	if hasOffsets {
		if _, err := r.bytes(4 * count); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// appendRunContainer appends the values of a run container: u16 n, then n
// runs of (u16 start, u16 length-1).
func appendRunContainer(r *byteReader, key uint32, out []uint32) ([]uint32, error) {
	n, err := r.u16()
	if err != nil {
		return nil, err
	}
	for j := 0; j < int(n); j++ {
		start, err := r.u16()
		if err != nil {
			return nil, err
		}
		l, err := r.u16()
		if err != nil {
			return nil, err
		}
		for v := int(start); v <= int(start)+int(l) && v <= 0xFFFF; v++ {
			out = append(out, key|uint32(v))
		}
	}
	return out, nil
}

// appendBitmapContainer appends the values of a bitmap container: 1024
// little-endian u64 words.
func appendBitmapContainer(r *byteReader, key uint32, out []uint32) ([]uint32, error) {
	words, err := r.bytes(8192)
	if err != nil {
		return nil, err
	}
	for w := 0; w < 1024; w++ {
		word := binary.LittleEndian.Uint64(words[8*w:])
		for word != 0 {
			bit := bits.TrailingZeros64(word)
			out = append(out, key|uint32(w*64+bit))
			word &= word - 1
		}
	}
	return out, nil
}

// appendArrayContainer appends the values of an array container: card u16
// values.
func appendArrayContainer(r *byteReader, key uint32, card int, out []uint32) ([]uint32, error) {
	vals, err := r.bytes(2 * card)
	if err != nil {
		return nil, err
	}
	for j := 0; j < card; j++ {
		out = append(out, key|uint32(binary.LittleEndian.Uint16(vals[2*j:])))
	}
	return out, nil
}

// byteReader reads little-endian values with bounds checks.
type byteReader struct {
	b   []byte
	off int
}

func (r *byteReader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, fmt.Errorf("roaring: truncated at offset %d (need %d bytes)", r.off, n)
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out, nil
}

func (r *byteReader) u16() (uint16, error) {
	b, err := r.bytes(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (r *byteReader) u32() (uint32, error) {
	b, err := r.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}
