package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/persisting/persisting/core/vfs"
)

// RecoveryInfo reports what Open found and what it changed on disk.
type RecoveryInfo struct {
	Segments    int    // segment files in use after recovery
	Frames      int    // whole frames recovered
	Rows        uint64 // sum of their row counts
	FirstOffset uint64 // first row held by the log, valid when Frames > 0
	NextOffset  uint64 // end of the last frame's rows, valid when Frames > 0

	// TruncatedFile lost its last TruncatedBytes bytes (a torn or zero-filled
	// tail, or, under TruncateCorrupt, everything from the corrupt frame on).
	TruncatedFile  string
	TruncatedBytes int64
	TruncateReason string
	// ZeroTail: the cut bytes were all zeros (unwritten or preallocated
	// space), so no frame was lost there.
	ZeroTail bool
	// DroppedFrames counts frames that still checked out but lay after a torn
	// frame in TruncatedFile and were cut with it (see Open). Frames in
	// DroppedSegments are not counted.
	DroppedFrames int
	// DroppedSegments left the log: later segments after corruption, or a
	// segment whose header is damaged (both under TruncateCorrupt). They are
	// moved into the damaged/ directory, not deleted.
	DroppedSegments []string
	// Evidence lists the files in dir/damaged that recovery wrote: dropped
	// segments, and the bytes cut from a tail unless they were all zeros.
	// Nothing recovery cuts that could hold a record is deleted.
	Evidence []string
	// Corruption is the mid-log corruption that TruncateCorrupt repaired.
	Corruption *CorruptionError
	// RemovedFiles held no frames and were deleted: leftover temporary
	// segments and an empty (header-only) last segment.
	RemovedFiles []string
}

// Open opens the log in opts.Dir, creating the directory if needed, scans
// every segment and repairs the tail.
//
// What counts as a torn tail, repaired by truncation and reported in
// RecoveryInfo: in the last segment, a frame that fails to decode (short,
// zero, bad length, bad CRC) with no valid frame anywhere after it in the
// file; or one that has valid frames after it but itself contains an
// all-zero 512-byte sector or an all-zero length word (etcd's torn-write test:
// after a crash, unsynced pages can reach the disk out of order, and a page
// that did not make it reads as zeros). Zeros after the last frame are a
// clean (ZeroTail) end.
//
// Everything else is corruption, returned as a *CorruptionError naming the
// file and offset: damage in any segment but the last, non-zero damage
// followed by valid frames, a gap or duplicate in the segment sequence, a
// bad segment header with data behind it, or valid frames whose offsets go
// backwards. With Options.TruncateCorrupt, Open instead truncates at the
// damage, deletes every later segment, and reports both.
func Open(opts Options) (*Log, RecoveryInfo, error) {
	var info RecoveryInfo
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	if opts.Dir == "" {
		return nil, info, errors.New("wal: Options.Dir is empty")
	}
	segSize := opts.SegmentSize
	if segSize <= 0 {
		segSize = DefaultSegmentSize
	}
	dir := filepath.Clean(opts.Dir)
	if err := makeDir(fs, dir); err != nil {
		return nil, info, err
	}
	r := &recovery{fs: fs, dir: dir, opts: opts, info: &info}
	segs, nextSeq, err := r.list()
	if err != nil {
		return nil, info, err
	}
	if segs, err = r.scan(segs); err != nil {
		return nil, info, err
	}
	// An empty last segment is a creation that a crash interrupted before
	// its first frame. Its name fixes a base offset that the engine's next
	// frame need not match, so it is removed and its sequence number reused.
	if n := len(segs); n > 0 && segs[n-1].frames == 0 {
		last := segs[n-1]
		if err := r.remove(last.path); err != nil {
			return nil, info, err
		}
		info.RemovedFiles = append(info.RemovedFiles, last.path)
		segs = segs[:n-1]
		nextSeq = last.seq
	} else if n > 0 {
		nextSeq = segs[n-1].seq + 1
	}

	l := &Log{fs: fs, dir: dir, segSize: segSize, segs: segs, nextSeq: nextSeq, prealloc: opts.Preallocate}
	for _, s := range segs {
		l.size.Add(s.size)
		if s.frames == 0 {
			continue
		}
		if info.Frames == 0 {
			info.FirstOffset = s.firstRow
		}
		info.Frames += s.frames
		info.Rows += s.rows
		info.NextOffset = s.endRow
		l.nextOffset, l.hasOffset = s.endRow, true
	}
	info.Segments = len(segs)
	l.nsegs.Store(int64(len(segs)))
	if n := len(segs); n > 0 {
		w, err := openForAppend(fs, segs[n-1].path, segs[n-1].size)
		if err != nil {
			return nil, info, err
		}
		l.active, l.fileEnd = w, segs[n-1].size
	}
	return l, info, nil
}

