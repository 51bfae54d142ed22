// Package codec compresses WAL frame payloads with none, zstd, lz4 or snappy
// behind one small interface, and frames the result so that it describes
// itself.
//
// # Frame format
//
// Every encoded payload, whatever the codec, is
//
//	[id: 1 byte][uncompressed length: uvarint][body]
//
// id       codec   body
// 0x01     none    the bytes as they are
// 0x02     zstd    one zstd frame (RFC 8878), klauspost/compress
// 0x03     lz4     one LZ4 block (no LZ4 frame header), pierrec/lz4/v4
// 0x04     snappy  one snappy block (golang/snappy block format)
//
// Ids 0x00 and 0x05–0xFF are invalid. In particular a payload starting with
// 0xFF is never a codec frame (an Arrow IPC stream starts with 0xFFFFFFFF),
// so a caller may tell its own legacy, unframed payloads apart.
//
// Decoding dispatches on the id, never on the codec the caller holds, so a
// frame written with one codec decodes after the bucket is reopened with
// another. The declared length is bounded by MaxDecodedLen and checked
// against the body (a body cannot plausibly expand beyond the codec's
// maximum ratio, and the decoded size must match exactly), so a corrupt
// header or body yields an error wrapping ErrCorrupt, never a panic or a
// huge allocation.
//
// Encode falls back to id none when compression does not make the body
// smaller than the input (random data, tiny inputs), so the stored size is
// never more than the input plus the header (at most 6 bytes).
//
// All codecs are safe for concurrent use; the zstd encoder and decoder are
// created once per process, on first use, and shared.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// MaxDecodedLen bounds the uncompressed length a frame may declare (1 GiB).
// Encode refuses larger inputs; Decode rejects frames declaring more.
const MaxDecodedLen = 1 << 30

// MaxHeaderLen is the largest header Encode writes: 1 id byte plus the
// uvarint of a length ≤ MaxDecodedLen.
const MaxHeaderLen = 1 + 5

// Frame ids (the first byte of every encoded payload).
const (
	idNone   byte = 0x01
	idZstd   byte = 0x02
	idLZ4    byte = 0x03
	idSnappy byte = 0x04
)

var (
	// ErrCorrupt is wrapped by every error Decode returns for a malformed
	// frame: bad id, bad or oversized length, or a body that does not
	// decode to exactly the declared length.
	ErrCorrupt = errors.New("codec: corrupt frame")
	// ErrUnknownCodec is wrapped by ByName for a name it does not know.
	ErrUnknownCodec = errors.New("codec: unknown codec")
	// ErrTooLarge is returned by Encode for an input over MaxDecodedLen.
	ErrTooLarge = errors.New("codec: input larger than MaxDecodedLen")
)

// Codec compresses and frames payloads.
//
// Encode appends the frame of src to dst and returns the extended slice
// (dst may be nil). Decode appends the decoded bytes of the frame src to dst
// and returns the extended slice; it accepts a frame of any codec, not only
// the receiver's. dst and src must not overlap. On error the returned slice
// is dst as given (its length unchanged), though bytes past its length may
// have been written.
type Codec interface {
	Name() string
	Encode(dst, src []byte) ([]byte, error)
	Decode(dst, src []byte) ([]byte, error)
}

// impl is the body half of a codec; framing is common.
type impl struct {
	id   byte
	name string
	// compress appends the compressed body of src to dst.
	compress func(dst, src []byte) ([]byte, error)
	// decompress appends exactly n decoded bytes of body to dst, whose
	// capacity already holds them.
	decompress func(dst, body []byte, n int) ([]byte, error)
	// maxRatio bounds decoded/compressed for a well-formed body; a frame
	// declaring more than len(body)*maxRatio+ratioSlack is corrupt.
	maxRatio int
}

const ratioSlack = 64

// registry, indexed by id.
var byID = [...]*impl{
	idNone:   {id: idNone, name: "none", maxRatio: 1},
	idZstd:   {id: idZstd, name: "zstd", compress: zstdCompress, decompress: zstdDecompress, maxRatio: zstdMaxRatio},
	idLZ4:    {id: idLZ4, name: "lz4", compress: lz4Compress, decompress: lz4Decompress, maxRatio: lz4MaxRatio},
	idSnappy: {id: idSnappy, name: "snappy", compress: snappyCompress, decompress: snappyDecompress, maxRatio: snappyMaxRatio},
}

