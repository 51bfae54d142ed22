package wal

import (
	"encoding/binary"
	"hash/crc32"
)

// On-disk layout (all integers little-endian).
//
// A segment file is a 32-byte header followed by frames:
//
//	segment header  [0:4]   magic "PWAL"
//	                [4:8]   format version (1)
//	                [8:16]  sequence number   (same as in the file name)
//	                [16:24] first offset      (same as in the file name)
//	                [24:28] CRC-32C of [0:24]
//	                [28:32] zero
//
//	frame header    [0:4]   payload length n
//	                [4:8]   length check = CRC-32C of bytes [0:4]
//	                [8:16]  offset of the frame's first row
//	                [16:20] row count
//	                [20:24] CRC-32C of header [0:20], payload and padding
//	payload         n bytes, then zero padding to a multiple of 8
//
// Invariants the reader relies on:
//   - Every frame starts and ends 8-byte aligned in the file, so the 8-byte
//     length word never straddles a sector and a reader can resynchronise
//     on 8-byte boundaries when looking for data after damage.
//   - The length word carries its own check, so a torn or garbage length is
//     detected before it is used to size a read or an allocation.
//   - An all-zero length word is never a valid frame (the check of length 0
//     is not 0), so zeros mean unwritten or preallocated space.
//   - The frame CRC covers every header field and the padding, so no byte of
//     a frame can change unnoticed.
const (
	segmentHeaderSize = 32
	frameHeaderSize   = 24
	segmentMagic      = "PWAL"
	formatVersion     = 1

	// MaxPayload bounds one frame's payload. It keeps a garbage length that
	// happens to pass its check from driving a huge allocation.
	MaxPayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// align8 rounds n up to a multiple of 8.
func align8(n int64) int64 { return (n + 7) &^ 7 }

// frameSize is the on-disk size of a frame with an n-byte payload.
func frameSize(n int) int64 { return frameHeaderSize + align8(int64(n)) }

// lengthCheck is the check stored beside a frame's payload length.
func lengthCheck(lenBytes []byte) uint32 { return crc32.Checksum(lenBytes[:4], castagnoli) }

// AppendFrame appends the encoding of f to dst and returns the result. It is
// exported for tools and tests; Log.Append uses it.
func AppendFrame(dst []byte, f Frame) []byte {
	n := len(f.Payload)
	start := len(dst)
	total := int(frameSize(n))
	dst = append(dst, make([]byte, total)...)
	b := dst[start:]
	binary.LittleEndian.PutUint32(b[0:4], uint32(n))
	binary.LittleEndian.PutUint32(b[4:8], lengthCheck(b[0:4]))
	binary.LittleEndian.PutUint64(b[8:16], f.FirstOffset)
	binary.LittleEndian.PutUint32(b[16:20], f.Rows)
	copy(b[frameHeaderSize:], f.Payload)
	// The padding is already zero (fresh bytes from make).
	binary.LittleEndian.PutUint32(b[20:24], frameCRC(b[:20], b[frameHeaderSize:total]))
	return dst
}

// frameCRC is the CRC-32C of the first 20 header bytes followed by the
// payload and its padding.
func frameCRC(hdr20, body []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr20)
	return crc32.Update(c, castagnoli, body)
}

// frameHeader is a decoded frame header.
type frameHeader struct {
	length      uint32
	firstOffset uint64
	rows        uint32
	crc         uint32
}

// headerState classifies the first 8 bytes of a would-be frame.
type headerState int

const (
	headerOK      headerState = iota
	headerZero                // all-zero length word: unwritten or preallocated space
	headerBadLen              // length check fails
	headerTooLong             // length passes its check but exceeds MaxPayload
)

func parseFrameHeader(b []byte) (frameHeader, headerState) {
	_ = b[frameHeaderSize-1]
	if binary.LittleEndian.Uint64(b[0:8]) == 0 {
		return frameHeader{}, headerZero
	}
	h := frameHeader{
		length:      binary.LittleEndian.Uint32(b[0:4]),
		firstOffset: binary.LittleEndian.Uint64(b[8:16]),
		rows:        binary.LittleEndian.Uint32(b[16:20]),
		crc:         binary.LittleEndian.Uint32(b[20:24]),
	}
	if binary.LittleEndian.Uint32(b[4:8]) != lengthCheck(b[0:4]) {
		return h, headerBadLen
	}
	if h.length > MaxPayload {
		return h, headerTooLong
	}
	return h, headerOK
}

func encodeSegmentHeader(seq, firstOffset uint64) []byte {
	b := make([]byte, segmentHeaderSize)
	copy(b[0:4], segmentMagic)
	binary.LittleEndian.PutUint32(b[4:8], formatVersion)
	binary.LittleEndian.PutUint64(b[8:16], seq)
	binary.LittleEndian.PutUint64(b[16:24], firstOffset)
	binary.LittleEndian.PutUint32(b[24:28], crc32.Checksum(b[0:24], castagnoli))
	return b
}

// checkSegmentHeader returns "" when b is a valid header for (seq,
// firstOffset), else why not.
func checkSegmentHeader(b []byte, seq, firstOffset uint64) string {
	if len(b) < segmentHeaderSize {
		return "segment header is short"
	}
	if string(b[0:4]) != segmentMagic {
		return "bad segment magic"
	}
	if crc32.Checksum(b[0:24], castagnoli) != binary.LittleEndian.Uint32(b[24:28]) {
		return "segment header checksum mismatch"
	}
	if v := binary.LittleEndian.Uint32(b[4:8]); v != formatVersion {
		return "unsupported segment format version"
	}
	if binary.LittleEndian.Uint64(b[8:16]) != seq || binary.LittleEndian.Uint64(b[16:24]) != firstOffset {
		return "segment header does not match file name"
	}
	return ""
}