// makeDir creates dir if missing and then fsyncs its parent, so that the
// directory itself survives a crash.
func makeDir(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return &WALError{Op: "stat dir", File: dir, Offset: -1, Err: err}
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return &WALError{Op: "create dir", File: dir, Offset: -1, Err: err}
	}
	if err := fs.SyncDir(filepath.Dir(dir)); err != nil {
		return &WALError{Op: "sync dir", File: filepath.Dir(dir), Offset: -1, Err: err}
	}
	return nil
}

type recovery struct {
	fs   vfs.FS
	dir  string
	opts Options
	info *RecoveryInfo
}

// damage is where and why a segment stopped decoding.
type damage struct {
	offset  int64
	reason  string
	corrupt bool // not a torn tail
	zero    bool // every byte from offset to the end of the file is zero
	dropped int  // valid frames after offset that a truncation drops
}

// list reads the directory, deletes leftover temporary segments and returns
// the segments sorted by sequence number, plus the sequence number to use if
// none survives.
func (r *recovery) list() ([]*segment, uint64, error) {
	entries, err := r.fs.ReadDir(r.dir)
	if err != nil {
		return nil, 0, &WALError{Op: "read dir", File: r.dir, Offset: -1, Err: err}
	}
	var segs []*segment
	var nextSeq uint64
	removed := false
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(r.dir, name)
		switch {
		case strings.HasSuffix(name, segmentExt+tempExt):
			// A creation interrupted before its rename: never visible, never
			// held a frame.
			if err := r.fs.Remove(path); err != nil {
				return nil, 0, &WALError{Op: "remove temp segment", File: path, Offset: -1, Err: err}
			}
			r.info.RemovedFiles = append(r.info.RemovedFiles, path)
			removed = true
		case strings.HasSuffix(name, segmentExt):
			seq, base, ok := parseSegmentName(name)
			if !ok {
				return nil, 0, fmt.Errorf("wal: %s: unexpected file name in the log directory", path)
			}
			segs = append(segs, &segment{seq: seq, base: base, path: path})
			nextSeq = max(nextSeq, seq+1)
		}
	}
	if removed {
		if err := r.fs.SyncDir(r.dir); err != nil {
			return nil, 0, &WALError{Op: "sync dir", File: r.dir, Offset: -1, Err: err}
		}
	}
	sortSegments(segs)
	return segs, nextSeq, nil
}

// scan validates the segments in order and applies the repair policy. It
// returns the segments to keep.
func (r *recovery) scan(segs []*segment) ([]*segment, error) {
	var prevEnd uint64 // end of the rows of the last frame seen so far
	hasPrev := false
	for i, seg := range segs {
		if i > 0 {
			prev := segs[i-1]
			var reason string
			switch {
			case seg.seq == prev.seq:
				reason = fmt.Sprintf("duplicate segment sequence number %d (also %s)", seg.seq, prev.path)
			case seg.seq != prev.seq+1:
				reason = fmt.Sprintf("missing segment(s): sequence jumps from %d to %d", prev.seq, seg.seq)
			case hasPrev && seg.base < prevEnd:
				reason = fmt.Sprintf("segment starts at offset %d, before the previous segment's end %d", seg.base, prevEnd)
			}
			if reason != "" {
				cerr := &CorruptionError{File: seg.path, Offset: 0, Reason: reason}
				return r.salvage(segs, i, -1, cerr)
			}
		}
		d, err := r.scanSegment(seg, prevEnd, hasPrev, i == len(segs)-1)
		if err != nil {
			return nil, err
		}
		if seg.frames > 0 {
			prevEnd, hasPrev = seg.endRow, true
		}
		if d == nil {
			continue
		}
		if d.corrupt {
			cerr := &CorruptionError{File: seg.path, Offset: d.offset, Reason: d.reason}
			return r.salvage(segs, i+1, i, cerr)
		}
		// A torn tail of the last segment.
		return r.cutTail(segs, d)
	}
	return segs, nil
}

