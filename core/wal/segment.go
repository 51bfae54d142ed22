package wal

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/persisting/persisting/core/vfs"
)

// segment is the in-memory index entry of one segment file. Only the
// goroutine that owns the Log (Append/Sync/ReleaseBefore/Replay) touches it.
type segment struct {
	seq  uint64
	base uint64 // first offset from the name: no row in the segment is below it
	path string
	// size is the number of valid bytes: the header plus whole frames.
	// Invariant: the file holds exactly size bytes, then, in the active
	// segment only, zeros (Options.Preallocate); except after a failed
	// write, which poisons the Log.
	size     int64
	frames   int
	rows     uint64
	firstRow uint64 // FirstOffset of the first frame, valid when frames > 0
	endRow   uint64 // FirstOffset+Rows of the last frame, valid when frames > 0
}

func (s *segment) add(f Frame, n int64) {
	if s.frames == 0 {
		s.firstRow = f.FirstOffset
	}
	s.frames++
	s.rows += uint64(f.Rows)
	s.endRow = f.FirstOffset + uint64(f.Rows)
	s.size += n
}

const (
	segmentExt = ".wal"
	tempExt    = ".tmp"
	// nameLen is len("%016x-%016x.wal").
	nameLen = 16 + 1 + 16 + len(segmentExt)
)

// segmentName names a segment by sequence number and first offset, both as
// fixed-width hex so that lexical order is sequence order.
func segmentName(seq, base uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, base, segmentExt)
}

func parseSegmentName(name string) (seq, base uint64, ok bool) {
	if len(name) != nameLen || name[16] != '-' || !strings.HasSuffix(name, segmentExt) {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(name[:16], 16, 64)
	base, err2 := strconv.ParseUint(name[17:33], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return seq, base, true
}

// createSegment makes a new segment durable and opens it for appending.
//
// The header is written and fsynced under a temporary name, then renamed into
// place and the directory fsynced. So a segment name, once visible after a
// crash, always has a whole header behind it; a leftover temporary file is
// deleted by Open. The directory fsync is what makes the new name survive a
// crash (ALICE: a rename without it is not durable).
func createSegment(fs vfs.FS, dir string, seq, base uint64) (vfs.File, *segment, error) {
	path := filepath.Join(dir, segmentName(seq, base))
	tmp := path + tempExt
	wrap := func(op, file string, err error) (vfs.File, *segment, error) {
		return nil, nil, &WALError{Op: op, File: file, Offset: -1, Err: err}
	}
	f, err := fs.Create(tmp)
	if err != nil {
		return wrap("create segment", tmp, err)
	}
	if _, err := f.Write(encodeSegmentHeader(seq, base)); err != nil {
		f.Close()
		fs.Remove(tmp) // best effort; Open removes leftovers too
		return wrap("write segment header", tmp, err)
	}
	if err := syncData(f); err != nil {
		f.Close()
		return wrap("sync segment header", tmp, err)
	}
	if err := f.Close(); err != nil {
		return wrap("close segment", tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		fs.Remove(tmp)
		return wrap("rename segment", tmp, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return wrap("sync dir", dir, err)
	}
	w, err := openForAppend(fs, path, segmentHeaderSize)
	if err != nil {
		return nil, nil, err
	}
	return w, &segment{seq: seq, base: base, path: path, size: segmentHeaderSize}, nil
}

// openForAppend opens a segment for writing at off (the end of its valid
// data). Writes go through the file position rather than O_APPEND so that the
// position is exactly what the index says, whatever the file size is.
func openForAppend(fs vfs.FS, path string, off int64) (vfs.File, error) {
	f, err := fs.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, &WALError{Op: "open segment", File: path, Offset: -1, Err: err}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, &WALError{Op: "seek segment", File: path, Offset: off, Err: err}
	}
	return f, nil
}

// sortSegments orders segments by sequence number, then path (duplicates of
// one number stay next to each other, so the scan reports them).
func sortSegments(segs []*segment) {
	slices.SortFunc(segs, func(a, b *segment) int {
		if c := cmp.Compare(a.seq, b.seq); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
}
