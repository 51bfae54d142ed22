package wal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/persisting/persisting/core/vfs"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf []byte
	var want []Frame
	for n := 0; n < 20; n++ {
		f := Frame{FirstOffset: uint64(n * 100), Rows: uint32(n + 1), Payload: bytes.Repeat([]byte{byte(n + 1)}, n*3)}
		before := len(buf)
		buf = AppendFrame(buf, f)
		if got := int64(len(buf) - before); got != frameSize(len(f.Payload)) || got%8 != 0 {
			t.Fatalf("frame %d: size %d", n, got)
		}
		want = append(want, f)
	}
	r := NewFrameReader(bytes.NewReader(buf), 0, int64(len(buf)))
	for i, w := range want {
		f, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.FirstOffset != w.FirstOffset || f.Rows != w.Rows || !bytes.Equal(f.Payload, w.Payload) {
			t.Fatalf("frame %d: got %+v want %+v", i, f, w)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// A zero length word must never decode as a frame, or zeros could not mean
// "unwritten".
func TestZeroWordIsNeverAFrame(t *testing.T) {
	var b [4]byte
	if lengthCheck(b[:]) == 0 {
		t.Fatal("length check of 0 is 0")
	}
	enc := AppendFrame(nil, Frame{Rows: 1})
	if bytes.Equal(enc[:8], make([]byte, 8)) {
		t.Fatal("empty-payload frame starts with a zero word")
	}
}

func TestFrameReaderErrors(t *testing.T) {
	good := AppendFrame(nil, Frame{FirstOffset: 7, Rows: 2, Payload: []byte("hello world")})
	cases := []struct {
		name string
		data []byte
		kind FrameErrorKind
	}{
		{"zeros", make([]byte, 40), FrameZero},
		{"short zeros", make([]byte, 5), FrameZero},
		{"short garbage", []byte{1, 2, 3}, FrameTruncated},
		{"cut header", good[:12], FrameTruncated},
		{"cut body", good[:len(good)-1], FrameTruncated},
		{"bad length", append([]byte{9}, good[1:]...), FrameBadLength},
		{"bad crc", append(append([]byte{}, good[:30]...), append([]byte{good[30] ^ 1}, good[31:]...)...), FrameBadChecksum},
		{"bad padding", append(append([]byte{}, good[:len(good)-1]...), 1), FrameBadChecksum},
	}
	for _, c := range cases {
		r := NewFrameReader(bytes.NewReader(c.data), 0, int64(len(c.data)))
		_, err := r.Next()
		var fe *FrameError
		if !errors.As(err, &fe) || fe.Kind != c.kind || fe.Offset != 0 {
			t.Errorf("%s: got %v, want %v", c.name, err, c.kind)
		}
	}
}

func TestSegmentName(t *testing.T) {
	name := segmentName(3, 0xabc)
	if name != "0000000000000003-0000000000000abc.wal" {
		t.Fatal(name)
	}
	seq, base, ok := parseSegmentName(name)
	if !ok || seq != 3 || base != 0xabc {
		t.Fatal(seq, base, ok)
	}
	for _, bad := range []string{"x.wal", "0000000000000003_0000000000000abc.wal", "000000000000000g-0000000000000abc.wal"} {
		if _, _, ok := parseSegmentName(bad); ok {
			t.Error(bad)
		}
	}
}

// writeSegment writes a segment file by hand: header plus frames.
func writeSegment(t *testing.T, dir string, seq, base uint64, frames ...Frame) string {
	t.Helper()
	b := encodeSegmentHeader(seq, base)
	for _, f := range frames {
		b = AppendFrame(b, f)
	}
	path := filepath.Join(dir, segmentName(seq, base))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func fr(off uint64, rows uint32) Frame {
	return Frame{FirstOffset: off, Rows: rows, Payload: []byte("p")}
}

// An empty segment in the middle of the sequence holds no rows and is fine;
// an empty last segment is removed and its sequence number reused.
func TestEmptySegments(t *testing.T) {
	dir := t.TempDir()
	writeSegment(t, dir, 0, 0, fr(0, 10))
	writeSegment(t, dir, 1, 10)
	writeSegment(t, dir, 2, 10, fr(10, 5))
	last := writeSegment(t, dir, 3, 15)
	l, info, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if info.Frames != 2 || info.Rows != 15 || info.Segments != 3 || len(info.RemovedFiles) != 1 || info.RemovedFiles[0] != last {
		t.Fatalf("%+v", info)
	}
	if _, err := l.Append(fr(15, 1)); err != nil { // goes to the reopened seq 2
		t.Fatal(err)
	}
	if l.Segments() != 3 {
		t.Fatalf("segments %d", l.Segments())
	}
	// The empty middle segment is released like any other.
	if err := l.ReleaseBefore(10); err != nil {
		t.Fatal(err)
	}
	if l.Segments() != 1 {
		t.Fatalf("segments %d", l.Segments())
	}
	l.Close()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != segmentName(2, 10) {
		t.Fatalf("files %v", ents)
	}
}

func TestStructuralCorruption(t *testing.T) {
	cases := []struct {
		name  string
		build func(dir string)
	}{
		{"offsets go backwards in a segment", func(dir string) {
			writeSegment(t, dir, 0, 0, fr(0, 10), fr(5, 10), fr(20, 1))
		}},
		{"offsets go backwards across segments", func(dir string) {
			writeSegment(t, dir, 0, 0, fr(0, 10))
			writeSegment(t, dir, 1, 5, fr(5, 10))
		}},
		{"frame below segment base", func(dir string) {
			writeSegment(t, dir, 0, 100, fr(0, 10))
		}},
		{"duplicate sequence", func(dir string) {
			writeSegment(t, dir, 0, 0, fr(0, 10))
			writeSegment(t, dir, 0, 10, fr(10, 10))
		}},
		{"header does not match name", func(dir string) {
			p := writeSegment(t, dir, 0, 0, fr(0, 10), fr(10, 10))
			os.Rename(p, filepath.Join(dir, segmentName(0, 1)))
		}},
		{"zero rows", func(dir string) {
			writeSegment(t, dir, 0, 0, fr(0, 0))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.build(dir)
			_, _, err := Open(Options{Dir: dir})
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.File == "" {
				t.Fatalf("got %v, want CorruptionError", err)
			}
			l, info, err := Open(Options{Dir: dir, TruncateCorrupt: true})
			if err != nil {
				t.Fatal(err)
			}
			if info.Corruption == nil {
				t.Fatalf("salvage not reported: %+v", info)
			}
			l.Close()
			if _, _, err := Open(Options{Dir: dir}); err != nil {
				t.Fatalf("after salvage: %v", err)
			}
		})
	}
}

func TestAppendArgumentErrors(t *testing.T) {
	l, _, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(Frame{FirstOffset: 1}); !errors.Is(err, ErrEmptyFrame) {
		t.Fatal(err)
	}
	if _, err := l.Append(fr(10, 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(fr(14, 1)); !errors.Is(err, ErrOffsetOrder) {
		t.Fatal(err)
	}
	if _, err := l.Append(fr(^uint64(0), 2)); !errors.Is(err, ErrOffsetOrder) {
		t.Fatal(err)
	}
	if _, err := l.Append(fr(20, 1)); err != nil { // gaps are allowed
		t.Fatal(err)
	}
	if l.Err() != nil {
		t.Fatal("argument errors must not poison")
	}
}

func TestSyncDataOnRealFile(t *testing.T) {
	f, err := vfs.Default.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("x"))
	if err := syncData(f); err != nil {
		t.Fatal(err)
	}
}