// scanSegment decodes one segment, filling in its index fields for the
// valid prefix, and returns the damage that ended it, if any.
func (r *recovery) scanSegment(seg *segment, prevEnd uint64, hasPrev, last bool) (*damage, error) {
	f, err := r.fs.Open(seg.path)
	if err != nil {
		return nil, &WALError{Op: "open segment", File: seg.path, Offset: -1, Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &WALError{Op: "stat segment", File: seg.path, Offset: -1, Err: err}
	}
	size := st.Size()
	hdr := make([]byte, min(size, segmentHeaderSize))
	if err := readFullAt(f, hdr, 0); err != nil {
		return nil, fmt.Errorf("wal: %s: %w", seg.path, err)
	}
	if reason := checkSegmentHeader(hdr, seg.seq, seg.base); reason != "" {
		// Never a torn write of ours: a segment's header is synced before the
		// rename that makes the segment visible. Frames may have been lost.
		return &damage{offset: 0, corrupt: true, reason: reason + " (the header is written and synced before a segment becomes visible, so its frames may be lost)"}, nil
	}
	seg.size = segmentHeaderSize
	fr := NewFrameReader(f, segmentHeaderSize, size)
	fr.reuse = true // the scan keeps no payload
	for {
		off := fr.Offset()
		fm, err := fr.Next()
		if err == io.EOF {
			return nil, nil
		}
		var fe *FrameError
		if errors.As(err, &fe) {
			d, err := classify(f, fe.Offset, size, last, fe.Kind.String())
			return d, wrapPath(seg.path, err)
		}
		if err != nil {
			return nil, wrapPath(seg.path, err)
		}
		end := fm.FirstOffset + uint64(fm.Rows)
		var reason string
		switch {
		case fm.Rows == 0:
			reason = "frame with zero rows"
		case end < fm.FirstOffset:
			reason = "frame row range overflows"
		case fm.FirstOffset < seg.base:
			reason = fmt.Sprintf("frame starts at offset %d, below the segment's base %d", fm.FirstOffset, seg.base)
		case seg.frames > 0 && fm.FirstOffset < seg.endRow,
			seg.frames == 0 && hasPrev && fm.FirstOffset < prevEnd:
			reason = fmt.Sprintf("frame starts at offset %d, before the previous frame's end", fm.FirstOffset)
		}
		if reason != "" {
			// A frame with a good CRC cannot be torn: this is a writer bug or
			// foreign data, never repaired silently.
			return &damage{offset: off, reason: reason, corrupt: true}, nil
		}
		seg.add(fm, fr.Offset()-off)
	}
}

// classify decides whether a decoding failure at off is a torn tail or
// corruption (see Open for the rules).
func classify(f io.ReaderAt, off, size int64, last bool, reason string) (*damage, error) {
	next, found, err := findFrame(f, off+8, size)
	if err != nil {
		return nil, err
	}
	if !last {
		if found {
			reason += fmt.Sprintf("; a valid frame follows at offset %d", next)
		} else {
			reason += "; later segments follow"
		}
		return &damage{offset: off, reason: reason, corrupt: true}, nil
	}
	end := size
	if found {
		end = next
	}
	allZero, zeroSector, err := zeroScan(f, off, end)
	if err != nil {
		return nil, err
	}
	if !found {
		return &damage{offset: off, reason: reason, zero: allZero}, nil
	}
	if !zeroSector {
		reason += fmt.Sprintf("; a valid frame follows at offset %d", next)
		return &damage{offset: off, reason: reason, corrupt: true}, nil
	}
	dropped := 0
	fr := NewFrameReader(f, next, size)
	fr.reuse = true
	for {
		if _, err := fr.Next(); err != nil {
			break
		}
		dropped++
	}
	reason += fmt.Sprintf("; zero-filled sector before valid frame at offset %d: torn unsynced write", next)
	return &damage{offset: off, reason: reason, dropped: dropped}, nil
}

func wrapPath(path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("wal: %s: %w", path, err)
}
