package codec

import (
	"errors"
	"fmt"
	"sync"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Maximum expansion of a well-formed body (decoded bytes per body byte).
const (
	// A zstd RLE block is 4 bytes (3-byte header, 1 byte) for up to 128 KiB.
	zstdMaxRatio = 128 << 10 / 4
	// An LZ4 match adds at most 255 bytes of length per extra byte.
	lz4MaxRatio = 256
	// A snappy copy tag encodes at most 64 bytes in 2–5 bytes.
	snappyMaxRatio = 32
)

// ---- zstd ----------------------------------------------------------------

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// zstdInit builds the shared encoder and decoder. EncodeAll and DecodeAll
// are safe for concurrent use; each keeps an internal pool sized by
// GOMAXPROCS, so one pair serves the whole process.
func zstdInit() error {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(0),
			// WAL frames are checksummed by the WAL (CRC-32C); zstd's
			// own xxhash still guards the decoder against bad bodies.
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxDecodedLen),
			// Decode into the capacity we reserved for the declared
			// length and never beyond it.
			zstd.WithDecodeAllCapLimit(true))
		if zstdErr != nil {
			zstdEnc.Close()
			zstdEnc = nil
		}
	})
	if zstdErr != nil {
		return fmt.Errorf("zstd init: %w", zstdErr)
	}
	return nil
}

func zstdCompress(dst, src []byte) ([]byte, error) {
	if err := zstdInit(); err != nil {
		return dst, err
	}
	return zstdEnc.EncodeAll(src, dst), nil
}

func zstdDecompress(dst, body []byte, n int) ([]byte, error) {
	if err := zstdInit(); err != nil {
		return dst, err
	}
	// dst has exactly n bytes of spare capacity reserved by the caller.
	return zstdDec.DecodeAll(body, dst[:len(dst):len(dst)+n])
}

// ---- lz4 (block format) --------------------------------------------------

var lz4Pool = sync.Pool{New: func() any { return new(lz4.Compressor) }}

func lz4Compress(dst, src []byte) ([]byte, error) {
	start := len(dst)
	bound := lz4.CompressBlockBound(len(src))
	dst = grow(dst, bound)
	c := lz4Pool.Get().(*lz4.Compressor)
	n, err := c.CompressBlock(src, dst[start:start+bound])
	lz4Pool.Put(c)
	if err != nil {
		return dst[:start], err
	}
	if n == 0 {
		return dst[:start], errors.New("lz4: no output with a full-size buffer")
	}
	return dst[:start+n], nil
}

func lz4Decompress(dst, body []byte, n int) ([]byte, error) {
	start := len(dst)
	got, err := lz4.UncompressBlock(body, dst[start:start+n])
	if err != nil {
		return dst, err
	}
	return dst[:start+got], nil
}

// ---- snappy (block format) -----------------------------------------------

func snappyCompress(dst, src []byte) ([]byte, error) {
	max := snappy.MaxEncodedLen(len(src))
	if max < 0 {
		return dst, snappy.ErrTooLarge
	}
	start := len(dst)
	dst = grow(dst, max)
	out := snappy.Encode(dst[start:start+max], src)
	return dst[:start+len(out)], nil
}

func snappyDecompress(dst, body []byte, n int) ([]byte, error) {
	dl, err := snappy.DecodedLen(body)
	if err != nil {
		return dst, err
	}
	if dl != n {
		return dst, fmt.Errorf("snappy block says %d bytes, frame says %d", dl, n)
	}
	start := len(dst)
	out, err := snappy.Decode(dst[start:start+n], body)
	if err != nil {
		return dst, err
	}
	return dst[:start+len(out)], nil
}

// grow makes room for n more bytes past len(dst), keeping its contents.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	out := make([]byte, len(dst), len(dst)+n)
	copy(out, dst)
	return out
}

// ZstdEncode appends one zstd frame holding src to dst, with the
// process-wide encoder every zstd user of core shares (the WAL's frames
// here, Lance page buffers in core/lance/encoding).
func ZstdEncode(dst, src []byte) ([]byte, error) {
	return zstdCompress(dst, src)
}

// ZstdDecode appends the content of the zstd frame src to dst, with the
// shared decoder. The content may not exceed limit bytes (at most
// MaxDecodedLen); sizeHint, when positive, is the expected size (a length
// prefix), else the frame header's content size or a guess is used and
// grown as needed, so a corrupt frame never allocates beyond limit.
func ZstdDecode(dst, src []byte, sizeHint, limit int) ([]byte, error) {
	if err := zstdInit(); err != nil {
		return dst, err
	}
	limit = min(limit, MaxDecodedLen)
	c := sizeHint
	if c <= 0 {
		var h zstd.Header
		if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize <= uint64(limit) {
			c = int(h.FrameContentSize)
		} else {
			c = min(limit, 4*len(src)+1<<16)
		}
	}
	for {
		c = min(c, limit)
		buf := make([]byte, len(dst), len(dst)+c)
		copy(buf, dst)
		out, err := zstdDec.DecodeAll(src, buf)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) && c < limit {
			c *= 2
			continue
		}
		return out, err
	}
}
