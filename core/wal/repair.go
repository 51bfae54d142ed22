package wal

import (
	"os"
	"slices"
)

// cutTail truncates the last segment at a torn tail.
func (r *recovery) cutTail(segs []*segment, d *damage) ([]*segment, error) {
	seg := segs[len(segs)-1]
	if err := r.truncate(seg, d.offset); err != nil {
		return nil, err
	}
	r.info.TruncateReason = d.reason
	r.info.ZeroTail = d.zero
	r.info.DroppedFrames = d.dropped
	if d.offset < segmentHeaderSize {
		return segs[:len(segs)-1], nil
	}
	return segs, nil
}

// salvage handles corruption: without TruncateCorrupt it returns cerr;
// with it, it deletes segs[dropFrom:] (newest first) and, if cut >= 0,
// truncates segs[cut] at cerr.Offset.
func (r *recovery) salvage(segs []*segment, dropFrom, cut int, cerr *CorruptionError) ([]*segment, error) {
	if !r.opts.TruncateCorrupt {
		return nil, cerr
	}
	r.info.Corruption = cerr
	// Newest first, each removal made durable before the next, so a crash
	// midway leaves a contiguous sequence (no gap) for the next Open.
	for i := len(segs) - 1; i >= dropFrom; i-- {
		if err := r.moveAside(segs[i].path); err != nil {
			return nil, err
		}
		r.info.DroppedSegments = append(r.info.DroppedSegments, segs[i].path)
	}
	slices.Reverse(r.info.DroppedSegments)
	kept := segs[:dropFrom]
	if cut >= 0 {
		seg := segs[cut]
		if err := r.truncate(seg, cerr.Offset); err != nil {
			return nil, err
		}
		r.info.TruncateReason = cerr.Reason
		if cerr.Offset < segmentHeaderSize {
			kept = segs[:cut]
		}
	}
	return kept, nil
}

// truncate cuts seg's file at off and fsyncs it; below the header size the
// segment holds nothing and is deleted instead.
func (r *recovery) truncate(seg *segment, off int64) error {
	st, err := r.fs.Stat(seg.path)
	if err != nil {
		return &WALError{Op: "stat segment", File: seg.path, Offset: -1, Err: err}
	}
	r.info.TruncatedFile = seg.path
	r.info.TruncatedBytes = st.Size() - off
	if off < segmentHeaderSize {
		r.info.TruncatedBytes = st.Size()
		r.info.DroppedSegments = append(r.info.DroppedSegments, seg.path)
		return r.moveAside(seg.path)
	}
	f, err := r.fs.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return &WALError{Op: "open segment", File: seg.path, Offset: -1, Err: err}
	}
	if err := r.keepTail(f, seg.path, off, st.Size()); err != nil {
		f.Close()
		return err
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return &WALError{Op: "truncate segment", File: seg.path, Offset: off, Err: err}
	}
	// A full fsync: the size changed, and the repair must be durable before
	// anything is appended after it.
	if err := f.Sync(); err != nil {
		f.Close()
		return &WALError{Op: "sync segment", File: seg.path, Offset: off, Err: err}
	}
	if err := f.Close(); err != nil {
		return &WALError{Op: "close segment", File: seg.path, Offset: -1, Err: err}
	}
	seg.size = off
	return nil
}

// remove deletes a file and makes the removal durable.
func (r *recovery) remove(path string) error {
	if err := r.fs.Remove(path); err != nil {
		return &WALError{Op: "remove segment", File: path, Offset: -1, Err: err}
	}
	if err := r.fs.SyncDir(r.dir); err != nil {
		return &WALError{Op: "sync dir", File: r.dir, Offset: -1, Err: err}
	}
	return nil
}
