package waltest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/persisting/persisting/core/wal"
)

// fuzzSeeds are a few well-formed and damaged frame streams; the files in
// testdata/fuzz/FuzzFrameReader add more.
func fuzzSeeds() [][]byte {
	var good []byte
	for i := 0; i < 3; i++ {
		good = wal.AppendFrame(good, makeFrame(i, 20*i))
	}
	torn := append([]byte{}, good[:len(good)-5]...)
	flipped := append([]byte{}, good...)
	flipped[40] ^= 1
	zeros := append(append([]byte{}, good...), make([]byte, 64)...)
	return [][]byte{nil, good, torn, flipped, zeros, make([]byte, 24), {1, 2, 3}}
}

// FuzzFrameReader: any byte stream decodes to a prefix of whole frames that
// re-encode to exactly the bytes they came from, then either a clean end or
// a *FrameError at the end of that prefix. Never a panic, never a huge
// allocation from a garbage length.
func FuzzFrameReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := wal.NewFrameReader(bytes.NewReader(data), 0, int64(len(data)))
		var off int64
		for {
			fr, err := r.Next()
			if err == io.EOF {
				if off != int64(len(data)) {
					t.Fatalf("EOF at %d of %d", off, len(data))
				}
				return
			}
			var fe *wal.FrameError
			if errors.As(err, &fe) {
				if fe.Offset != off || r.Offset() != off {
					t.Fatalf("error at %d, valid prefix ends at %d", fe.Offset, off)
				}
				if fe.Kind == wal.FrameZero && !bytes.Equal(data[off:min(off+8, int64(len(data)))], make([]byte, min(8, int64(len(data))-off))) {
					t.Fatalf("FrameZero on non-zero bytes")
				}
				if _, err2 := r.Next(); err2 != err {
					t.Fatal("error is not sticky")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			enc := wal.AppendFrame(nil, fr)
			if off+int64(len(enc)) > int64(len(data)) || !bytes.Equal(enc, data[off:off+int64(len(enc))]) {
				t.Fatalf("frame at %d does not re-encode to its bytes", off)
			}
			off += int64(len(enc))
			if r.Offset() != off {
				t.Fatalf("Offset %d, want %d", r.Offset(), off)
			}
		}
	})
}

// FuzzOpen: fuzz bytes as the body of the only segment. Open either fails
// with a *CorruptionError or recovers exactly the decodable prefix, truncates
// the file to it, and replays it.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	// A real segment header (seq 0, base 0) to put in front.
	hdrDir := f.TempDir()
	writeLog(f, hdrDir, 0, []wal.Frame{{FirstOffset: 0, Rows: 1}})
	seg := onlySegment(f, hdrDir)
	header := readFile(f, seg)[:segHeader]
	name := filepath.Base(seg)
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		writeFile(t, path, append(append([]byte{}, header...), body...))
		l, info, err := wal.Open(wal.Options{Dir: dir})
		if err != nil {
			var ce *wal.CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("open: %v", err)
			}
			return
		}
		defer l.Close()
		// The prefix a plain reader decodes.
		r := wal.NewFrameReader(bytes.NewReader(body), 0, int64(len(body)))
		var want []wal.Frame
		for {
			fr, err := r.Next()
			if err != nil {
				break
			}
			want = append(want, fr)
		}
		got := replay(t, l, 0)
		if len(want) == 0 && len(got) == 0 {
			return // possibly removed as an empty segment
		}
		if !sameFrames(got, want) || info.Frames != len(want) {
			t.Fatalf("recovered %d frames, reader decodes %d", len(got), len(want))
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Size() != int64(segHeader)+r.Offset() {
			t.Fatalf("file not truncated to the valid prefix: %v", err)
		}
	})
}
