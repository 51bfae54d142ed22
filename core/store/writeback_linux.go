package store

import "syscall"

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writeback of the dirty
// pages of the range without waiting for it.
const syncFileRangeWrite = 0x2

// StartWriteback asks the kernel to start writing bytes [off, off+n) of the
// file to disk now, so that the fsync of Commit finds less to wait for. It
// is only a hint: errors are ignored (Commit's fsync reports real ones), and
// files of a vfs without descriptors are left alone.
func (w *localWriter) StartWriteback(off, n int64) {
	if f, ok := w.f.(interface{ Fd() uintptr }); ok {
		_ = syscall.SyncFileRange(int(f.Fd()), off, n, syncFileRangeWrite)
	}
}