// Names lists the valid codec names, as ByName accepts them ("" also means
// none).
func Names() []string { return []string{"none", "zstd", "lz4", "snappy"} }

// ByName returns the codec called name: "" or "none", "zstd", "lz4",
// "snappy" (case-insensitive, surrounding spaces ignored). Any other name is
// an error wrapping ErrUnknownCodec that lists the valid names.
func ByName(name string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "none":
		return byID[idNone], nil
	case "zstd":
		return byID[idZstd], nil
	case "lz4":
		return byID[idLZ4], nil
	case "snappy":
		return byID[idSnappy], nil
	}
	return nil, fmt.Errorf("%w %q: valid names are %q, %q, %q, %q (or \"\" for none)",
		ErrUnknownCodec, name, "none", "zstd", "lz4", "snappy")
}

// None, Zstd, LZ4 and Snappy are the four codecs.
var (
	None   Codec = byID[idNone]
	Zstd   Codec = byID[idZstd]
	LZ4    Codec = byID[idLZ4]
	Snappy Codec = byID[idSnappy]
)

func (c *impl) Name() string   { return c.name }
func (c *impl) String() string { return c.name }

func (c *impl) Encode(dst, src []byte) ([]byte, error) {
	if len(src) > MaxDecodedLen {
		return dst, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(src))
	}
	start := len(dst)
	dst = append(dst, c.id)
	dst = binary.AppendUvarint(dst, uint64(len(src)))
	bodyStart := len(dst)
	if c.compress != nil && len(src) > 0 {
		out, err := c.compress(dst, src)
		if err != nil {
			return dst[:start], fmt.Errorf("codec %s: encode: %w", c.name, err)
		}
		if len(out)-bodyStart < len(src) {
			return out, nil
		}
		// Compression did not pay: store the bytes as they are.
		dst = out[:bodyStart]
		dst[start] = idNone
	} else {
		dst[start] = idNone
	}
	return append(dst, src...), nil
}

func (c *impl) Decode(dst, src []byte) ([]byte, error) { return decodeAppend(dst, src) }

// Decode decodes one frame of any codec into a new slice.
func Decode(src []byte) ([]byte, error) {
	out, err := decodeAppend(nil, src)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// Inspect reads a frame's header without decoding the body: the codec name,
// the declared uncompressed length and the header length. It applies the
// same header checks as Decode.
func Inspect(src []byte) (codec string, decodedLen int, headerLen int, err error) {
	c, n, h, err := parseHeader(src)
	if err != nil {
		return "", 0, 0, err
	}
	return c.name, n, h, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func parseHeader(src []byte) (*impl, int, int, error) {
	if len(src) == 0 {
		return nil, 0, 0, corrupt("empty frame")
	}
	id := src[0]
	if int(id) >= len(byID) || byID[id] == nil {
		return nil, 0, 0, corrupt("unknown codec id 0x%02x", id)
	}
	c := byID[id]
	v, k := binary.Uvarint(src[1:])
	if k <= 0 {
		return nil, 0, 0, corrupt("%s frame: bad length varint", c.name)
	}
	if v > MaxDecodedLen {
		return nil, 0, 0, corrupt("%s frame declares %d bytes, more than the %d limit", c.name, v, MaxDecodedLen)
	}
	h := 1 + k
	body := len(src) - h
	if v > uint64(body)*uint64(c.maxRatio)+ratioSlack || (c.id == idNone && v != uint64(body)) {
		return nil, 0, 0, corrupt("%s frame declares %d bytes from a %d-byte body", c.name, v, body)
	}
	return c, int(v), h, nil
}

func decodeAppend(dst, src []byte) ([]byte, error) {
	c, n, h, err := parseHeader(src)
	if err != nil {
		return dst, err
	}
	body := src[h:]
	if c.id == idNone {
		return append(dst, body...), nil
	}
	if n == 0 {
		// Encode never compresses an empty input.
		return dst, corrupt("%s frame declares 0 bytes with a %d-byte body", c.name, len(body))
	}
	orig, start := dst, len(dst)
	out, err := c.decompress(grow(dst, n), body, n)
	if err != nil {
		return orig, corrupt("%s body: %v", c.name, err)
	}
	if len(out)-start != n {
		return orig, corrupt("%s body decoded to %d bytes, header says %d", c.name, len(out)-start, n)
	}
	return out, nil
}
