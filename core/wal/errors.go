package wal

import (
	"errors"
	"fmt"
)

// CorruptionError reports damage that is not a torn tail: a bad frame or
// segment header followed by data that still checks out, a gap in the segment
// sequence, or frames whose offsets go backwards. Open returns it instead of
// guessing, because truncating there would silently drop acknowledged records
// (Options.TruncateCorrupt is the explicit opt-in to do exactly that).
type CorruptionError struct {
	File   string // path of the damaged segment (for a gap: the segment after it)
	Offset int64  // byte offset in File of the first bad byte or frame
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: corruption in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// WALError is an I/O failure of the log, naming the file and operation. Once
// Append, Sync or a segment switch fails, the Log is poisoned: every later
// Append, Sync and ReleaseBefore returns a *WALError wrapping the first
// failure. The caller must close the Log and Open it again, letting recovery
// decide what reached the disk. Never retrying is deliberate: after a failed
// fsync Linux may have dropped the dirty pages and marked them clean, so a
// second fsync "succeeds" with the data lost (PostgreSQL's fsyncgate).
type WALError struct {
	Op       string // "write", "sync", "create segment", ...
	File     string
	Offset   int64 // offset in File where the operation started, -1 if none
	Err      error
	Poisoned bool // returned because an earlier failure poisoned the Log
}

func (e *WALError) Error() string {
	prefix := "wal: "
	if e.Poisoned {
		prefix = "wal: log poisoned by earlier failure: "
	}
	if e.Offset >= 0 {
		return fmt.Sprintf("%s%s %s at offset %d: %v", prefix, e.Op, e.File, e.Offset, e.Err)
	}
	return fmt.Sprintf("%s%s %s: %v", prefix, e.Op, e.File, e.Err)
}

func (e *WALError) Unwrap() error { return e.Err }

var (
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("wal: log closed")
	// ErrOffsetOrder is returned by Append for a frame whose rows start
	// before the end of the previous frame. Offsets only go forward; gaps are
	// allowed.
	ErrOffsetOrder = errors.New("wal: frame offset goes backwards")
	// ErrFrameTooLarge is returned by Append for a payload over MaxPayload.
	ErrFrameTooLarge = errors.New("wal: payload larger than MaxPayload")
	// ErrEmptyFrame is returned by Append for a frame with zero rows.
	ErrEmptyFrame = errors.New("wal: frame has no rows")
)
