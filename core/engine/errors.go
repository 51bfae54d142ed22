package engine

import (
	"errors"
	"fmt"
)

// Sentinel errors; callers match them with errors.Is. Each error the engine
// returns wraps one of them (or a *schema.Error) together with the bucket
// path, so a message read far from here still says where it happened.
var (
	// ErrBusy is backpressure: too much is in flight. Retry after a
	// completion; nothing was taken.
	ErrBusy = errors.New("bucket busy")
	// ErrClosed: the bucket was closed.
	ErrClosed = errors.New("bucket closed")
	// ErrLocked: another live backend holds the directory.
	ErrLocked = errors.New("directory locked")
	// ErrWAL: the write-ahead log failed; the bucket refuses writes.
	ErrWAL = errors.New("write-ahead log failed")
	// ErrCorrupt: stored data is damaged.
	ErrCorrupt = errors.New("corrupt data")
	// ErrInvalid: a bad argument (an empty batch, a bad option).
	ErrInvalid = errors.New("invalid argument")
	// ErrWouldBlock: a non-blocking read needs the disk.
	ErrWouldBlock = errors.New("read would block")
)

// LockedError names the holder of a directory lock.
type LockedError struct {
	Path string
	PID  int
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("persisting: bucket directory %s is in use by another live backend (pid %d); close that backend first, or give each topic its own storage_path", e.Path, e.PID)
}

func (e *LockedError) Unwrap() error { return ErrLocked }
