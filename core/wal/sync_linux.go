//go:build linux

package wal

import (
	"os"
	"syscall"

	"github.com/persisting/persisting/core/vfs"
)

// syncData makes a file's data durable with fdatasync(2) when it is a real
// *os.File: it skips the inode timestamps fsync would also write, and still
// persists the size a write extended (fdatasync flushes the metadata needed to
// read the data back). Other Files (test wrappers) get their own Sync.
func syncData(f vfs.File) error {
	of, ok := f.(*os.File)
	if !ok {
		return f.Sync()
	}
	rc, err := of.SyscallConn()
	if err != nil {
		return f.Sync()
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR { // EINTR: nothing was attempted, so not a retry
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: of.Name(), Err: serr}
	}
	return nil
}
