package encoding

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/persisting/persisting/core/codec"
)

// Buffer compression framing of Lance 2.0 (encodings/physical/block.rs, §9.1):
//
//	zstd: [u64 LE uncompressed length][zstd frame]   (a bare frame is accepted on read)
//	lz4:  [u32 LE uncompressed length][raw LZ4 block] (not the LZ4 frame format)
//
// Compression is applied per page buffer, and only to byte-aligned flat
// buffers: Lance's bitmap path ignores the compression field.

const (
	CompressionZstd = "zstd"
	CompressionLZ4  = "lz4"
)

// maxDecompressed bounds what one compressed buffer may expand to, so that a
// corrupt length prefix cannot make the reader allocate without bound.
const maxDecompressed = 1 << 30

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// Page buffers get their own zstd encoder: the codec package's shared one
// also serves the WAL (checksummed frames, SpeedDefault), and pages are
// compressed by several goroutines at once. No frame checksum (Lance does
// not ask for one and our framing carries the length). SpeedFastest
// (~level 1) rather than SpeedDefault (~level 3), measured on the pages of
// bench_lance.py's tables: 1.5-2x faster, and the files come out smaller
// (narrow 1.369 -> 1.335 MB, wide 7.374 -> 7.329 MB; sequential ids compress
// 30% better, random strings 3% better, user-N names 3% worse). On plain
// text (Go source, JSON) it is 5-9% larger than SpeedDefault.
var (
	zstdOnce sync.Once
	zstdPage *zstd.Encoder
	zstdErr  error
)

func zstdEncoder() (*zstd.Encoder, error) {
	zstdOnce.Do(func() {
		zstdPage, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	})
	if zstdErr != nil {
		return nil, fmt.Errorf("zstd: %w", zstdErr)
	}
	return zstdPage, nil
}

// compressBuffer frames raw with the scheme. ok is false when compressing
// does not pay off (or lz4 finds nothing to compress): the caller then writes
// the page buffer uncompressed and leaves the compression field unset, which
// is legal because compression is per page.
func compressBuffer(scheme string, raw []byte) (out []byte, ok bool, err error) {
	switch scheme {
	case CompressionZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return nil, false, err
		}
		out = binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(raw)/2), uint64(len(raw)))
		out = zstdFrames(enc, raw, out)
	case CompressionLZ4:
		if uint64(len(raw)) > 1<<32-1 {
			return nil, false, nil
		}
		dst := make([]byte, 4+lz4.CompressBlockBound(len(raw)))
		binary.LittleEndian.PutUint32(dst, uint32(len(raw)))
		var c lz4.Compressor
		n, err := c.CompressBlock(raw, dst[4:])
		if err != nil {
			return nil, false, err
		}
		if n == 0 {
			return nil, false, nil
		}
		out = dst[:4+n]
	default:
		return nil, false, fmt.Errorf("%w: compression %q", ErrUnsupported, scheme)
	}
	if len(out) >= len(raw) {
		return nil, false, nil
	}
	return out, true, nil
}

// zstdChunk is the most raw bytes one zstd frame of a page buffer holds. A
// larger buffer is cut into frames compressed in parallel: a flush has few
// pages (a column of short strings is one or two), too few to keep every
// core busy otherwise. A sequence of frames is a valid zstd stream, which
// Lance's reader (zstd's bulk decompression) and ours decode whole; each
// frame starting without the history of the one before costs a few hundred
// bytes a MiB.
const zstdChunk = 256 << 10

// zstdFrames appends raw to out as zstd frames of at most zstdChunk raw
// bytes, compressed concurrently (enc bounds how many at once).
func zstdFrames(enc *zstd.Encoder, raw, out []byte) []byte {
	n := (len(raw) + zstdChunk - 1) / zstdChunk
	if n <= 1 {
		return enc.EncodeAll(raw, out)
	}
	frames := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range frames {
		chunk := raw[i*zstdChunk : min(len(raw), (i+1)*zstdChunk)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			frames[i] = enc.EncodeAll(chunk, make([]byte, 0, len(chunk)/2))
		}()
	}
	wg.Wait()
	for _, f := range frames {
		out = append(out, f...)
	}
	return out
}

func decompressBuffer(scheme string, buf []byte) ([]byte, error) {
	switch scheme {
	case CompressionZstd:
		want := int64(-1)
		frame := buf
		if !bytes.HasPrefix(buf, zstdMagic) {
			if len(buf) < 8 {
				return nil, fmt.Errorf("zstd buffer of %d bytes has no length prefix", len(buf))
			}
			n := binary.LittleEndian.Uint64(buf)
			if n > maxDecompressed {
				return nil, fmt.Errorf("zstd buffer claims %d uncompressed bytes (limit %d)", n, maxDecompressed)
			}
			want, frame = int64(n), buf[8:]
		}
		out, err := codec.ZstdDecode(nil, frame, int(max(want, 0)), maxDecompressed)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if want >= 0 && int64(len(out)) != want {
			return nil, fmt.Errorf("zstd buffer decoded to %d bytes, prefix says %d", len(out), want)
		}
		return out, nil
	case CompressionLZ4:
		if len(buf) < 4 {
			return nil, fmt.Errorf("lz4 buffer of %d bytes has no length prefix", len(buf))
		}
		n := uint64(binary.LittleEndian.Uint32(buf))
		// An LZ4 block expands at most ~255x; a larger claim is corrupt.
		if n > 255*uint64(len(buf))+16 || n > maxDecompressed {
			return nil, fmt.Errorf("lz4 buffer of %d bytes claims %d uncompressed bytes", len(buf), n)
		}
		out := make([]byte, n)
		m, err := lz4.UncompressBlock(buf[4:], out)
		if err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if uint64(m) != n {
			return nil, fmt.Errorf("lz4 buffer decoded to %d bytes, prefix says %d", m, n)
		}
		return out, nil
	case "", "none":
		return buf, nil
	}
	return nil, fmt.Errorf("%w: compression scheme %q", ErrUnsupported, scheme)
}
