//go:build !linux

package store

// StartWriteback is a no-op where sync_file_range does not exist.
func (w *localWriter) StartWriteback(off, n int64) {}
