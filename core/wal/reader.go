package wal

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// FrameErrorKind says how a frame failed to decode. Recovery treats the
// kinds alike; the kind is there for messages and tests.
type FrameErrorKind int

const (
	// FrameZero: the length word is all zeros — unwritten or preallocated
	// space, never a frame.
	FrameZero FrameErrorKind = iota + 1
	// FrameTruncated: the input ends inside the frame.
	FrameTruncated
	// FrameBadLength: the length word fails its check or is over MaxPayload.
	FrameBadLength
	// FrameBadChecksum: the frame CRC does not match.
	FrameBadChecksum
)

func (k FrameErrorKind) String() string {
	switch k {
	case FrameZero:
		return "zero length word"
	case FrameTruncated:
		return "truncated frame"
	case FrameBadLength:
		return "bad length word"
	case FrameBadChecksum:
		return "frame checksum mismatch"
	}
	return "unknown"
}

// FrameError is a frame that could not be decoded at Offset. Every byte
// before Offset decoded as whole, valid frames.
type FrameError struct {
	Offset int64
	Kind   FrameErrorKind
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("wal: %s at offset %d", e.Kind, e.Offset)
}

// FrameReader decodes frames from a byte range of an io.ReaderAt (a segment
// file after its header, or any buffer). It reads sequentially through a
// buffer, knows where the range ends, and so never allocates for a length
// that runs past the end.
//
// Next returns io.EOF when the range ends exactly at a frame boundary and a
// *FrameError otherwise; after any error it keeps returning that error.
type FrameReader struct {
	br    *bufio.Reader
	off   int64 // offset of the next frame
	end   int64
	err   error
	hdr   [frameHeaderSize]byte
	reuse bool   // Payload aliases buf (internal scans that do not keep it)
	buf   []byte // reused body buffer when reuse is set
}

// readerBufSize is large enough that replay is not dominated by syscalls.
const readerBufSize = 1 << 20

// NewFrameReader decodes the frames in [start, end) of r.
func NewFrameReader(r io.ReaderAt, start, end int64) *FrameReader {
	size := readerBufSize
	if n := end - start; n < int64(size) {
		size = int(max(n, 16)) // bufio's minimum
	}
	return &FrameReader{
		br:  bufio.NewReaderSize(io.NewSectionReader(r, start, end-start), size),
		off: start,
		end: end,
	}
}

// Offset is the offset just past the last frame returned: the end of the
// valid prefix.
func (r *FrameReader) Offset() int64 { return r.off }

// Next decodes the next frame. The returned Payload is freshly allocated and
// may be kept by the caller.
func (r *FrameReader) Next() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	f, err := r.next()
	if err != nil {
		r.err = err
	}
	return f, err
}

func (r *FrameReader) fail(kind FrameErrorKind) error {
	return &FrameError{Offset: r.off, Kind: kind}
}

func (r *FrameReader) next() (Frame, error) {
	remain := r.end - r.off
	if remain == 0 {
		return Frame{}, io.EOF
	}
	n := int(min(remain, frameHeaderSize))
	if _, err := io.ReadFull(r.br, r.hdr[:n]); err != nil {
		return Frame{}, r.ioError(err)
	}
	if n < 8 {
		if allZero(r.hdr[:n]) {
			return Frame{}, r.fail(FrameZero)
		}
		return Frame{}, r.fail(FrameTruncated)
	}
	h, st := parseFrameHeader(r.hdr[:]) // bytes past n are stale but unused unless n == 24
	switch st {
	case headerZero:
		return Frame{}, r.fail(FrameZero)
	case headerBadLen, headerTooLong:
		return Frame{}, r.fail(FrameBadLength)
	}
	if n < frameHeaderSize || frameSize(int(h.length)) > remain {
		return Frame{}, r.fail(FrameTruncated)
	}
	bodyLen := int(align8(int64(h.length)))
	var body []byte
	if r.reuse {
		if cap(r.buf) < bodyLen {
			r.buf = make([]byte, bodyLen)
		}
		body = r.buf[:bodyLen]
	} else {
		body = make([]byte, bodyLen)
	}
	if _, err := io.ReadFull(r.br, body); err != nil {
		return Frame{}, r.ioError(err)
	}
	if frameCRC(r.hdr[:20], body) != h.crc {
		return Frame{}, r.fail(FrameBadChecksum)
	}
	r.off += frameHeaderSize + int64(bodyLen)
	return Frame{
		FirstOffset: h.firstOffset,
		Rows:        h.rows,
		Payload:     body[:h.length:h.length],
	}, nil
}

// ioError turns a read failure into an error. A short read inside the range
// means the range was longer than the data (a file shrank under us), which is
// reported as truncation; anything else is an I/O error wrapped with the
// offset.
func (r *FrameReader) ioError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return r.fail(FrameTruncated)
	}
	return fmt.Errorf("wal: read at offset %d: %w", r.off, err)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// scanWindow is the read size of the damage scans below.
const scanWindow = 1 << 20

// findFrame looks for a whole, checksummed frame starting at an 8-aligned
// offset in [from, end) and returns its offset. Recovery uses it to tell a
// torn tail (nothing valid after the damage) from mid-log corruption (valid
// frames after it). A false positive needs a 32-bit length check and a 32-bit
// CRC to match by chance.
func findFrame(ra io.ReaderAt, from, end int64) (int64, bool, error) {
	buf := make([]byte, scanWindow)
	base := align8(from)
	for base+frameHeaderSize <= end {
		n := int(min(int64(len(buf)), end-base))
		if err := readFullAt(ra, buf[:n], base); err != nil {
			return 0, false, err
		}
		last := 0
		for i := 0; i+frameHeaderSize <= n; i += 8 {
			last = i
			h, st := parseFrameHeader(buf[i : i+frameHeaderSize])
			if st != headerOK || base+int64(i)+frameSize(int(h.length)) > end {
				continue
			}
			if ok, err := frameValidAt(ra, base+int64(i), h, buf[i:i+20]); err != nil {
				return 0, false, err
			} else if ok {
				return base + int64(i), true, nil
			}
		}
		base += int64(last) + 8
	}
	return 0, false, nil
}

func frameValidAt(ra io.ReaderAt, off int64, h frameHeader, hdr20 []byte) (bool, error) {
	body := make([]byte, align8(int64(h.length)))
	if err := readFullAt(ra, body, off+frameHeaderSize); err != nil {
		return false, err
	}
	c := crc32.Update(0, castagnoli, hdr20)
	return crc32.Update(c, castagnoli, body) == h.crc, nil
}

// zeroScan reports whether [from, to) is all zeros (allZero) and whether it
// holds an all-zero 512-byte sector at a 512-aligned file offset or starts
// with an all-zero 8-byte word (hasZeroSector). The second is etcd's test
// for a torn write: a sector that never reached the disk reads as zeros,
// whereas bit rot or a stray write leaves non-zero garbage.
func zeroScan(ra io.ReaderAt, from, to int64) (all, hasZeroSector bool, err error) {
	const sector = 512
	all = true
	buf := make([]byte, scanWindow) // multiple of sector
	for pos := from; pos < to; {
		// Windows after the first are sector-aligned so sectors never straddle.
		n := int(min(int64(len(buf)), to-pos))
		if pos%sector != 0 {
			n = int(min(int64(n), (pos/sector+1)*sector-pos))
		}
		if err := readFullAt(ra, buf[:n], pos); err != nil {
			return false, false, err
		}
		w := buf[:n]
		if pos == from && n >= 8 && allZero(w[:8]) {
			hasZeroSector = true
		}
		if all && !allZero(w) {
			all = false
		}
		if pos%sector == 0 {
			for i := 0; i+sector <= n; i += sector {
				if allZero(w[i : i+sector]) {
					hasZeroSector = true
				}
			}
		}
		if !all && hasZeroSector {
			return
		}
		pos += int64(n)
	}
	return
}

// readFullAt fills b from off. io.ReaderAt may return io.EOF together with a
// full read; only a short read is an error.
func readFullAt(ra io.ReaderAt, b []byte, off int64) error {
	n, err := ra.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wal: read %d bytes at offset %d: %w", len(b), off, err)
}
